"""The templates in a real spreadsheet program: LibreOffice (headless) fills them in as staff would.

Values are typed into the input cells, the sheet is recalculated and the “Kiểm tra” column read back. What the
column must say is worked out here from the rules (``rules_for``: each rule's short text and period label),
never copied from a template. Then LibreOffice saves the filled workbook as .xlsx, .xls and .ods; the saved
files are reopened (openpyxl for .xlsx, LibreOffice for all three) to see that nothing a unit needs was lost.

All LibreOffice work happens in two ``run`` calls (one LibreOffice start each), in a module-scoped fixture.
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter, range_boundaries
from support import libreoffice as lo
from support.workbook import (
    GUIDE_SHEET,
    LIST_SHEET,
    META_SHEET,
    excel_serial,
    forms_of,
    layout_of,
    metadata,
    periods_of,
    structure_problems,
)

from toolkit.forms import HEADER_ROW, Form, Layout
from toolkit.round import Round, Unit
from toolkit.rules import CrossRule, FormRules, Term, rules_for

pytestmark = pytest.mark.libreoffice

FORMATS = ("xlsx", "xls", "ods")
# What LibreOffice calls each kind of data validation (com.sun.star.sheet.ValidationType).
LO_VALIDATION = {
    "count": "WHOLE",
    "money": "DECIMAL",
    "date": "DATE",
    "commune": "LIST",
    "session": "LIST",
    "phone": "TEXT_LEN",
    "text": "ANY",
}
FOCAL_PERSON = "Nguyễn Thị Hoa"
GOOD_PHONE = "0912345678"
BAD_PHONE = "912345678"  # nine digits, leading zero lost
UNKNOWN_COMMUNE = "Xã Không Có Trong Danh Sách"


# ---------------------------------------------------------------------------------------- the scenarios


@dataclass
class Scenario:
    """What a unit types into its template and what the template must answer."""

    rnd: Round
    unit: Unit
    source: Path
    edits: list[dict] = field(default_factory=list)
    typed: dict[tuple[str, str], object] = field(default_factory=dict)  # (sheet, cell) -> value typed or kept
    checks: dict[tuple[str, str], str] = field(default_factory=dict)  # (sheet, cell) -> expected check text
    mistakes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # name -> (sheet, cell, text)
    rates: dict[tuple[str, str], float | None] = field(default_factory=dict)  # None: shown empty
    summary: dict[str, tuple[str, int]] = field(default_factory=dict)  # sheet -> (cell, rows to check)
    inputs: dict[tuple[str, str], str] = field(default_factory=dict)  # (sheet, cell) -> input kind
    tables: dict[str, str] = field(default_factory=dict)  # sheet -> range of its table, read in one go

    def enter(self, sheet: str, cell: str, value) -> None:
        """Type a value as a person would (nothing for a blank)."""
        if value is None:
            return
        if isinstance(value, dt.date):
            self.edits.append({"sheet": sheet, "cell": cell, "date": value.isoformat()})
        elif isinstance(value, str):
            self.edits.append({"sheet": sheet, "cell": cell, "text": value})
        else:
            self.edits.append({"sheet": sheet, "cell": cell, "value": value})
        self.typed[(sheet, cell)] = value

    def reads(self) -> list[dict]:
        cells = set(self.checks) | set(self.rates) | {(s, c) for s, (c, _) in self.summary.items()}
        return [{"sheet": s, "cell": c} for s, c in sorted(cells)]

    def sheets(self) -> list[str]:
        return [f.sheet for f in forms_of(self.unit)] + [GUIDE_SHEET, LIST_SHEET, META_SHEET]

    def queries(self) -> dict:
        """What to ask LibreOffice about the workbook (after the edits, if any)."""
        return {
            "read": self.reads(),
            "arrays": [{"sheet": sheet, "range": rng} for sheet, rng in self.tables.items()],
            "formats": self.sheets(),
        }


def rule_fails(rule: CrossRule, values: dict) -> bool:
    """The rule as the rule file states it, with its strategy for blank cells."""
    left = [values.get((t.indicator, t.field, rule.period)) for t in rule.left]
    right = [values.get((t.indicator, t.field, rule.period)) for t in rule.right]
    present = [v for v in left + right if v is not None]
    if rule.missing == "skip_if_any_missing" and len(present) < len(left + right):
        return False
    if rule.missing == "skip_if_all_missing" and not present:
        return False
    return not rule.holds(sum(v or 0 for v in left), sum(v or 0 for v in right))


def check_text(rules: FormRules, anchor: str, values: dict, label: dict[str, str]) -> str:
    return " ".join(f"{r.short} ({label[r.period]})." for r in rules.rules_at(anchor) if rule_fails(r, values))


def find_rule(rules: FormRules, name: str, anchor: str, period: str, cell: Term) -> CrossRule:
    """The one expanded rule of that name, shown in the anchor's row, that looks at the cell."""
    (rule,) = [r for r in rules.cross if (r.rule, r.anchor, r.period) == (name, anchor, period) and cell in r.terms]
    return rule


