"""Golden checks of the generated templates (issue 2), read back with openpyxl.

What is expected comes from round.yaml, the form definitions (workbook_templates/) and the rules (schemas/):
the input cells of a sheet are ``form.layout(periods).inputs``, its live checks are ``rules_for(...)``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from functools import cache
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from openpyxl.formula.translate import Translator
from openpyxl.utils import get_column_letter
from support.workbook import (
    GUIDE_SHEET,
    LIST_SHEET,
    META_SHEET,
    cell_map,
    cells_of,
    expected_cell_map,
    expected_metadata,
    forms_of,
    layout_of,
    metadata,
    parse_check,
    periods_of,
    sheet_states,
    structure_problems,
    unlocked_cells,
    validation_problem,
    validations_by_cell,
)

from toolkit.cli import main
from toolkit.forms import FIRST_VALUE_COL, HEADER_ROW, available_forms
from toolkit.render import CHECK_HEADING
from toolkit.rules import rules_for

FONT = "Times New Roman"
NUMBER_FORMATS = {  # what staff see in an input cell of each kind
    "count": "#,##0",
    "money": "#,##0.00",
    "date": "dd/mm/yyyy",
    "phone": "@",  # text: the leading 0 of a phone number survives
    "text": "@",
    "commune": "@",
}
CELL_REF = re.compile(r"\$?([A-Z]{1,3})\$?([0-9]+)")


@cache
def open_template(path: str) -> openpyxl.Workbook:
    """Workbooks are read many times; tests only read them."""
    return openpyxl.load_workbook(path)


def template(templates_dir: Path, unit) -> openpyxl.Workbook:
    return open_template(str(templates_dir / f"{unit.file_stem}.xlsx"))


def phone_digits(rnd) -> int:
    return rules_for("PL01", periods_of(rnd)).columns["phone"].digits


def refs(formula: str) -> set[str]:
    """Cells of this sheet a formula refers to (without $); text literals and other sheets left out."""
    formula = re.sub(r'"[^"]*"', "", formula)
    formula = re.sub(r"[A-Za-z_]\w*!\$?[A-Z]+\$?[0-9]+(:\$?[A-Z]+\$?[0-9]+)?", "", formula)
    return {f"{c}{r}" for c, r in CELL_REF.findall(formula)}


DISTRICTS = ["213", "215", "216", "217", "218", "219", "220", "221", "222"]  # REPORTING.md, Hiệp Hòa excluded


@pytest.fixture(params=DISTRICTS)
def district(request, bac_giang_round, templates_dir):
    """(round, unit, workbook) for each district that owes forms."""
    unit = bac_giang_round.unit(request.param)
    return bac_giang_round, unit, template(templates_dir, unit)


def form_sheets(rnd, unit, wb):
    for form in forms_of(unit):
        yield form, layout_of(rnd, form), wb[form.sheet]


# ------------------------------------------------------------------------------------------------- files


def test_command_writes_one_template_per_unit_that_owes_a_form(tmp_path, bac_giang_round, templates_dir):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["templates", "-o", str(out)])

    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 9
    assert "218_luc-nam.xlsx" in names and "213_tp-bac-giang.xlsx" in names
    assert names == sorted(f"{u.code}_{u.slug}.xlsx" for u in bac_giang_round.units_owing())
    assert not any(n.startswith(".tmp") for n in names)  # no temporary file left behind
    assert "– Huyện Hiệp Hòa (223) không phải nộp biểu nào trong đợt này." in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == f"Đã tạo 9 biểu mẫu trong {out}."
    # The command is a thin shell over the library; re-running gives the very same files.
    for name in names:
        assert (out / name).read_bytes() == (templates_dir / name).read_bytes(), name


def test_template_passes_every_structure_check(district):
    rnd, unit, wb = district
    assert structure_problems(wb, rnd, unit, phone_digits(rnd)) == []


def test_visible_and_hidden_sheets(district):
    rnd, unit, wb = district
    expected = ["PL01", "PL02"] if unit.code == "218" else ["PL01", "PL03"]  # REPORTING.md: Lục Nam owes PL02
    states = sheet_states(wb)
    assert [n for n, s in states.items() if s == "visible"] == expected + [GUIDE_SHEET]
    # Hidden, not “very hidden”: LibreOffice knows no very hidden sheets and would show them otherwise.
    assert states[LIST_SHEET] == "hidden"
    assert states[META_SHEET] == "hidden"
    assert wb.active.title == "PL01"


# ------------------------------------------------------------------------------------------------ header


def header_cells(ws) -> dict[str, openpyxl.cell.Cell]:
    return {c.value: c for row in ws.iter_rows(max_row=HEADER_ROW - 1) for c in row if isinstance(c.value, str)}


@pytest.mark.parametrize(
    ("code", "sheet", "annex", "unit_line"),
    [
        ("218", "PL02", "Phụ lục 02", "Đơn vị báo cáo: Huyện Lục Nam (mã 218)"),
        ("218", "PL01", "Phụ lục 01", "Đơn vị báo cáo: Huyện Lục Nam (mã 218)"),
        ("213", "PL03", "Phụ lục 03", "Đơn vị báo cáo: Thành phố Bắc Giang (mã 213)"),
    ],
)
def test_header_follows_the_official_look(bac_giang_round, templates_dir, code, sheet, annex, unit_line):
    rnd = bac_giang_round
    unit = rnd.unit(code)
    ws = template(templates_dir, unit)[sheet]
    form = available_forms()[sheet]
    cells = header_cells(ws)

    body = [cells[line] for line in ("UBND TỈNH BẮC GIANG", "SỞ LAO ĐỘNG - THƯƠNG BINH VÀ XÃ HỘI")]
    assert [c.coordinate for c in body] == ["A1", "A2"]  # issuing body top left
    assert body[1].font.b  # the issuing body itself in bold

    national = cells["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"]
    motto = cells["Độc lập - Tự do - Hạnh phúc"]
    assert (national.row, motto.row) == (1, 2) and national.column == motto.column > 1
    assert national.font.b and 12 <= national.font.sz <= 13
    assert motto.font.b and 13 <= motto.font.sz <= 14
    assert motto.alignment.horizontal == national.alignment.horizontal == "center"
    assert motto.border.bottom.style is not None  # the rule under the motto

    title = form.title.format(year=rnd.plan_date.year).upper()
    plan = "(Kèm theo Kế hoạch số 82/KH-SLĐTBXH ngày 19/4/2024 của Sở Lao động - Thương binh và Xã hội)"
    lines = [cells[annex], cells[title], cells[plan], cells[unit_line]]
    assert [c.row for c in lines] == sorted(c.row for c in lines)  # annex, title, plan, unit — in that order
    assert cells[annex].font.b and cells[annex].alignment.horizontal == "center"
    assert title == title.upper() and "{" not in title and cells[title].font.b
    assert cells[plan].font.i
    if form.kind == "indicators":
        assert "Kỳ báo cáo: Năm 2023 và Quý I/2024" in cells


def test_pl01_title_names_the_year_of_the_plan(bac_giang_round, templates_dir):
    ws = template(templates_dir, bac_giang_round.unit("218"))["PL01"]
    assert "LỊCH KIỂM TRA CÔNG TÁC TRẺ EM VÀ BÌNH ĐẲNG GIỚI NĂM 2024" in header_cells(ws)


def test_everything_is_in_times_new_roman(district):
    rnd, unit, wb = district
    for ws in wb.worksheets:
        if ws.sheet_state != "visible":
            continue
        inputs = {c.address for c in layout_of(rnd, ws.title).inputs} if ws.title != GUIDE_SHEET else set()
        wrong = [
            c.coordinate
            for row in ws.iter_rows()
            for c in row
            if (c.value is not None or c.coordinate in inputs) and c.font.name != FONT
        ]
        assert wrong == [], ws.title


# -------------------------------------------------------------------------------------------- page setup


def test_printing_and_scrolling(district):
    rnd, unit, wb = district
    for form, layout, ws in form_sheets(rnd, unit, wb):
        assert ws.page_setup.orientation == "landscape"
        assert int(ws.page_setup.paperSize) == int(ws.PAPERSIZE_A4)  # A4
        # One page wide, as many pages tall as needed (fitToWidth is 1 when not written).
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert int(ws.page_setup.fitToWidth or 1) == 1 and int(ws.page_setup.fitToHeight) == 0
        assert ws.print_title_rows == f"${HEADER_ROW}:${layout.first_row - 1}"  # headings on every page
        # Headings stay in view; so do the labels (indicators) or the TT and commune columns (PL01).
        if form.kind == "indicators":
            frozen_col = FIRST_VALUE_COL
        else:
            frozen_col = layout.col_of[("commune", "")] + 1
        assert ws.freeze_panes == f"{get_column_letter(frozen_col)}{layout.first_row}"


# ------------------------------------------------------------------------------- protection and inputs


def test_only_the_input_cells_are_unlocked(district):
    rnd, unit, wb = district
    for ws in wb.worksheets:
        assert ws.protection.sheet, ws.title
    for form, layout, ws in form_sheets(rnd, unit, wb):
        assert unlocked_cells(ws) == {c.address for c in layout.inputs}, form.id
    for name in (GUIDE_SHEET, LIST_SHEET, META_SHEET):
        assert unlocked_cells(wb[name]) == set()


def test_every_input_cell_has_its_validation(district):
    rnd, unit, wb = district
    for form, layout, ws in form_sheets(rnd, unit, wb):
        dvs = validations_by_cell(ws)
        problems = {
            c.address: validation_problem(wb, dvs.get(c.address, []), c.kind, rnd, unit, phone_digits(rnd))
            for c in layout.inputs
        }
        assert {a: p for a, p in problems.items() if p} == {}, form.id
        assert set(dvs) <= {c.address for c in layout.inputs}, form.id


def test_validations_keep_their_lists_on_the_list_sheet(bac_giang_round, templates_dir):
    """The commune drop-down reads the hidden DanhMuc sheet — never an inline list, which Excel caps at 255
    characters and which would carry commas inside names."""
    unit = bac_giang_round.unit("219")  # Lục Ngạn, the longest commune list
    wb = template(templates_dir, unit)
    lists = [dv for dv in wb["PL01"].data_validations.dataValidation if dv.type == "list"]
    assert len(lists) == 2  # commune and session
    for dv in lists:
        assert dv.formula1.startswith(f"{LIST_SHEET}!$")
    names = [wb[LIST_SHEET].cell(row=r, column=1).value for r in range(2, len(unit.communes) + 2)]
    assert names == list(unit.communes)
    assert wb[LIST_SHEET].cell(row=len(unit.communes) + 2, column=1).value is None


def test_number_formats(district):
    rnd, unit, wb = district
    for form, layout, ws in form_sheets(rnd, unit, wb):
        for c in layout.inputs:
            if c.kind in NUMBER_FORMATS:
                assert ws[c.address].number_format == NUMBER_FORMATS[c.kind], (form.id, c.address, c.kind)
        for ind in form.indicators:
            if ind.is_rate:
                for period in layout.periods:
                    assert ws[layout.cell(ind.code, "total", period)].number_format == "0.0"


def test_rate_rows_are_computed_not_typed(district):
    rnd, unit, wb = district
    for form, layout, ws in form_sheets(rnd, unit, wb):
        rates = [ind for ind in form.indicators if ind.is_rate]
        if form.kind == "indicators":
            assert rates, form.id
        for ind in rates:
            for period in layout.periods:
                cell = ws[layout.cell(ind.code, "total", period)]
                num = layout.cell(ind.numerator[0], ind.numerator[1], period)
                den = layout.cell(ind.denominator[0], ind.denominator[1], period)
                assert isinstance(cell.value, str) and cell.value.startswith("="), (ind.code, period)
                assert f"{num}/{den}*100" in cell.value
                assert refs(cell.value) == {num, den}
                assert cell.protection.locked
                for fld in ("male", "female"):
                    assert ws[layout.cell(ind.code, fld, period)].value == "x"  # not asked


def test_fields_not_asked_are_marked_x(district):
    rnd, unit, wb = district
    for form, layout, ws in form_sheets(rnd, unit, wb):
        for ind in form.indicators:
            if not ind.is_input:
                continue
            for period in layout.periods:
                for fld in ("total", "male", "female"):
                    value = ws[layout.cell(ind.code, fld, period)].value
                    assert (value is None) if fld in ind.fields else (value == "x"), (ind.code, fld, period)


# ------------------------------------------------------------------------------------------ live checks


def conditional_rules(ws) -> list[tuple[frozenset[str], str]]:
    """(cells coloured, formula) of each conditional format, the formula as seen from each cell checked:
    the formula is written for the range's top-left cell and shifted for the others. A range of several
    areas has no agreed top-left cell (Excel and LibreOffice differ), so its formula must not shift at all.
    """
    out = []
    for cf in ws.conditional_formatting:
        areas = [rng.coord for rng in cf.sqref.ranges]
        cells = frozenset(c for area in areas for c in cells_of(area))
        for rule in cf.rules:
            assert rule.type == "expression"
            formula = "=" + rule.formula[0]
            origin, *others = sorted(cells) if len(areas) > 1 else [None]
            for dest in others:  # shifting by each offset from one cell covers every pair of cells
                moved = Translator(formula, origin=origin).translate_formula(dest)
                assert moved == formula, f"{ws.title} {sorted(cells)}: {formula} seen from {dest} is {moved}"
            out.append((cells, rule.formula[0]))
    return out


def formula_at(ws, cells: frozenset[str], formula: str, cell: str) -> str:
    """The formula a conditional format over one area evaluates at ``cell``."""
    corner = min(cells, key=lambda c: (int(re.sub(r"\D", "", c)), len(c), c))
    return Translator("=" + formula, origin=corner).translate_formula(cell)


def test_check_column_names_every_rule(district):
    rnd, unit, wb = district
    label = {p.id: p.label for p in rnd.periods}
    for form, layout, ws in form_sheets(rnd, unit, wb):
        if form.kind != "indicators":
            continue
        rules = rules_for(form.id, layout.periods)
        check = get_column_letter(layout.check_col)
        assert ws[f"{check}{HEADER_ROW}"].value == CHECK_HEADING
        for ind in form.indicators:
            cell = ws[f"{check}{layout.row_of[ind.code]}"]
            anchored = rules.rules_at(ind.code)
            if not anchored:
                assert cell.value is None, ind.code
                continue
            pieces = parse_check(cell.value)
            assert [text for _, text in pieces] == [f"{r.short} ({label[r.period]}). " for r in anchored], ind.code
            for (cond, _), r in zip(pieces, anchored, strict=True):
                assert refs(cond) == {layout.cell(t.indicator, t.field, r.period) for t in r.terms}, r.id


def test_conditional_formatting_colours_the_cells_of_each_rule(district):
    """One colouring per rule, over exactly the rule's cells, with the condition the check column uses."""
    rnd, unit, wb = district
    for form, layout, ws in form_sheets(rnd, unit, wb):
        if form.kind != "indicators":
            continue
        rules = rules_for(form.id, layout.periods)
        check = get_column_letter(layout.check_col)
        cfs = conditional_rules(ws)
        on_check = [(cells, f) for cells, f in cfs if all(c.startswith(check) for c in cells)]
        on_inputs = [(cells, f) for cells, f in cfs if (cells, f) not in on_check]
        assert len(on_inputs) == len(rules.cross), form.id
        expected = Counter(frozenset(layout.cell(t.indicator, t.field, r.period) for t in r.terms) for r in rules.cross)
        assert Counter(cells for cells, _ in on_inputs) == expected, form.id
        conditions = {
            ind.code: {cond for cond, _ in parse_check(ws[f"{check}{layout.row_of[ind.code]}"].value)}
            for ind in form.indicators
            if rules.rules_at(ind.code)
        }
        all_conditions = set().union(*conditions.values())
        for cells, formula in on_inputs:
            assert refs(formula) == cells
            assert formula.replace("$", "") in all_conditions, formula
        # The check column turns red when it has something to say.
        assert [cells for cells, _ in on_check] == [
            frozenset(f"{check}{r}" for r in range(layout.first_row, layout.last_row + 1))
        ]


