"""Issue 4 – the provincial summary workbook, from real returns (our templates filled with openpyxl).

The Bắc Giang templates are filled with consistent figures (``support.returns``); one unit sends nothing, one
return breaks a rule (so it is not counted), one arrives late, two units are scheduled on the same day (one
team), and one notes cell holds text that looks like a formula. The province's totals in the summary are then
compared cell by cell with a recomputation made here from the filled returns themselves (read with openpyxl at
the cells their own metadata sheet lists), never from what ``consolidate`` computed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import zipfile
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml
from support import libreoffice as lo
from support.returns import edits_for
from support.workbook import cell_map, metadata

import toolkit.summary as summary
from toolkit.consolidate import Consolidation, consolidate
from toolkit.findings import CATALOG
from toolkit.forms import Form, get_form
from toolkit.round import Round
from toolkit.validate import validate_paths

ON_TIME = dt.datetime(2024, 5, 8, 9, 30)
LATE = dt.datetime(2024, 5, 12, 15, 0)  # two days after the 10/05/2024 deadline
MISSING = "222"  # Huyện Việt Yên sends nothing
INVALID = "216"  # Huyện Tân Yên: female > total in BG13 (an error: the return is not counted)
LATE_UNIT = "217"  # Huyện Lạng Giang
FORMULA_UNIT = "213"  # Thành phố Bắc Giang: a notes cell typed as =HYPERLINK(...)
FORMULA_TEXT = '=HYPERLINK("http://x","y")'
CLASH = ("215", "220")  # 215 moves its visit to 220's day: one team cannot be in two districts
INDICATOR_FORMS = ("PL02", "PL03")


def half_up(value: float) -> float:
    return float(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


# ---------------------------------------------------------------------------------------------- fixtures


class Round4:
    """The filled inbox, its consolidation and the summary written from it."""

    def __init__(self, rnd: Round, inbox: Path, cons: Consolidation, path: Path) -> None:
        self.rnd, self.inbox, self.cons, self.path = rnd, inbox, cons, path
        self.periods = tuple(p.id for p in rnd.periods)
        self.files = {p.name: p for p in sorted(inbox.glob("*.xlsx"))}
        self._books: dict[str, openpyxl.Workbook] = {}

    def book(self, name: str) -> openpyxl.Workbook:
        if name not in self._books:
            self._books[name] = openpyxl.load_workbook(self.files[name])
        return self._books[name]

    def file_of(self, unit_code: str) -> str:
        return next(n for n in self.files if n.startswith(unit_code + "_"))

    def counted_units(self, form_id: str) -> list[str]:
        """Units whose return carries the form and is clean, in round order (known from what was planted)."""
        return [u.code for u in self.rnd.units if form_id in u.forms and u.code not in (MISSING, INVALID)]

    def figures(self, unit_code: str, form_id: str) -> dict[tuple[str, str, str], float]:
        """The figures of one return, read at the cells its own metadata sheet lists."""
        wb = self.book(self.file_of(unit_code))
        ws = wb[get_form(form_id).sheet]
        return {(ind, fld, per): ws[cell].value for ind, fld, per, cell in cell_map(metadata(wb), form_id)}

    def expected_totals(self, form_id: str):
        """Province totals summed exactly (decimal arithmetic: 0.1 + 0.2 is 0.3), then rates Σnum/Σden × 100."""
        exact: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
        for code in self.counted_units(form_id):
            for key, value in self.figures(code, form_id).items():
                exact[key] += Decimal(repr(value))
        totals = {key: float(value) for key, value in exact.items()}
        form = get_form(form_id)
        rates = {}
        for ind in form.indicators:
            if ind.is_rate:
                for per in self.periods:
                    num = totals[(ind.numerator[0], ind.numerator[1], per)]
                    den = totals[(ind.denominator[0], ind.denominator[1], per)]
                    rates[(ind.code, per)] = num / den * 100 if den else None
        return totals, rates


@pytest.fixture(scope="module")
def filled(bac_giang_round: Round, templates_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Round4:
    rnd = bac_giang_round
    inbox = tmp_path_factory.mktemp("inbox-summary")
    clash_day = rnd.unit(CLASH[1]).planned.date
    manifest = {}
    for i, unit in enumerate(rnd.units_owing()):
        if unit.code == MISSING:
            continue
        wb = openpyxl.load_workbook(templates_dir / f"{unit.file_stem}.xlsx")
        for form_id in unit.forms:
            form = get_form(form_id)
            for e in edits_for(form, rnd, unit, seed=400 + i):
                cell = wb[e["sheet"]][e["cell"]]
                if "value" in e:
                    cell.value = e["value"]
                elif "date" in e:
                    day = dt.date.fromisoformat(e["date"])
                    cell.value = clash_day if unit.code == CLASH[0] else day
                    cell.number_format = "dd/mm/yyyy"
                else:
                    cell.value = e["text"]
        if unit.code == FORMULA_UNIT:
            cell = wb["PL01"][get_form("PL01").layout(()).schedule_cell("notes", 0)]
            cell.value = FORMULA_TEXT
            cell.data_type = "s"  # typed as text, as a person would with a leading apostrophe
        if unit.code == INVALID:
            layout = get_form("PL03").layout(tuple(p.id for p in rnd.periods))
            ws = wb["PL03"]
            year = rnd.periods[0].id
            ws[layout.cell("BG13", "female", year)] = ws[layout.cell("BG13", "total", year)].value + 5
        name = f"{unit.file_stem}.xlsx"
        wb.save(inbox / name)
        manifest[name] = LATE if unit.code == LATE_UNIT else ON_TIME
    (inbox / "received.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    report = validate_paths([inbox], rnd)
    cons = consolidate(report)
    out = tmp_path_factory.mktemp("summary")
    path = summary.write_summary(cons, out / "tong-hop.xlsx")
    return Round4(rnd, inbox, cons, path)


@pytest.fixture(scope="module")
def book(filled: Round4) -> openpyxl.Workbook:
    return openpyxl.load_workbook(filled.path)


@pytest.fixture(scope="module")
def frames(filled: Round4) -> dict[str, pd.DataFrame]:
    """Every sheet as calamine reads it: stored values only, nothing recalculated."""
    return pd.read_excel(filled.path, sheet_name=None, header=None, engine="calamine")


# -------------------------------------------------------------------------------------------------- tests


def test_the_planted_round_is_what_the_test_expects(filled: Round4) -> None:
    """A guard on the fixture itself: the right returns are valid, invalid, late or missing."""
    states = {s.unit.code: s.state for s in filled.cons.status}
    assert states[MISSING] == "missing"
    assert states[INVALID] == "invalid"
    assert states[LATE_UNIT] == "late"
    assert states["223"] == "not-owed"
    assert all(states[c] == "ok" for c in states if c not in (MISSING, INVALID, LATE_UNIT, "223"))
    for form_id in INDICATOR_FORMS:
        assert filled.cons.forms[form_id].units == filled.counted_units(form_id)


def test_sheets(book: openpyxl.Workbook, filled: Round4) -> None:
    assert book.sheetnames == [
        "Tổng hợp PL02",
        "Tổng hợp PL03",
        "Theo đơn vị",
        "PL01 Lịch kiểm tra",
        "Tình hình nộp",
        "Lỗi và cảnh báo",
        "Dữ liệu",
        "Biểu đồ",
    ]


def test_every_figure_is_a_stored_value_and_the_look_is_official(book: openpyxl.Workbook) -> None:
    formulas = [
        f"{ws.title}!{c.coordinate}"
        for ws in book.worksheets
        for row in ws.iter_rows()
        for c in row
        if c.data_type == "f"
    ]
    assert formulas == []
    ws = book["Tổng hợp PL03"]
    assert ws["A1"].value == "UBND TỈNH BẮC GIANG"
    assert ws["D1"].value == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" and ws["D1"].font.b
    assert ws["D2"].value == "Độc lập - Tự do - Hạnh phúc"
    assert ws["A5"].value == "Phụ lục 03"
    assert ws["A8"].value.startswith("(Kèm theo Kế hoạch số 82/KH-SLĐTBXH ngày 19/4/2024")
    # the province's summary of the annex, signed for the Sở: not a copy of a unit's return
    assert ws["A6"].value == "TỔNG HỢP BÁO CÁO KẾT QUẢ THỰC HIỆN CÔNG TÁC TRẺ EM VÀ BÌNH ĐẲNG GIỚI"
    assert ws["A7"].value == "Số liệu toàn tỉnh Bắc Giang – kỳ báo cáo: Năm 2023 và Quý I/2024"
    texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert "Bắc Giang, ngày …… tháng …… năm ……" in texts and "THỦ TRƯỞNG CƠ QUAN" in texts
    assert "THỦ TRƯỞNG ĐƠN VỊ" not in texts
    fonts = {c.font.name for row in ws.iter_rows() for c in row if c.value is not None}
    assert fonts == {"Times New Roman"}


@pytest.mark.parametrize("form_id", INDICATOR_FORMS)
def test_province_totals_cell_by_cell(
    filled: Round4, book: openpyxl.Workbook, frames: dict[str, pd.DataFrame], form_id: str
) -> None:
    form = get_form(form_id)
    layout = form.layout(filled.periods)
    totals, rates = filled.expected_totals(form_id)
    sheet = f"Tổng hợp {form_id}"
    ws, df = book[sheet], frames[sheet]

    def stored(address: str):
        """The value calamine reads at an address (None for an empty cell)."""
        c = openpyxl.utils.cell.coordinate_to_tuple(address)
        value = df.iat[c[0] - 1, c[1] - 1] if c[0] <= df.shape[0] and c[1] <= df.shape[1] else None
        return None if isinstance(value, float) and pd.isna(value) else value

    checked = 0
    for ind in form.indicators:
        row = layout.row_of[ind.code]
        assert ws.cell(row, 2).value == ind.label
        for per in filled.periods:
            for fld in ("total", "male", "female"):
                address = layout.cell(ind.code, fld, per)
                got = stored(address)
                if ind.is_rate and fld == "total":
                    want = rates[(ind.code, per)]
                    if want is None:
                        assert got is None, address
                    else:
                        assert isinstance(got, float), (address, got)
                        assert got == half_up(want), (address, got, want)
                        assert ws[address].number_format == "0.0"
                elif ind.is_input and fld in ind.fields:
                    assert got == totals[(ind.code, fld, per)], (address, got, totals[(ind.code, fld, per)])
                    checked += 1
                elif ind.fields or ind.is_rate:
                    assert got == "x", address
                else:
                    assert got is None, address
    assert checked == len(layout.inputs) == len(totals)


def test_included_and_excluded_units_are_named(filled: Round4, book: openpyxl.Workbook) -> None:
    rnd = filled.rnd
    for form_id in INDICATOR_FORMS:
        ws = book[f"Tổng hợp {form_id}"]
        names = [rnd.unit(c).name for c in filled.counted_units(form_id)]
        assert ws["A9"].value == f"Số liệu tổng hợp từ {len(names)} đơn vị: {', '.join(names)}."
    pl03 = book["Tổng hợp PL03"]["A10"].value
    invalid_file = filled.file_of(INVALID)
    assert pl03.startswith("Chưa tổng hợp 2 đơn vị: ")
    assert f"{rnd.unit(MISSING).name} (chưa nộp)" in pl03
    assert f"{rnd.unit(INVALID).name} (tệp {invalid_file} còn 1 lỗi)" in pl03
    assert book["Tổng hợp PL02"]["A10"].value == "Đã tổng hợp đủ các đơn vị phải nộp biểu này."


def test_by_unit_matrix(filled: Round4, book: openpyxl.Workbook) -> None:
    ws = book["Theo đơn vị"]
    rows = list(ws.iter_rows(values_only=True))
    labels = {p.id: p.label for p in filled.rnd.periods}
    for form_id in INDICATOR_FORMS:
        form = get_form(form_id)
        top = next(i for i, r in enumerate(rows) if isinstance(r[0], str) and r[0].startswith(form.annex_label + " –"))
        head, codes = rows[top + 3], rows[top + 4]
        units = filled.counted_units(form_id)
        assert list(head[6 : 6 + len(units) + 1]) == [filled.rnd.unit(c).name for c in units] + ["Toàn tỉnh"]
        assert list(codes[6 : 6 + len(units)]) == units
        figures = {c: filled.figures(c, form_id) for c in units}
        totals, rates = filled.expected_totals(form_id)
        r = top + 5
        seen = 0
        while r < len(rows) and rows[r][0]:
            code, per_label, fld_label = rows[r][0], rows[r][4], rows[r][5]
            ind = form.indicator(code)
            per = next(p for p, lab in labels.items() if lab == per_label)
            values = rows[r][6 : 6 + len(units) + 1]
            if ind.is_rate:
                assert fld_label == "Tỷ lệ"
                for c, got in zip(units, values, strict=False):
                    f = figures[c]
                    den = f[(ind.denominator[0], ind.denominator[1], per)]
                    want = f[(ind.numerator[0], ind.numerator[1], per)] / den * 100 if den else None
                    assert got == (None if want is None else half_up(want)), (code, c)
                want = rates[(code, per)]
                assert values[-1] == (None if want is None else half_up(want))
            else:
                fld = next(k for k, v in form.field_labels.items() if v == fld_label)
                assert list(values[:-1]) == [figures[c][(code, fld, per)] for c in units], (code, fld, per)
                assert values[-1] == totals[(code, fld, per)]
                seen += 1
            r += 1
        assert seen == len(form.layout(filled.periods).inputs)


def test_schedule_sorted_flagged_and_formula_text_stays_text(filled: Round4, book: openpyxl.Workbook) -> None:
    ws = book["PL01 Lịch kiểm tra"]
    head = 11  # heading row (1-based), then the numbering row
    assert [c.value for c in ws[head]] == [
        "TT",
        "Đơn vị",
        "Xã/phường/thị trấn",
        "Ngày",
        "Buổi",
        "Người đầu mối",
        "Số điện thoại",
        "Ghi chú",
        "Cảnh báo",
    ]
    rows = []
    for r in range(head + 2, ws.max_row + 1):
        if isinstance(ws.cell(r, 1).value, int):
            rows.append([ws.cell(r, c) for c in range(1, 10)])
    # every unit that sent its schedule, also the one whose return has an error (its rows say so)
    shown = [u for u in filled.rnd.units if "PL01" in u.forms and u.code != MISSING]
    expected_rows = 0
    for unit in shown:
        wb = filled.book(filled.file_of(unit.code))
        layout = get_form("PL01").layout(())
        expected_rows += sum(1 for i in range(6) if wb["PL01"][layout.schedule_cell("commune", i)].value)
    assert len(rows) == expected_rows
    assert [r[0].value for r in rows] == list(range(1, len(rows) + 1))
    dates = [r[3].value for r in rows]
    assert all(isinstance(d, dt.datetime) for d in dates) and dates == sorted(dates)
    assert all(r[3].number_format == "dd/mm/yyyy" for r in rows)

    names = {filled.rnd.unit(c).name for c in CLASH}
    invalid = filled.rnd.unit(INVALID)
    conflict = "FF" + summary.CONFLICT_FILL.lstrip("#")
    for r in rows:
        fill = r[1].fill.fgColor.rgb if r[1].fill.fill_type == "solid" else None
        if r[1].value in names:
            assert r[8].value.startswith("Kế hoạch chỉ có một đoàn kiểm tra nhưng ngày "), r[8].value
            assert fill == conflict and all(c.fill.fgColor.rgb == fill for c in r)
        elif r[1].value == invalid.name:
            assert r[8].value == (
                f"Tệp {invalid.file_stem}.xlsx còn 1 lỗi (xem trang “Lỗi và cảnh báo”), đơn vị cần sửa và gửi lại"
            )
            assert fill == conflict
        else:
            assert not r[8].value and fill is None
    lead = ws.cell(9, 1).value
    assert lead.endswith(f" Lịch của {invalid.name} lấy từ tệp còn lỗi (tô màu, xem cột Cảnh báo)."), lead

    notes = [r[7] for r in rows if r[1].value == filled.rnd.unit(FORMULA_UNIT).name]
    hit = [c for c in notes if c.value == FORMULA_TEXT]
    assert len(hit) == 1 and hit[0].data_type == "s" and hit[0].value.startswith("=")
    phones = [r[6] for r in rows]
    assert all(c.data_type == "s" and c.value.startswith("0") for c in phones)


def test_submission_status(filled: Round4, book: openpyxl.Workbook) -> None:
    ws = book["Tình hình nộp"]
    head = next(r for r in range(1, 10) if ws.cell(r, 1).value == "Mã đơn vị")
    assert [ws.cell(head, c).value for c in range(1, 10)] == [
        "Mã đơn vị",
        "Tên đơn vị",
        "Biểu phải nộp",
        "Tệp nhận được",
        "Thời điểm nhận",
        "Đúng hạn/muộn",
        "Hợp lệ",
        "Số lỗi",
        "Số cảnh báo",
    ]
    by_code = {ws.cell(r, 1).value: [ws.cell(r, c) for c in range(1, 11)] for r in range(head + 1, ws.max_row + 1)}
    assert list(by_code) == [u.code for u in filled.rnd.units]

    def fill(row) -> str | None:
        return row[1].fill.fgColor.rgb if row[1].fill.fill_type == "solid" else None

    missing = by_code[MISSING]
    assert fill(missing) == "FF" + summary.MISSING_FILL.lstrip("#")
    assert all(c.fill.fgColor.rgb == fill(missing) for c in missing)
    assert missing[3].value is None and missing[4].value is None
    assert missing[9].value == "Chưa nộp"

    invalid = by_code[INVALID]
    assert fill(invalid) == "FF" + summary.INVALID_FILL.lstrip("#")
    assert invalid[6].value == "Không" and invalid[7].value == 1

    late = by_code[LATE_UNIT]
    assert fill(late) == "FF" + summary.LATE_FILL.lstrip("#")
    assert late[4].value == LATE and late[5].value == "Muộn 2 ngày" and late[6].value == "Có"

    none_owed = by_code["223"]
    assert none_owed[2].value == "không phải nộp"

    ok = by_code["215"]
    assert fill(ok) is None
    assert ok[2].value == "PL01, PL03"
    assert ok[3].value == filled.file_of("215")
    assert ok[4].value == ON_TIME and ok[5].value == "Đúng hạn" and ok[6].value == "Có"
    assert (ok[7].value, ok[8].value) == (0, 0)


def test_findings_sheet(filled: Round4, book: openpyxl.Workbook) -> None:
    ws = book["Lỗi và cảnh báo"]
    head = next(r for r in range(1, 10) if ws.cell(r, 1).value == "Tệp")
    assert [ws.cell(head, c).value for c in range(1, 9)] == [
        "Tệp",
        "Đơn vị",
        "Mức độ",
        "Loại",
        "Trang",
        "Ô",
        "Nội dung",
        "Mã",
    ]
    got = [tuple(ws.cell(r, c).value for c in (1, 3, 4, 6, 7, 8)) for r in range(head + 1, ws.max_row + 1)]
    want = [
        (s.name, {"error": "Lỗi", "warning": "Cảnh báo"}[f.severity], CATALOG[f.code][1], f.cell, f.message, f.code)
        for s in filled.cons.report.submissions
        for f in s.findings
    ]
    assert got == want
    assert {kind for _, _, kind, _, _, _ in got} >= {"Số liệu không khớp", "Nộp muộn"}  # said in Vietnamese
    codes = {(name, code) for name, _, _, _, _, code in got}
    assert (filled.file_of(INVALID), "rule-violation") in codes
    assert (filled.file_of(LATE_UNIT), "late-submission") in codes


def test_tidy_table_traces_every_figure_to_its_cell(filled: Round4, book: openpyxl.Workbook) -> None:
    ws = book["Dữ liệu"]
    assert "DuLieu" in ws.tables
    table = ws.tables["DuLieu"]
    expected_rows = sum(
        len(get_form(f).layout(filled.periods).inputs) for f in INDICATOR_FORMS for _ in filled.counted_units(f)
    )
    min_col, min_row, max_col, max_row = openpyxl.utils.cell.range_boundaries(table.ref)
    assert (min_col, min_row, max_col) == (1, 1, 12)
    assert max_row - min_row == expected_rows
    df = pd.read_excel(filled.path, sheet_name="Dữ liệu", engine="calamine", dtype={"Mã đơn vị": str})
    assert list(df.columns) == [c.name for c in table.tableColumns]
    assert len(df) == expected_rows
    assert set(df["Mã đơn vị"]) == {c for f in INDICATOR_FORMS for c in filled.counted_units(f)}
    sha = {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in filled.files.items()}
    for rec in df.to_dict("records"):
        name = rec["Tệp nguồn"]
        assert rec["SHA-256"] == sha[name]
        source = filled.book(name)[rec["Trang"]][rec["Ô"]].value
        assert source == rec["Giá trị"], rec
        assert name.startswith(rec["Mã đơn vị"] + "_")
    # a pivot of the table gives the province totals
    pivot = df.groupby(["Biểu", "Mã chỉ tiêu", "Trường", "Kỳ"])["Giá trị"].sum()
    labels = {p.id: p.label for p in filled.rnd.periods}
    for form_id in INDICATOR_FORMS:
        form = get_form(form_id)
        totals, _ = filled.expected_totals(form_id)
        for (code, fld, per), value in totals.items():
            assert pivot[(form_id, code, form.field_labels[fld], labels[per])] == pytest.approx(value, rel=1e-12)


@pytest.mark.libreoffice
def test_libreoffice_reads_the_same_figures_as_calamine(filled: Round4, frames: dict[str, pd.DataFrame]) -> None:
    """The summary as a person opens it: LibreOffice shows every sheet, and every cell of the data table and of
    the province totals holds what the stored values say (and what pandas reads)."""
    n = len(filled.cons.tidy)
    totals = frames["Tổng hợp PL03"]
    ranges = {"Dữ liệu": f"A1:L{n + 1}", "Tổng hợp PL03": f"A1:I{len(totals)}"}
    [result] = lo.run([{"input": str(filled.path), "arrays": [{"sheet": k, "range": v} for k, v in ranges.items()]}])
    assert result["sheets"] == list(frames)
    for (sheet, _), seen in zip(ranges.items(), result["arrays"]):
        stored = frames[sheet].iloc[: len(seen), : len(seen[0])]
        expected = [["" if pd.isna(v) else v for v in row] for row in stored.itertuples(index=False)]
        assert seen == expected, sheet


def test_charts(filled: Round4, book: openpyxl.Workbook) -> None:
    with zipfile.ZipFile(filled.path) as z:
        charts = sorted(n for n in z.namelist() if n.startswith("xl/charts/chart"))
        assert len(charts) == 3  # BG13R, TE07, TE09R
        xml = z.read(charts[0]).decode()
        assert "<c:barChart>" in xml and "'Biểu đồ'!$B$" in xml
        rels = [n for n in z.namelist() if n.startswith("xl/drawings/_rels/")]
        assert rels
    ws = book["Biểu đồ"]
    rows = list(ws.iter_rows(values_only=True))
    top = next(i for i, r in enumerate(rows) if r[0] == "Tỷ lệ nữ tham gia cấp ủy theo đơn vị (%)")
    assert list(rows[top + 1][:3]) == ["Đơn vị"] + [p.label for p in filled.rnd.periods]
    units = filled.counted_units("PL03")
    for i, code in enumerate(units, start=1):
        row = rows[top + 1 + i]
        assert row[0] == filled.rnd.unit(code).short_name
        f = filled.figures(code, "PL03")
        for j, per in enumerate(filled.periods, start=1):
            assert row[j] == half_up(f[("BG13", "female", per)] / f[("BG13", "total", per)] * 100)
    top = next(i for i, r in enumerate(rows) if r[0] and str(r[0]).startswith(get_form("PL03").indicator("TE07").label))
    drowned_units = [u.code for u in filled.rnd.units if u.code in filled.counted_units("PL02") + units]
    assert [rows[top + 2 + i][0] for i in range(len(drowned_units))] == [
        filled.rnd.unit(c).short_name for c in drowned_units
    ]


def test_printed_each_chart_and_each_forms_matrix_starts_a_page(filled: Round4, book: openpyxl.Workbook) -> None:
    """Printed (or saved as PDF), each chart starts a page, below its title (the title runs on to the right and
    a chart on its row would hide it), and so does each form's indicator × unit matrix."""
    import re

    ws = book["Biểu đồ"]
    rows = list(ws.iter_rows(values_only=True))
    titles = [i for i, r in enumerate(rows) if isinstance(r[0], str) and " theo đơn vị (" in r[0]]
    assert len(titles) == 3
    assert [b.id for b in ws.row_breaks.brk] == titles[1:]  # a break's id is the 0-based row it puts on a new page
    with zipfile.ZipFile(filled.path) as z:
        drawing = z.read("xl/drawings/drawing1.xml").decode()
    anchors = [
        int(r)
        for r in re.findall(r"<xdr:from><xdr:col>\d+</xdr:col><xdr:colOff>\d+</xdr:colOff><xdr:row>(\d+)<", drawing)
    ]
    assert anchors == [t + 1 for t in titles]

    ws = book["Theo đơn vị"]
    rows = list(ws.iter_rows(values_only=True))
    starts = [
        next(i for i, r in enumerate(rows) if isinstance(r[0], str) and r[0].startswith(get_form(f).annex_label + " –"))
        for f in INDICATOR_FORMS
    ]
    assert len(starts) == 2 and [b.id for b in ws.row_breaks.brk] == sorted(starts)[1:]
    assert ws.print_title_rows is None  # the two forms' headings name different units: none repeats on every page