def fill_indicators(sc: Scenario, form: Form, layout: Layout, summary_cell: str) -> None:
    """Plausible figures everywhere, then one mistake of each kind on its own row."""
    p0, p1 = layout.periods
    rules = rules_for(form.id, layout.periods)
    codes = {i.code for i in form.indicators}
    values: dict[tuple[str, str, str], float | None] = {}
    for c in layout.inputs:
        money = form.indicator(c.indicator).value == "money"
        values[(c.indicator, c.field, c.period)] = 12.5 if money else {"total": 10, "male": 6, "female": 4}[c.field]

    def put(code, fld, period, value):
        if code in codes:
            values[(code, fld, period)] = value

    for period in (p0, p1):
        put("TE01", "total", period, 1000)
        put("TE01", "male", period, 520)
        put("TE01", "female", period, 480)
        put("TE09", "total", period, 20)
        put("TE09A", "total", period, 5)
    put("BG13", "total", p0, 25)
    put("BG13", "female", p0, 9)
    put("BG13", "total", p1, 0)  # nobody: the rate stays empty instead of #DIV/0!
    put("BG13", "female", p1, 0)
    put("TE11", "total", p0, None)  # left blank: a blank is missing data, the row is not judged yet

    mistakes = [  # (name, rule, anchor, period, cell typed wrong, value)
        ("nam + nữ ≠ tổng", "male_female_sum", "TE01", p1, ("TE01", "male"), 500),
        ("nữ > tổng", "female_le_total", "TE02", p0, ("TE02", "female"), 12),
        ("trong đó > dòng tổng", "part_le_parent", "TE04A", p1, ("TE04A", "total"), 11),
        ("đuối nước > tai nạn thương tích", "TE07_LE_TE06", "TE07", p0, ("TE07", "total"), 12),
        ("ít nạn nhân hơn số vụ (cảnh báo)", "BG17_VICTIMS", "BG18", p1, ("BG17", "total"), 15),
    ]
    label = {p.id: p.label for p in sc.rnd.periods}
    for name, rule_name, anchor, period, (code, fld), value in mistakes:
        if anchor not in codes:
            continue
        put(code, fld, period, value)
        rule = find_rule(rules, rule_name, anchor, period, Term(code, fld))
        check_cell = f"{col_letter(layout.check_col)}{layout.row_of[anchor]}"
        sc.mistakes[f"{form.id}: {name}"] = (form.sheet, check_cell, f"{rule.short} ({label[period]}).")

    for (code, fld, period), value in values.items():
        sc.enter(form.sheet, layout.cell(code, fld, period), value)
    anchored = [i.code for i in form.indicators if rules.rules_at(i.code)]
    for code in anchored:
        cell = f"{col_letter(layout.check_col)}{layout.row_of[code]}"
        sc.checks[(form.sheet, cell)] = check_text(rules, code, values, label)
    for ind in form.indicators:
        if ind.is_rate:
            for period in layout.periods:
                num = values.get((*ind.numerator, period))
                den = values.get((*ind.denominator, period))
                rate = (num or 0) / den * 100 if den else None  # IF(N(den)>0, num/den*100, "")
                sc.rates[(form.sheet, layout.cell(ind.code, "total", period))] = rate
    flagged = sum(1 for (sheet, _), text in sc.checks.items() if sheet == form.sheet and text)
    sc.summary[form.sheet] = (summary_cell, flagged)
    for c in layout.inputs:
        sc.inputs[(form.sheet, c.address)] = c.kind