def test_conditional_formatting_means_the_same_in_every_cell_it_colours(district):
    """A colouring rule is evaluated once per cell. A rule over several cells of a check (nữ and tổng, a part
    and its parent) must look at the same cells wherever it is evaluated; the check column's rule looks at
    its own row."""
    rnd, unit, wb = district
    for form, layout, ws in form_sheets(rnd, unit, wb):
        check = get_column_letter(layout.check_col)
        for cells, formula in conditional_rules(ws):  # asserts multi-area rules do not shift
            if all(c.startswith(check) for c in cells) and form.kind == "indicators":
                for cell in cells:
                    assert refs(formula_at(ws, cells, formula, cell)) == {cell}
            elif form.kind == "indicators":
                assert refs(formula) == cells, formula


def test_schedule_checks_are_coloured_too(district):
    rnd, unit, wb = district
    layout = layout_of(rnd, "PL01")
    ws = wb["PL01"]
    check = get_column_letter(layout.check_col)
    cfs = conditional_rules(ws)
    for row in range(layout.first_row, layout.last_row + 1):
        pieces = parse_check(ws[f"{check}{row}"].value)
        coloured = {f for cells, f in cfs if all(int(re.sub(r"\D", "", c)) == row for c in cells)}
        assert coloured == {cond for cond, _ in pieces}, row
    rules = rules_for("PL01", layout.periods)
    shorts = {c.short for c in rules.columns.values() if c.short} | {u.short for u in rules.unique}
    texts = {text.removesuffix(". ") for _, text in parse_check(ws[f"{check}{layout.first_row}"].value)}
    assert shorts <= texts
    form = available_forms()["PL01"]
    required = {
        rules.required_short.format(label=form.column(c).label) for c, con in rules.columns.items() if con.required
    }
    assert required <= texts


