"""A unit changed the form's structure: rows inserted, a sheet renamed, metadata gone, an old version.

The figures must still be read by label (or by the cell map in the metadata), with a finding that says what
moved. Returns are filled with openpyxl here (the structure edits are what matters, not the program).
"""

from __future__ import annotations

import openpyxl
import pytest
from support.returns import figures

from toolkit.forms import HEADER_ROW, get_form
from toolkit.read import read_submission
from toolkit.render import write_template
from toolkit.validate import validate_submissions


@pytest.fixture
def lucnam(bac_giang_round, tmp_path):
    """Lục Nam's template (PL01 + PL02) with clean figures typed into PL02."""
    unit = bac_giang_round.unit("218")
    path = write_template(bac_giang_round, unit, tmp_path / "218_luc-nam.xlsx")
    form = get_form("PL02")
    periods = tuple(p.id for p in bac_giang_round.periods)
    values = figures(form, bac_giang_round, unit, seed=218)
    wb = openpyxl.load_workbook(path)
    ws = wb["PL02"]
    for cell in form.layout(periods).inputs:
        ws[cell.address] = values[(cell.indicator, cell.field, cell.period)]
    wb.save(path)
    return path, values, form, periods


def _read(path, rnd):
    sub = read_submission(path, rnd)
    validate_submissions([sub], rnd)
    return sub


def _figures_read(sub, form_id):
    return {(v.indicator, v.field, v.period): v.value for v in sub.values if v.form == form_id}


def test_clean_fill_reads_every_figure(lucnam, bac_giang_round):
    path, values, form, periods = lucnam
    sub = _read(path, bac_giang_round)
    assert sub.recognised_by == "metadata"
    assert _figures_read(sub, "PL02") == values
    assert not [f for f in sub.findings if f.form == "PL02"]


def test_inserted_row_is_reported_and_figures_still_read(lucnam, bac_giang_round):
    path, values, form, periods = lucnam
    layout = form.layout(periods)
    row = layout.row_of["TE06"]  # insert a blank row above “Số trẻ em bị tai nạn thương tích”
    wb = openpyxl.load_workbook(path)
    wb["PL02"].insert_rows(row)
    wb.save(path)
    sub = _read(path, bac_giang_round)
    moved = [f for f in sub.findings if f.code == "structure-changed"]
    assert len(moved) == 1
    label = form.indicator("TE06").label
    assert f"dòng “{label}” chuyển từ dòng {row} sang dòng {row + 1}" in moved[0].message
    assert _figures_read(sub, "PL02") == values
    # cells named in findings point at the moved rows
    te06 = [v for v in sub.values if v.indicator == "TE06" and v.field == "total" and v.period == periods[0]][0]
    assert te06.cell == f"D{row + 1}"


def test_renamed_sheet_found_by_annex_label(lucnam, bac_giang_round):
    path, values, form, periods = lucnam
    wb = openpyxl.load_workbook(path)
    wb["PL02"].title = "Bao cao"
    wb.save(path)
    sub = _read(path, bac_giang_round)
    assert _figures_read(sub, "PL02") == values
    assert {v.sheet for v in sub.values if v.form == "PL02"} == {"Bao cao"}


def test_pasted_without_metadata_falls_back_to_labels(lucnam, bac_giang_round):
    path, values, form, periods = lucnam
    wb = openpyxl.load_workbook(path)
    del wb["_baocao"]
    wb.save(path)
    sub = _read(path, bac_giang_round)
    assert sub.recognised_by == "labels"
    assert sub.unit_code == "218"  # from “Đơn vị báo cáo: Huyện Lục Nam (mã 218)” and the file name
    codes = [f.code for f in sub.findings]
    assert "metadata-missing" in codes
    assert _figures_read(sub, "PL02") == values