def fill_schedule(sc: Scenario, form: Form, layout: Layout) -> None:
    """PL01: one good row, then one mistake per row. Rows the template prefilled with the planned visit keep
    their commune and date (the unit confirms them) and get the rest typed in."""
    rnd, unit = sc.rnd, sc.unit
    rules = rules_for(form.id, layout.periods)
    start, end = rnd.inspection.start, rnd.inspection.end
    planned = unit.planned
    days = [start + dt.timedelta(days=d) for d in range((end - start).days + 1)]
    days = [d for d in days if not planned or d != planned.date]  # no clash with the planned visit
    short = {code: con.short for code, con in rules.columns.items()}
    (unique,) = rules.unique
    rows = [  # (what is wrong, commune, date, phone, short texts expected)
        (None, unit.communes[0], days[0], GOOD_PHONE, []),
        ("số điện thoại sai", unit.communes[0], days[1], BAD_PHONE, [short["phone"]]),
        ("xã không có trong danh sách", UNKNOWN_COMMUNE, days[2], GOOD_PHONE, [short["commune"]]),
        ("ngày ngoài thời gian kiểm tra", unit.communes[0], end + dt.timedelta(days=1), GOOD_PHONE, [short["date"]]),
        ("trùng xã và ngày", unit.communes[-1], days[3], GOOD_PHONE, [unique.short]),
        ("trùng xã và ngày", unit.communes[-1], days[3], GOOD_PHONE, [unique.short]),
    ]
    assert len(rows) == form.rows
    prefilled = list(planned.communes) if planned else []
    for i, (mistake, commune, date, phone, expected) in enumerate(rows):
        if i < len(prefilled):
            sc.typed[(form.sheet, layout.schedule_cell("commune", i))] = prefilled[i]
            sc.typed[(form.sheet, layout.schedule_cell("date", i))] = planned.date
        else:
            sc.enter(form.sheet, layout.schedule_cell("commune", i), commune)
            sc.enter(form.sheet, layout.schedule_cell("date", i), date)
        sc.enter(form.sheet, layout.schedule_cell("session", i), rnd.inspection.sessions[i % 2])
        sc.enter(form.sheet, layout.schedule_cell("focal_person", i), FOCAL_PERSON)
        sc.enter(form.sheet, layout.schedule_cell("phone", i), phone)
        check_cell = f"{col_letter(layout.check_col)}{layout.first_row + i}"
        sc.checks[(form.sheet, check_cell)] = " ".join(f"{text}." for text in expected)
        if mistake:
            sc.mistakes.setdefault(f"PL01: {mistake}", (form.sheet, check_cell, f"{expected[0]}."))
    for c in layout.inputs:
        sc.inputs[(form.sheet, c.address)] = c.kind


def col_letter(col: int) -> str:
    return get_column_letter(col)


def summary_cell(path: Path, sheet: str) -> str:
    """The “⚠ Có N dòng cần kiểm tra lại” cell above the table (found, not assumed)."""
    ws = openpyxl.load_workbook(path)[sheet]
    (cell,) = [
        c.coordinate
        for row in ws.iter_rows(max_row=HEADER_ROW - 1)
        for c in row
        if isinstance(c.value, str) and c.value.startswith("=") and "COUNTIF" in c.value
    ]
    return cell


def build(rnd: Round, unit: Unit, templates: Path) -> Scenario:
    source = templates / f"{unit.file_stem}.xlsx"
    sc = Scenario(rnd, unit, source)
    for form in forms_of(unit):
        layout = layout_of(rnd, form)
        sc.tables[form.sheet] = f"A{layout.first_row}:{col_letter(layout.check_col)}{layout.last_row}"
        if form.kind == "schedule":
            fill_schedule(sc, form, layout)
        else:
            fill_indicators(sc, form, layout, summary_cell(source, form.sheet))
    sc.tables[META_SHEET] = f"A1:B{openpyxl.load_workbook(source)[META_SHEET].max_row}"
    return sc


# --------------------------------------------------------------------------------------------- the runs

TARGETS = {  # name -> (round fixture, unit code, saved in every format and reopened)
    "district PL02 (Lục Nam)": ("bac_giang_round", "218", False),
    "district PL03 (TP. Bắc Giang)": ("bac_giang_round", "213", True),
    "commune PL03 (Phường Bắc Giang)": ("commune_round", "07210", True),
}
ROUNDTRIP = [name for name, (_, _, saved) in TARGETS.items() if saved]