# ---------------------------------------------------------------------------------------------- metadata


def test_metadata_identifies_round_unit_forms_and_layout(district):
    rnd, unit, wb = district
    meta = metadata(wb)
    assert meta["round_id"] == "bac-giang-2024-tebdg"
    assert meta["unit_code"] == unit.code
    assert meta["forms"] == ("PL01@1,PL02@1" if unit.code == "218" else "PL01@1,PL03@1")
    for key, value in expected_metadata(rnd, unit).items():
        assert meta[key] == value, key
    for form in forms_of(unit):
        assert cell_map(meta, form.id) == expected_cell_map(layout_of(rnd, form))
    props = {p.name: p.value for p in wb.custom_doc_props.props}
    assert {k: props.get(f"baocao:{k}") for k in ("round_id", "unit_code", "forms")} == {
        k: meta[k] for k in ("round_id", "unit_code", "forms")
    }
    assert wb[META_SHEET].sheet_state == "hidden" and wb[META_SHEET].protection.sheet


def test_fingerprint_identifies_the_form_not_the_unit(bac_giang_round, templates_dir):
    by_form: dict[str, set[str]] = {}
    for unit in bac_giang_round.units_owing():
        meta = metadata(template(templates_dir, unit))
        for form in forms_of(unit):
            by_form.setdefault(form.id, set()).add(meta[f"fingerprint:{form.id}"])
    assert set(by_form) == {"PL01", "PL02", "PL03"}
    assert all(len(prints) == 1 for prints in by_form.values())
    assert len({p for prints in by_form.values() for p in prints}) == 3