def test_old_template_version_read_by_cell_map(lucnam, bac_giang_round):
    path, values, form, periods = lucnam
    wb = openpyxl.load_workbook(path)
    meta = wb["_baocao"]
    for row in meta.iter_rows():
        if row[0].value == "forms":
            row[1].value = row[1].value.replace("PL02@1", "PL02@0")
    wb.save(path)
    sub = _read(path, bac_giang_round)
    outdated = [f for f in sub.findings if f.code == "template-outdated"]
    assert [f.form for f in outdated] == ["PL02"]
    assert _figures_read(sub, "PL02") == values


def test_file_name_and_metadata_disagree(lucnam, bac_giang_round, tmp_path):
    path, *_ = lucnam
    other = tmp_path / "215_yen-the.xlsx"
    other.write_bytes(path.read_bytes())
    sub = _read(other, bac_giang_round)
    mismatch = [f for f in sub.findings if f.code == "unit-mismatch"]
    assert len(mismatch) == 1
    assert "tên tệp: 215" in mismatch[0].message and "trang nhận dạng: 218" in mismatch[0].message
    assert not sub.valid


@pytest.mark.parametrize(
    ("field", "period", "keep_heading", "label"),
    [
        ("male", 0, True, "Nam – Năm 2023"),  # the next columns move left into its place
        ("total", 0, True, "Tổng số – Năm 2023"),  # the merged “Năm 2023” heading shrinks and stays
        ("total", 0, False, "Tổng số – Năm 2023"),  # ... or goes with the column
        ("female", 1, True, "Nữ – Quý I/2024"),  # the last figure column: the check column moves into its place
    ],
)
def test_deleted_column_is_an_error_and_no_other_column_is_read_in_its_place(
    lucnam, bac_giang_round, field, period, keep_heading, label
):
    """A figure column deleted: every other figure is still read from its own heading; the deleted one is read from
    nowhere (not from whatever moved into its place)."""
    path, values, form, periods = lucnam
    layout = form.layout(periods)
    per = periods[period]
    wb = openpyxl.load_workbook(path)
    ws = wb["PL02"]
    col = layout.col_of[(per, field)]
    if field == "total" and keep_heading:  # the merged heading's text stays in what is left of it
        heading = ws.cell(HEADER_ROW, col).value
        merged = next(m for m in ws.merged_cells.ranges if m.min_row == HEADER_ROW and m.min_col == col)
        ws.unmerge_cells(merged.coord)
        ws.cell(HEADER_ROW, col + 1).value = heading
    ws.delete_cols(col)
    wb.save(path)
    sub = _read(path, bac_giang_round)
    gone = [f for f in sub.findings if f.code == "structure-changed" and f.severity == "error"]
    assert [f.message for f in gone] == [
        f"Trang PL02 không còn cột “{label}” (có thể đã bị xóa) nên không đọc được số liệu của cột này. Hãy dùng "
        "biểu mẫu gốc, không xóa cột, rồi gửi lại."
    ]
    read = _figures_read(sub, "PL02")
    assert {k: v for k, v in read.items() if k[1:] != (field, per)} == {
        k: v for k, v in values.items() if k[1:] != (field, per)
    }
    assert all(v is None for k, v in read.items() if k[1:] == (field, per))
    assert not [f for f in sub.findings if f.code == "formula-in-input"]
    assert not sub.valid


def test_a_count_off_by_float_noise_is_shown_with_every_digit(lucnam, bac_giang_round):
    """A formula's result pasted as a value (14.0000000001 people) is not an integer; the message must not say 14."""
    path, values, form, periods = lucnam
    cell = form.layout(periods).cell("TE05", "total", periods[0])
    wb = openpyxl.load_workbook(path)
    wb["PL02"][cell] = 14.0000000001
    wb.save(path)
    sub = _read(path, bac_giang_round)
    (finding,) = [f for f in sub.findings if f.code == "not-integer"]
    assert finding.cell == cell and "nhưng đang là 14,0000000001. Hãy kiểm tra lại." in finding.message