@dataclass
class Outcome:
    scenario: Scenario
    filled: dict  # LibreOffice's answer after typing, recalculating (and saving as .xlsx)
    saved: dict[str, Path] = field(default_factory=dict)  # format -> file LibreOffice wrote
    reopened: dict[str, dict] = field(default_factory=dict)  # format -> LibreOffice's answer on reopening


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, templates_dir, commune_templates_dir) -> dict[str, Outcome]:
    out_dir = tmp_path_factory.mktemp("libreoffice")
    dirs = {"bac_giang_round": templates_dir, "commune_round": commune_templates_dir}
    scenarios = {}
    for name, (round_fixture, code, _) in TARGETS.items():
        rnd = request.getfixturevalue(round_fixture)
        scenarios[name] = build(rnd, rnd.unit(code), dirs[round_fixture])

    jobs = []
    found: dict[str, Outcome] = {}
    for name, sc in scenarios.items():
        outcome = found[name] = Outcome(sc, {})
        for fmt in FORMATS if name in ROUNDTRIP else ("xlsx",):
            outcome.saved[fmt] = out_dir / f"{sc.unit.file_stem}.filled.{fmt}"
        outputs = [{"path": str(path), "format": fmt} for fmt, path in outcome.saved.items()]
        jobs.append({"input": str(sc.source), "edits": sc.edits, "outputs": outputs, **sc.queries()})
    for outcome, result in zip(found.values(), lo.run(jobs), strict=True):
        outcome.filled = result

    reopen = [(name, fmt) for name in ROUNDTRIP for fmt in FORMATS]
    results = lo.run([{"input": str(found[n].saved[f]), **scenarios[n].queries()} for n, f in reopen])
    for (name, fmt), result in zip(reopen, results, strict=True):
        found[name].reopened[fmt] = result
    return found


def answers(result: dict, sc: Scenario) -> dict[tuple[str, str], dict]:
    return dict(zip([(r["sheet"], r["cell"]) for r in sc.reads()], result["reads"], strict=True))


def table_values(result: dict, sc: Scenario) -> dict[tuple[str, str], object]:
    """(sheet, cell) -> value LibreOffice holds (numbers as floats, text, "" when empty) for the tables."""
    out = {}
    for (sheet, rng), rows in zip(sc.tables.items(), result["arrays"], strict=True):
        first_col, first_row, _, _ = range_boundaries(rng)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                out[(sheet, f"{get_column_letter(first_col + c)}{first_row + r}")] = value
    return out


def cell_formats(result: dict) -> dict[str, tuple[set[str], dict[str, dict]]]:
    """sheet -> (unlocked cells, cell -> validation) as LibreOffice holds them (cells without a validation
    left out). Whole unlocked columns or rows show up as their range, not cell by cell."""
    out = {}
    for sheet, groups in result["formats"].items():
        unlocked: set[str] = set()
        validations: dict[str, dict] = {}
        for group in groups:
            if group["locked"] and group["validation"]["type"] == "ANY":
                continue
            for c0, r0, c1, r1 in group["ranges"]:
                if (c1 - c0 + 1) * (r1 - r0 + 1) > 10_000:
                    unlocked.add(f"{get_column_letter(c0 + 1)}{r0 + 1}:{get_column_letter(c1 + 1)}{r1 + 1}")
                    continue
                for r in range(r0, r1 + 1):
                    for c in range(c0, c1 + 1):
                        cell = f"{get_column_letter(c + 1)}{r + 1}"
                        if not group["locked"]:
                            unlocked.add(cell)
                        if group["validation"]["type"] != "ANY":
                            validations[cell] = group["validation"]
        out[sheet] = (unlocked, validations)
    return out


def format_problems(result: dict, sc: Scenario) -> list[str]:
    """Input cells open and validated, every other cell locked and free of validations, sheets protected."""
    problems = []
    formats = cell_formats(result)
    for sheet in sc.sheets():
        inputs = {cell: kind for (s, cell), kind in sc.inputs.items() if s == sheet}
        unlocked, validations = formats[sheet]
        if unlocked != set(inputs):
            problems.append(
                f"{sheet}: unlocked {sorted(unlocked - set(inputs))[:5]}, locked {sorted(set(inputs) - unlocked)[:5]}"
            )
        stray = sorted(set(validations) - set(inputs))
        if stray:
            problems.append(f"{sheet}: validations outside the input cells {stray[:5]}")
        for cell, kind in inputs.items():
            got = validations.get(cell, {"type": "ANY", "show_error": False})
            if got["type"] != LO_VALIDATION[kind] or (kind != "text" and not got["show_error"]):
                problems.append(f"{sheet}!{cell} ({kind}): validation {got}")
        if not result["protected"][sheet]:
            problems.append(f"{sheet}: not protected")
    return problems