def test_one_forms_matrix_has_its_units_names_on_every_printed_page(filled: Round4, tmp_path: Path) -> None:
    import dataclasses

    cons = dataclasses.replace(filled.cons, forms={"PL03": filled.cons.forms["PL03"]})
    path = summary.write_summary(cons, tmp_path / "pl03.xlsx")
    ws = openpyxl.load_workbook(path)["Theo đơn vị"]
    rows = list(ws.iter_rows(values_only=True))
    names = [filled.rnd.unit(c).name for c in filled.counted_units("PL03")]
    head = next(i for i, r in enumerate(rows) if list(r[6 : 6 + len(names)]) == names) + 1  # 1-based
    assert ws.print_title_rows == f"${head}:${head + 1}" and not ws.row_breaks.brk


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def test_writing_twice_gives_the_same_file(filled: Round4, tmp_path: Path) -> None:
    again = summary.write_summary(filled.cons, tmp_path / "again.xlsx")
    first, second = _members(filled.path), _members(again)
    assert sorted(first) == sorted(second)
    assert [n for n in first if first[n] != second[n]] == []
    assert any(n.startswith("xl/worksheets/sheet") for n in first)
    assert again.read_bytes() == filled.path.read_bytes()


def test_streamed_rows_make_the_same_file_as_rows_held_in_memory(
    filled: Round4, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data table's rows streamed into the zip a batch at a time (many batches here) make the same file as the
    rows written into XlsxWriter's buffer when streaming is off (a zip file class the summary does not replace)."""
    import xlsxwriter.workbook

    monkeypatch.setattr(summary, "_STREAM_BATCH", 7)
    streamed = summary.write_summary(filled.cons, tmp_path / "streamed.xlsx")
    assert len(filled.cons.tidy) > 7 * 10
    plain = type("PlainZipFile", (zipfile.ZipFile,), {})
    monkeypatch.setattr(xlsxwriter.workbook, "ZipFile", plain)
    held = summary.write_summary(filled.cons, tmp_path / "held.xlsx")
    assert xlsxwriter.workbook.ZipFile is plain  # put back as it was found
    assert streamed.read_bytes() == held.read_bytes() == filled.path.read_bytes()


def test_a_full_disk_while_the_rows_stream_leaves_nothing_behind(
    filled: Round4, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The system's error comes back with its errno (to be said in Vietnamese), no temporary file is left, and
    XlsxWriter is left as it was found: the next summary is written whole."""
    import errno

    import xlsxwriter.workbook

    write = zipfile._ZipWriteFile.write

    def full(self, data):
        if self._zinfo.filename == "xl/worksheets/sheet7.xml" and self._file_size > 100_000:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, data)

    monkeypatch.setattr(summary, "_STREAM_BATCH", 100)
    monkeypatch.setattr(zipfile._ZipWriteFile, "write", full)
    with pytest.raises(OSError) as err:
        summary.write_summary(filled.cons, tmp_path / "tong-hop.xlsx")
    assert err.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
    assert xlsxwriter.workbook.ZipFile is zipfile.ZipFile and xlsxwriter.workbook.ZipInfo is zipfile.ZipInfo
    assert getattr(summary._PACKAGE, "streams", None) is None
    monkeypatch.setattr(zipfile._ZipWriteFile, "write", write)
    assert summary.write_summary(filled.cons, tmp_path / "tong-hop.xlsx").read_bytes() == filled.path.read_bytes()


def test_overwrites_atomically_and_cleans_up_on_failure(
    filled: Round4, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "tong-hop.xlsx"
    summary.write_summary(filled.cons, target)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(summary, "_write_status", boom)
    with pytest.raises(RuntimeError):
        summary.write_summary(filled.cons, target)
    assert target.read_bytes() == before  # the previous summary is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tong-hop.xlsx"]


def test_unwritable_destinations_raise_oserror_and_leave_nothing(filled: Round4, tmp_path: Path) -> None:
    with pytest.raises(OSError):
        summary.write_summary(filled.cons, tmp_path / "no-such-folder" / "tong-hop.xlsx")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(OSError):
        summary.write_summary(filled.cons, a_file / "tong-hop.xlsx")
    a_folder = tmp_path / "a-folder"
    a_folder.mkdir()
    with pytest.raises(OSError):
        summary.write_summary(filled.cons, a_folder)  # the target is a folder: the rename fails
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "a-folder"]
    assert list(a_folder.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_read_only_folder_raises_oserror(filled: Round4, tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            summary.write_summary(filled.cons, folder / "tong-hop.xlsx")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_form_helpers() -> None:
    form: Form = get_form("PL03")
    assert summary.summary_sheet_name(form) == "Tổng hợp PL03"
    assert summary.round1(12.25) == 12.3 and summary.round1(12.35) == 12.4 and summary.round1(0.04) == 0.0


def test_bulk_rows_interleave_with_xlsxwriter_rows(tmp_path: Path) -> None:
    """Rows handed over as XML sit between XlsxWriter's own rows, in order, and read back like written ones."""
    path = tmp_path / "bulk.xlsx"
    wb = summary.new_workbook(path)
    ws = wb.add_worksheet("S", worksheet_class=summary._BulkSheet)
    bold = wb.add_format({"bold": True})
    cells = summary._Cells(ws)
    ws.write_string(0, 0, "tiêu đề", bold)
    ws.set_row(3, 30)
    ws.write_number(3, 1, 7, bold)
    for r in (1, 2, 5, 6, 7):  # two runs: rows 2-3 and 6-8 (Excel numbering)
        n = r + 1
        tall = 33 if r == 6 else None
        row = [summary._row_open(n, tall), cells.text(f"A{n}", 0, f"dòng {n}"), cells.number(f"C{n}", 0, n * 1.5)]
        ws.bulk_row(r, "".join(row) + "</row>", 2)
    cells.text("Z1", 0, "dòng 2")  # a string counted again (only the count grows)
    cells.done()
    ws.write_string(9, 0, '=HYPERLINK("x")', bold)  # text stays text after the bulk rows too
    wb.close()
    got = openpyxl.load_workbook(path)["S"]
    assert [[c.value for c in row] for row in got.iter_rows(min_row=1, max_row=10, max_col=3)] == [
        ["tiêu đề", None, None],
        ["dòng 2", None, 3.0],
        ["dòng 3", None, 4.5],
        [None, 7, None],
        [None, None, None],
        ["dòng 6", None, 9.0],
        ["dòng 7", None, 10.5],
        ["dòng 8", None, 12.0],
        [None, None, None],
        ['=HYPERLINK("x")', None, None],
    ]
    assert got["A10"].data_type == "s"
    assert got.row_dimensions[4].height == 30 and got.row_dimensions[7].height == 33
    assert got.dimensions == "A1:C10"
    with zipfile.ZipFile(path) as z:
        sst = z.read("xl/sharedStrings.xml").decode()
    assert 'count="8" uniqueCount="7"' in sst  # 2 written + 5 bulk + 1 counted again; 7 distinct texts


def test_tidy_rows_with_an_empty_text_keep_every_column_in_place(tmp_path: Path, bac_giang_round: Round) -> None:
    from toolkit.consolidate import TidyRow, TidyTable

    form = get_form("PL03")
    ind = next(i for i in form.indicators if i.is_input and i.value == "count")
    period = bac_giang_round.periods[0]
    cell = form.layout(tuple(p.id for p in bac_giang_round.periods)).cell(ind.code, "total", period.id)
    sha = ("ab" * 32, "cd" * 32)
    rows = [
        TidyRow("215", "Huyện Yên Thế", form.id, ind.code, ind.label, "total", period.id, period.label, 4.0,
                "a.xlsx", sha[0], form.sheet, cell),
        TidyRow("216", "", form.id, ind.code, ind.label, "total", period.id, period.label, 5.0, "b.xlsx", sha[1],
                form.sheet, cell),
    ]  # fmt: skip
    path = tmp_path / "tidy.xlsx"
    wb = summary.new_workbook(path)
    ws = wb.add_worksheet("D", worksheet_class=summary._BulkSheet)
    plain = wb.add_format({"font_name": "Times New Roman"})
    ws.write_string(0, 0, "Mã đơn vị", plain)
    summary._tidy_rows(ws, TidyTable.of_rows(rows), plain._get_xf_index(), {"count": 0, "money": 0})
    wb.close()
    got = [[c.value for c in r] for r in openpyxl.load_workbook(path)["D"].iter_rows(min_row=2, max_col=12)]
    label = form.field_labels["total"]
    same = [form.id, ind.code, ind.label, label, period.label]
    assert got == [
        ["215", "Huyện Yên Thế", *same, 4, "a.xlsx", sha[0], form.sheet, cell],
        ["216", None, *same, 5, "b.xlsx", sha[1], form.sheet, cell],
    ]


def test_codes_and_phone_numbers_are_text_without_excel_flagging_them(filled: Round4) -> None:
    """Unit codes (“213”) and phone numbers are text on purpose: every sheet tells Excel not to mark them."""
    with zipfile.ZipFile(filled.path) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets
        for name in sheets:
            xml = z.read(name).decode("utf-8")
            assert '<ignoredError sqref="A1:XFD1048576" numberStoredAsText="1"/>' in xml, name


def test_a_centrally_run_city_is_a_city_in_the_totals_subtitle(bac_giang_round: Round) -> None:
    import dataclasses

    assert summary._province_kind(bac_giang_round) == "tỉnh"
    for code in ("01", "79", "48"):
        assert summary._province_kind(dataclasses.replace(bac_giang_round, province_code=code)) == "thành phố"