# ------------------------------------------------------------------------------------ PL01 and the guide


def test_pl01_is_prefilled_with_the_planned_visit(district):
    rnd, unit, wb = district
    layout = layout_of(rnd, "PL01")
    ws = wb["PL01"]
    assert unit.planned is not None
    for i in range(layout.form.rows):
        commune = ws[layout.schedule_cell("commune", i)].value
        date = ws[layout.schedule_cell("date", i)].value
        if i < len(unit.planned.communes):
            assert commune == unit.planned.communes[i]
            assert date == dt.datetime.combine(unit.planned.date, dt.time())
            assert unit.owns_commune(commune)
        else:
            assert (commune, date) == (None, None)
        for code in ("session", "focal_person", "phone", "notes"):  # the unit fills these in
            assert ws[layout.schedule_cell(code, i)].value is None
        assert ws[layout.schedule_cell("tt", i)].value == i + 1


def test_guide_tells_what_to_send_and_by_when(district):
    rnd, unit, wb = district
    text = "\n".join(str(v) for (v,) in wb[GUIDE_SHEET].iter_rows(max_col=1, values_only=True) if v)
    assert unit.name.upper() in text
    assert "Hạn nộp: chậm nhất ngày 10/05/2024." in text  # on time on the day itself, as the status counts it
    for form in forms_of(unit):
        assert form.annex_label in text
    assert rnd.contact["email"] in text