@pytest.fixture(params=list(TARGETS))
def outcome(request, outcomes) -> Outcome:
    return outcomes[request.param]


@pytest.fixture(params=ROUNDTRIP)
def saved(request, outcomes) -> Outcome:
    return outcomes[request.param]


# ------------------------------------------------------------------------------------- the check column


def test_scenario_makes_each_kind_of_mistake(outcome):
    """Guard for the tests below: the typed figures really contain the intended mistakes."""
    sc = outcome.scenario
    kinds = {name.split(": ", 1)[1] for name in sc.mistakes}
    assert {"số điện thoại sai", "xã không có trong danh sách", "ngày ngoài thời gian kiểm tra"} <= kinds
    assert {"trùng xã và ngày", "nam + nữ ≠ tổng", "nữ > tổng", "trong đó > dòng tổng"} <= kinds
    assert "đuối nước > tai nạn thương tích" in kinds
    assert all(sc.checks[(sheet, cell)] for sheet, cell, _ in sc.mistakes.values())
    assert any(not text for text in sc.checks.values())


def test_each_mistake_is_named_in_its_row(outcome):
    sc = outcome.scenario
    got = answers(outcome.filled, sc)
    for name, (sheet, cell, text) in sc.mistakes.items():
        assert text in got[(sheet, cell)]["string"], name


def test_check_column_says_exactly_what_the_rules_say(outcome):
    """Every checked row: empty when the row is right, the short texts of the failed rules otherwise."""
    sc = outcome.scenario
    got = answers(outcome.filled, sc)
    actual = {key: got[key]["string"].strip() for key in sc.checks}
    assert actual == sc.checks
    for key in sc.checks:
        assert got[key]["type"] == "formula" and got[key]["error"] == 0


def test_good_rows_stay_empty(outcome):
    sc = outcome.scenario
    got = answers(outcome.filled, sc)
    good = [key for key, text in sc.checks.items() if not text]
    assert good
    assert {key: got[key]["string"] for key in good} == dict.fromkeys(good, "")


def test_blank_cells_are_not_judged_yet(outcome):
    """TE11 has nữ but no tổng in Năm 2023: missing data, reported by validation, not by the live check."""
    sc = outcome.scenario
    got = answers(outcome.filled, sc)
    for form in forms_of(sc.unit):
        if form.kind != "indicators":
            continue
        layout = layout_of(sc.rnd, form)
        assert (form.sheet, layout.cell("TE11", "total", layout.periods[0])) not in sc.typed
        assert got[(form.sheet, f"{col_letter(layout.check_col)}{layout.row_of['TE11']}")]["string"] == ""


def test_rates_are_computed(outcome):
    sc = outcome.scenario
    got = answers(outcome.filled, sc)
    assert sc.rates
    for key, rate in sc.rates.items():
        if rate is None:
            assert got[key]["string"] == "" and got[key]["error"] == 0, key
        else:
            assert math.isclose(got[key]["value"], rate, rel_tol=1e-9), key


def test_bg13r_is_the_share_of_women(outcomes):
    sc = outcomes["district PL03 (TP. Bắc Giang)"].scenario
    got = answers(outcomes["district PL03 (TP. Bắc Giang)"].filled, sc)
    layout = layout_of(sc.rnd, "PL03")
    y2023 = layout.periods[0]
    female = sc.typed[("PL03", layout.cell("BG13", "female", y2023))]
    total = sc.typed[("PL03", layout.cell("BG13", "total", y2023))]
    assert got[("PL03", layout.cell("BG13R", "total", y2023))]["value"] == pytest.approx(female / total * 100)
    assert got[("PL03", layout.cell("BG13R", "total", y2023))]["string"] in ("36.0", "36,0")  # one decimal


def test_summary_line_counts_rows_to_check(outcome):
    sc = outcome.scenario
    got = answers(outcome.filled, sc)
    for sheet, (cell, flagged) in sc.summary.items():
        assert flagged > 0
        text = got[(sheet, cell)]["string"]
        assert f"Có {flagged} dòng cần kiểm tra lại" in text


def test_input_cells_are_open_and_validated_in_libreoffice(outcome):
    assert format_problems(outcome.filled, outcome.scenario) == []


def test_libreoffice_took_the_typed_values(outcome):
    sc = outcome.scenario
    held = table_values(outcome.filled, sc)
    for (sheet, cell), value in sc.typed.items():
        if isinstance(value, dt.date):
            value = excel_serial(value)
        assert held[(sheet, cell)] == value, (sheet, cell)