# ------------------------------------------------------------------------------------ commune-level round


def test_commune_round_gives_99_templates_with_the_same_structure(commune_round, commune_templates_dir):
    rnd = commune_round
    files = sorted(p.name for p in commune_templates_dir.iterdir())
    assert len(files) == 99
    assert files == sorted(f"{u.file_stem}.xlsx" for u in rnd.units_owing())
    problems = {}
    for unit in rnd.units_owing():
        wb = openpyxl.load_workbook(commune_templates_dir / f"{unit.file_stem}.xlsx")
        found = structure_problems(wb, rnd, unit, phone_digits(rnd))
        if metadata(wb).get("level") != "commune":
            found.append("metadata level is not commune")
        if found:
            problems[unit.code] = found
    assert problems == {}


def test_commune_template_reports_on_the_commune_itself(commune_round, commune_templates_dir):
    rnd = commune_round
    unit = rnd.unit("07210")  # Phường Bắc Giang: PL01 + PL03, planned visit
    wb = open_template(str(commune_templates_dir / f"{unit.file_stem}.xlsx"))
    assert "Đơn vị báo cáo: Phường Bắc Giang (mã 07210)" in header_cells(wb["PL03"])
    assert "Kỳ báo cáo: Năm 2025 và Quý I/2026" in header_cells(wb["PL03"])
    layout = layout_of(rnd, "PL01")
    assert wb["PL01"][layout.schedule_cell("commune", 0)].value == "Phường Bắc Giang"
    assert wb["PL01"][layout.schedule_cell("date", 0)].value == dt.datetime(2026, 5, 12)
    assert [wb[LIST_SHEET]["A2"].value, wb[LIST_SHEET]["A3"].value] == ["Phường Bắc Giang", None]