# -------------------------------------------------------------------------------- saved by LibreOffice


def test_saved_xlsx_keeps_protection_validations_and_metadata(saved):
    sc = saved.scenario
    wb = openpyxl.load_workbook(saved.saved["xlsx"])
    digits = rules_for("PL01", periods_of(sc.rnd)).columns["phone"].digits
    assert structure_problems(wb, sc.rnd, sc.unit, digits) == []
    assert wb[META_SHEET].sheet_state == "hidden"
    assert metadata(wb) == metadata(openpyxl.load_workbook(sc.source))


def test_saved_xlsx_keeps_what_was_typed(saved):
    sc = saved.scenario
    wb = openpyxl.load_workbook(saved.saved["xlsx"])
    for (sheet, cell), value in sc.typed.items():
        got = wb[sheet][cell].value
        if isinstance(value, dt.date):
            assert got == dt.datetime.combine(value, dt.time()), (sheet, cell)
        else:
            assert got == value, (sheet, cell)


def test_saved_xlsx_keeps_live_checks_and_their_results(saved):
    """Formulas stay formulas, and their last results are stored, so a reader that does not recalculate
    (baocao validate, a phone preview) sees the same messages."""
    sc = saved.scenario
    formulas = openpyxl.load_workbook(saved.saved["xlsx"])
    cached = openpyxl.load_workbook(saved.saved["xlsx"], data_only=True)
    for sheet, cell in sc.checks:
        assert str(formulas[sheet][cell].value).startswith("="), (sheet, cell)
        assert (cached[sheet][cell].value or "").strip() == sc.checks[(sheet, cell)], (sheet, cell)


@pytest.mark.parametrize("fmt", FORMATS)
def test_saved_file_reopens_with_the_same_answers(saved, fmt):
    """Every value of every table (typed, computed, checked) is the same after saving and reopening."""
    sc = saved.scenario
    assert table_values(saved.reopened[fmt], sc) == table_values(saved.filled, sc)
    first, again = answers(saved.filled, sc), answers(saved.reopened[fmt], sc)
    assert {k: v["string"] for k, v in again.items()} == {k: v["string"] for k, v in first.items()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_saved_file_keeps_the_metadata(saved, fmt):
    """The hidden sheet that tells baocao whose file this is survives every format, values unchanged."""
    sc = saved.scenario
    held = table_values(saved.reopened[fmt], sc)
    rows = range_boundaries(sc.tables[META_SHEET])[3]
    pairs = [(held[(META_SHEET, f"A{r}")], held[(META_SHEET, f"B{r}")]) for r in range(1, rows + 1)]
    assert {k: v for k, v in pairs if k and v != ""} == metadata(openpyxl.load_workbook(sc.source))
    assert saved.reopened[fmt]["visible"][META_SHEET] is False


@pytest.mark.parametrize("fmt", FORMATS)
def test_saved_file_keeps_sheets_protection_and_validations(saved, fmt):
    sc = saved.scenario
    result = saved.reopened[fmt]
    assert result["sheets"] == sc.sheets()
    assert result["visible"] == {name: name not in (LIST_SHEET, META_SHEET) for name in sc.sheets()}
    assert format_problems(result, sc) == []


# ------------------------------------------------------------------------------------ the gate itself


def test_ci_fails_instead_of_skipping_without_libreoffice(pytester, monkeypatch):
    """Without LibreOffice the marked tests skip on a laptop but fail in CI."""
    pytester.makepyfile(
        test_needs_lo=textwrap.dedent(
            """
            import pytest

            @pytest.mark.libreoffice
            def test_uses_libreoffice():
                pass
            """
        )
    )
    pytester.makeconftest(
        textwrap.dedent(
            f"""
            import importlib.util

            spec = importlib.util.spec_from_file_location("baocao_conftest", {str(Path(__file__).parent / "conftest.py")!r})
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            pytest_configure = module.pytest_configure
            pytest_runtest_setup = module.pytest_runtest_setup
            """
        )
    )
    monkeypatch.setenv("BAOCAO_UNO_PYTHON", str(pytester.path / "no-such-python"))

    monkeypatch.setenv("CI", "true")
    in_ci = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    in_ci.assert_outcomes(errors=1)
    in_ci.stdout.fnmatch_lines(["*CI=true but LibreOffice*"])

    monkeypatch.delenv("CI")
    local = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    local.assert_outcomes(skipped=1)
