"""Issue 3 – validation of returned workbooks made by a real spreadsheet program.

One LibreOffice run fills the Bắc Giang templates as staff would: clean returns (.xlsx, .xls, .ods) and returns
with one planted fault each. The whole folder is validated at once (pandera over all units together), and every
file must carry exactly the findings planted in it, at the cell the form layout says (never a hard-coded
address), and every figure read must be the figure typed.
"""

from __future__ import annotations

import datetime as dt
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from support import libreoffice as lo
from support.returns import edits_for

from toolkit.consolidate import consolidate
from toolkit.findings import ERROR, WARNING
from toolkit.forms import Form, get_form
from toolkit.read import read_submission
from toolkit.render import META_SHEET, template_metadata, write_template
from toolkit.round import Round, load_round
from toolkit.rules import rules_for
from toolkit.validate import Report, validate_paths, validate_submissions

pytestmark = pytest.mark.libreoffice

ON_TIME = dt.datetime(2024, 5, 8, 9, 30)
OTHER_ROUND_ID = "bac-giang-2023-tebdg"
TCVN3_NAME = "Nguy\xd4n Th\xde H\xe5ng"  # “Nguyễn Thị Hồng” typed with the .VnTime font (TCVN3)
TCVN3_UNICODE = "Nguyễn Thị Hồng"


@dataclass(frozen=True)
class Expect:
    code: str
    severity: str
    cell: str | None = None
    form: str | None = None


class Filler:
    """A unit's clean figures as LibreOffice edits, with helpers to plant one fault."""

    def __init__(self, rnd: Round, unit_code: str, seed: int) -> None:
        self.rnd = rnd
        self.unit = rnd.unit(unit_code)
        self.periods = tuple(p.id for p in rnd.periods)
        self.year, self.quarter = self.periods[0], self.periods[1]
        self.edits: dict[tuple[str, str], dict] = {}
        self.typed: dict[tuple[str, str, str, str], float | None] = {}  # (form, indicator, field, period) -> value
        self.delete_sheets: list[str] = []
        self.template: Path | None = None  # another template than the unit's own
        self.schedule_nfc: dict[tuple[int, str], str] = {}  # schedule text expected when read, when it differs
        self.out_dir: Path | None = None  # where a case may write helper files (another round's template)
        for form_id in self.unit.forms:
            form = get_form(form_id)
            for e in edits_for(form, rnd, self.unit, seed):
                self.edits[(e["sheet"], e["cell"])] = e
            if form.kind == "indicators":
                for c in form.layout(self.periods).inputs:
                    self.typed[(form.id, c.indicator, c.field, c.period)] = self.edits[(form.sheet, c.address)]["value"]

    # indicator forms
    def cell(self, form_id: str, code: str, fld: str = "total", period: str | None = None) -> str:
        return get_form(form_id).layout(self.periods).cell(code, fld, period or self.year)

    def value(self, form_id: str, code: str, fld: str = "total", period: str | None = None) -> float:
        return self.typed[(form_id, code, fld, period or self.year)]

    def set(self, form_id: str, code: str, fld: str = "total", period: str | None = None, read_as=..., **edit) -> str:
        """Type ``edit`` into a figure's cell; ``read_as``: the value the reader should use (default: the number)."""
        period = period or self.year
        form = get_form(form_id)
        address = self.cell(form_id, code, fld, period)
        self.edits[(form.sheet, address)] = {"sheet": form.sheet, "cell": address, **edit}
        self.typed[(form_id, code, fld, period)] = edit.get("value") if read_as is ... else read_as
        return address

    # the schedule (PL01)
    @property
    def schedule_form(self) -> Form:
        return get_form("PL01")

    def row_cell(self, column: str, index: int) -> str:
        return self.schedule_form.layout(()).schedule_cell(column, index)

    def row_edit(self, index: int, column: str) -> dict:
        return self.edits[(self.schedule_form.sheet, self.row_cell(column, index))]

    def set_row(self, index: int, column: str, **edit) -> str:
        address = self.row_cell(column, index)
        self.edits[(self.schedule_form.sheet, address)] = {"sheet": self.schedule_form.sheet, "cell": address, **edit}
        return address

    def typed_schedule(self) -> list[dict]:
        """The schedule rows as typed: column -> text or date, in row order."""
        sheet = self.schedule_form.sheet
        rows: dict[int, dict] = {}
        layout = self.schedule_form.layout(())
        for i in range(self.schedule_form.rows):
            for col in self.schedule_form.columns:
                if col.type == "seq":
                    continue
                e = self.edits.get((sheet, layout.schedule_cell(col.code, i)))
                if e is None:
                    continue
                value = dt.date.fromisoformat(e["date"]) if "date" in e else e.get("text")
                rows.setdefault(i, {})[col.code] = self.schedule_nfc.get((i, col.code), value)
        return [rows[i] for i in sorted(rows)]

    def violated_rules(self, form_id: str) -> set[str]:
        """The cross rules the typed figures break (a guard on the planted data itself)."""
        out = set()
        for rule in rules_for(form_id, self.periods).cross:
            terms = [(form_id, t.indicator, t.field, rule.period) for t in rule.terms]
            if any(self.typed.get(k) is None for k in terms):
                continue
            left = sum(self.typed[(form_id, t.indicator, t.field, rule.period)] for t in rule.left)
            right = sum(self.typed[(form_id, t.indicator, t.field, rule.period)] for t in rule.right)
            if not rule.holds(left, right):
                out.add(rule.rule)
        return out


# ----------------------------------------------------------------------------------------- planted faults
# Each: (file name, template unit, format, plant) where plant(filler) types the fault and returns the findings
# the file must carry. Units are reused across files; duplicate-submission is checked on its own.


def clean(f: Filler) -> list[Expect]:
    return []


def blank_cell(f: Filler) -> list[Expect]:
    cell = f.set("PL03", "TE05", clear=True, read_as=None)
    return [Expect("missing-value", ERROR, cell, "PL03")]


def female_over_total(f: Filler) -> list[Expect]:
    cell = f.set("PL03", "TE04", "female", value=f.value("PL03", "TE04") + 5)
    assert f.violated_rules("PL03") == {"female_le_total"}
    return [Expect("rule-violation", ERROR, cell, "PL03")]


def part_over_whole(f: Filler) -> list[Expect]:
    cell = f.set("PL03", "TE04B", value=f.value("PL03", "TE04") + 2)
    assert f.violated_rules("PL03") == {"part_le_parent"}
    return [Expect("rule-violation", ERROR, cell, "PL03")]


def drowning_over_injuries(f: Filler) -> list[Expect]:
    cell = f.set("PL03", "TE07", value=f.value("PL03", "TE06") + 1)
    assert f.violated_rules("PL03") == {"TE07_LE_TE06"}
    return [Expect("rule-violation", ERROR, cell, "PL03")]


def number_as_text(f: Filler) -> list[Expect]:
    cell = f.set("PL03", "TE05", text="12", read_as=12)
    return [Expect("number-as-text", WARNING, cell, "PL03")]


def ambiguous_number_text(f: Filler) -> list[Expect]:
    cell = f.set("PL03", "TE12", text="1.234", read_as=None)
    return [Expect("not-a-number", ERROR, cell, "PL03")]


def formula_in_input(f: Filler) -> list[Expect]:
    cell = f.set("PL03", "TE05", period=f.quarter, formula="=10+5", read_as=15)
    return [Expect("formula-in-input", WARNING, cell, "PL03")]


def negative_number(f: Filler) -> list[Expect]:
    cell = f.set("PL03", "TE12", period=f.quarter, value=-3)
    return [Expect("out-of-range", ERROR, cell, "PL03")]


def fraction_of_a_person(f: Filler) -> list[Expect]:
    cell = f.set("PL03", "TE11", value=1.5, read_as=None)
    return [Expect("not-integer", ERROR, cell, "PL03")]


def commune_of_another_unit(f: Filler) -> list[Expect]:
    other = f.rnd.unit("218").communes[0]  # Lục Nam's, never in the unit's list
    assert not f.unit.owns_commune(other)
    cell = f.set_row(0, "commune", text=other)
    return [Expect("rule-violation", ERROR, cell, "PL01")]


def date_outside_window(f: Filler) -> list[Expect]:
    late = f.rnd.inspection.end + dt.timedelta(days=15)
    cell = f.set_row(1, "date", date=late.isoformat())
    return [Expect("out-of-range", ERROR, cell, "PL01")]


def same_commune_twice_a_day(f: Filler) -> list[Expect]:
    first = {c: f.row_edit(0, c) for c in ("commune", "date", "focal_person", "phone")}
    f.set_row(2, "commune", text=first["commune"]["text"])
    f.set_row(2, "date", date=first["date"]["date"])
    f.set_row(2, "session", text=f.rnd.inspection.sessions[-1])
    f.set_row(2, "focal_person", text=first["focal_person"]["text"])
    f.set_row(2, "phone", text=first["phone"]["text"])
    return [
        Expect("rule-violation", ERROR, f.row_cell("commune", 0), "PL01"),
        Expect("rule-violation", ERROR, f.row_cell("commune", 2), "PL01"),
    ]


def wrong_unit(f: Filler) -> list[Expect]:
    return [Expect("unit-mismatch", ERROR)]  # the template of 215, named 218_luc-nam.xlsx


def other_round(f: Filler) -> list[Expect]:
    text = f.rnd.path.read_text(encoding="utf-8").replace(f"id: {f.rnd.id}\n", f"id: {OTHER_ROUND_ID}\n", 1)
    folder = f.out_dir / "dot-khac"
    folder.mkdir(exist_ok=True)
    (folder / "round.yaml").write_text(text, encoding="utf-8")
    other = load_round(folder / "round.yaml")
    assert other.id == OTHER_ROUND_ID
    f.template = write_template(other, other.unit(f.unit.code), folder / f"{f.unit.file_stem}.xlsx")
    return [Expect("round-mismatch", ERROR)]


def outdated_template(f: Filler) -> list[Expect]:
    forms = [get_form(x) for x in sorted(f.unit.forms)]
    meta = template_metadata(f.rnd, f.unit, forms)
    row = [k for k, _ in meta].index("forms") + 1
    current = dict(meta)["forms"]
    assert "PL03@1" in current
    f.edits[(META_SHEET, f"B{row}")] = {
        "sheet": META_SHEET,
        "cell": f"B{row}",
        "text": current.replace("PL03@1", "PL03@0"),
    }
    return [Expect("template-outdated", WARNING, None, "PL03")]


def pasted_without_metadata(f: Filler) -> list[Expect]:
    f.delete_sheets.append(META_SHEET)
    return [Expect("metadata-missing", WARNING)]


def commune_in_nfd(f: Filler) -> list[Expect]:
    name = f.row_edit(0, "commune")["text"]
    nfd = unicodedata.normalize("NFD", name)
    assert nfd != name
    f.set_row(0, "commune", text=nfd)
    f.schedule_nfc[(0, "commune")] = name
    return []


def focal_person_in_tcvn3(f: Filler) -> list[Expect]:
    cell = f.set_row(0, "focal_person", text=TCVN3_NAME, font=".VnTime")
    f.schedule_nfc[(0, "focal_person")] = TCVN3_UNICODE
    return [Expect("legacy-encoding", WARNING, cell, "PL01")]


def date_typed_as_text(f: Filler) -> list[Expect]:
    day = dt.date.fromisoformat(f.row_edit(0, "date")["date"])
    cell = f.set_row(0, "date", text=f"{day.day}/{day.month}/{day.year}")  # pasted from Word: "20/5/2024"
    f.schedule_nfc[(0, "date")] = day
    return [Expect("date-as-text", WARNING, cell, "PL01")]


def words_for_a_date(f: Filler) -> list[Expect]:
    cell = f.set_row(0, "date", text="tuần sau")
    return [Expect("not-a-date", ERROR, cell, "PL01")]


def formula_in_schedule_note(f: Filler) -> list[Expect]:
    cell = f.set_row(0, "notes", formula='=HYPERLINK("http://example.com";"bấm vào đây")')
    f.schedule_nfc[(0, "notes")] = "bấm vào đây"  # its saved result
    return [Expect("formula-in-input", WARNING, cell, "PL01")]


def schedule_sheet_deleted(f: Filler) -> list[Expect]:
    sheet = f.schedule_form.sheet
    f.delete_sheets.append(sheet)
    for key in [k for k in f.edits if k[0] == sheet]:
        del f.edits[key]
    return [Expect("missing-form", ERROR, None, "PL01")]


CASES: dict[str, tuple[str, str, Callable[[Filler], list[Expect]]]] = {
    "213_tp-bac-giang.xlsx": ("213", "xlsx", clean),
    "218_luc-nam_bao-cao.xlsx": ("218", "xlsx", clean),
    "216_tan-yen.xls": ("216", "xls", clean),
    "217_lang-giang.ods": ("217", "ods", clean),
    "219_o-trong.xlsx": ("219", "xlsx", blank_cell),
    "220_nu-lon-hon-tong.xlsx": ("220", "xlsx", female_over_total),
    "221_trong-do-lon-hon.xlsx": ("221", "xlsx", part_over_whole),
    "222_duoi-nuoc.xlsx": ("222", "xlsx", drowning_over_injuries),
    "215_so-dang-chu.xlsx": ("215", "xlsx", number_as_text),
    "219_so-mo-ho.xlsx": ("219", "xlsx", ambiguous_number_text),
    "220_cong-thuc.xlsx": ("220", "xlsx", formula_in_input),
    "221_so-am.xlsx": ("221", "xlsx", negative_number),
    "222_so-le.xlsx": ("222", "xlsx", fraction_of_a_person),
    "215_xa-khac.xlsx": ("215", "xlsx", commune_of_another_unit),
    "216_ngay-ngoai.xlsx": ("216", "xlsx", date_outside_window),
    "217_trung-lich.xlsx": ("217", "xlsx", same_commune_twice_a_day),
    "218_luc-nam.xlsx": ("215", "xlsx", wrong_unit),
    "219_dot-khac.xlsx": ("219", "xlsx", other_round),
    "220_ban-cu.xlsx": ("220", "xlsx", outdated_template),
    "221_dan-sang.xlsx": ("221", "xlsx", pasted_without_metadata),
    "222_nfd.xlsx": ("222", "xlsx", commune_in_nfd),
    "213_vntime.xlsx": ("213", "xlsx", focal_person_in_tcvn3),
    "2024_yen-dung.xlsx": ("221", "xlsx", clean),  # a year first in the name is not a unit's code
    "213_ngay-dang-chu.xlsx": ("213", "xlsx", date_typed_as_text),
    "222_ngay-sai.xlsx": ("222", "xlsx", words_for_a_date),
    "219_ghi-chu-cong-thuc.xlsx": ("219", "xlsx", formula_in_schedule_note),
    "216_thieu-pl01.xlsx": ("216", "xlsx", schedule_sheet_deleted),
}
CLEAN = [name for name, (_, _, plant) in CASES.items() if plant is clean]


@dataclass
class Built:
    filler: Filler
    expected: list[Expect]
    path: Path


@dataclass
class Returns:
    folder: Path
    rnd: Round
    files: dict[str, Built] = field(default_factory=dict)
    report: Report | None = None

    def sub(self, name: str):
        return next(s for s in self.report.submissions if s.path.name == name)


def build_returns(rnd: Round, templates_dir: Path, work: Path) -> Returns:
    """Fill every case with ONE LibreOffice run; write received.yaml (all received on time)."""
    folder = work / "inbox"
    folder.mkdir()
    scratch = work / "scratch"
    scratch.mkdir()
    out = Returns(folder, rnd)
    jobs = []
    for seed, (name, (unit_code, fmt, plant)) in enumerate(CASES.items(), start=1):
        f = Filler(rnd, unit_code, seed)
        f.out_dir = scratch
        expected = plant(f)
        template = f.template or templates_dir / f"{f.unit.file_stem}.xlsx"
        path = folder / name
        jobs.append(
            {
                "input": str(template),
                "output": str(path),
                "format": fmt,
                "edits": list(f.edits.values()),
                "delete_sheets": f.delete_sheets,
            }
        )
        out.files[name] = Built(f, expected, path)
    results = lo.run(jobs)
    for (name, built), result in zip(out.files.items(), results):
        assert built.path.exists(), name
        for sheet in built.filler.delete_sheets:
            assert sheet not in result["sheets"]
    manifest = {name: ON_TIME for name in CASES}
    (folder / "received.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def returns(bac_giang_round: Round, templates_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Returns:
    built = build_returns(bac_giang_round, templates_dir, tmp_path_factory.mktemp("validate"))
    built.report = validate_paths([built.folder], bac_giang_round)
    return built


def planted(findings) -> list[tuple]:
    """Findings as comparable tuples, without duplicate-submission (units are reused across the files)."""
    return sorted(
        ((f.code, f.severity, f.cell, f.form) for f in findings if f.code != "duplicate-submission"),
        key=lambda t: tuple("" if v is None else v for v in t),
    )


def the_finding(sub, code: str):
    """The one finding of the file besides duplicate-submission; it must have ``code``."""
    found = [f for f in sub.findings if f.code != "duplicate-submission"]
    assert [f.code for f in found] == [code], [f.message for f in found]
    return found[0]


def as_tuples(expected: list[Expect]) -> list[tuple]:
    return sorted(
        ((e.code, e.severity, e.cell, e.form) for e in expected), key=lambda t: tuple("" if v is None else v for v in t)
    )


# -------------------------------------------------------------------------------------------------- tests


def test_every_file_is_read(returns):
    names = sorted(s.path.name for s in returns.report.submissions)
    assert names == sorted(CASES)  # received.yaml is not a return
    for s in returns.report.submissions:
        assert s.readable, (s.name, s.findings)
        assert s.sha256 and len(s.sha256) == 64
        assert s.modified == ON_TIME  # from received.yaml, not the file time


@pytest.mark.parametrize("name", list(CASES))
def test_exact_findings_of_each_file(returns, name):
    sub = returns.sub(name)
    assert planted(sub.findings) == as_tuples(returns.files[name].expected), [f.message for f in sub.findings]
    for f in sub.findings:
        assert f.message and (f.cell is None or f.cell in f.message), f.message


def test_findings_do_not_depend_on_the_order_of_files(returns):
    """All units are validated at once: every failure maps back to its own file and cell, whatever the order."""
    subs = [read_submission(s.path, returns.rnd) for s in reversed(returns.report.submissions)]
    for s in subs:
        s.modified = ON_TIME
    again = validate_submissions(subs, returns.rnd)
    for s in again.submissions:
        assert planted(s.findings) == planted(returns.sub(s.path.name).findings), s.path.name


def test_units_that_sent_several_files(returns):
    """The files reuse units: each file of such a unit says so, and exactly one file per unit counts."""
    by_unit: dict[str, list] = {}
    for s in returns.report.submissions:
        by_unit.setdefault(s.unit_code, []).append(s)
    # 218_luc-nam.xlsx is Yên Thế's template: it counts as Yên Thế's
    assert sorted(s.path.name for s in by_unit["215"]) == [
        "215_so-dang-chu.xlsx",
        "215_xa-khac.xlsx",
        "218_luc-nam.xlsx",
    ]
    # a file of another round is not a resubmission of this one: it is set aside for the unit's file of this round
    other = returns.sub("219_dot-khac.xlsx")
    assert other.superseded_by in {str(s.path) for s in by_unit["219"] if s is not other}
    for code, group in by_unit.items():
        flags = [[(f.code, f.severity) for f in s.findings if f.code == "duplicate-submission"] for s in group]
        expected = [[("duplicate-submission", WARNING)]] * len(group) if len(group) > 1 else [[]]
        assert flags == expected, code
        assert sum(s.superseded_by is None for s in group) == 1, code


@pytest.mark.parametrize("name", CLEAN)
def test_clean_returns_have_no_findings_and_every_figure_as_typed(returns, name):
    sub = returns.sub(name)
    assert sub.valid
    assert sub.errors == []
    assert planted(sub.findings) == []
    filler = returns.files[name].filler
    read = {(v.form, v.indicator, v.field, v.period): v.value for v in sub.values}
    typed = {k: float(v) for k, v in filler.typed.items()}
    assert read == typed
    assert sorted(sub.forms) == sorted(filler.unit.forms)
    assert sub.unit_code == filler.unit.code


@pytest.mark.parametrize("name", list(CASES))
def test_every_figure_read_is_the_figure_typed(returns, name):
    """Also in faulty files: unusable cells read as None, the rest exactly as typed."""
    sub = returns.sub(name)
    filler = returns.files[name].filler
    read = {(v.form, v.indicator, v.field, v.period): v.value for v in sub.values}
    typed = {k: (None if v is None else float(v)) for k, v in filler.typed.items()}
    assert read == typed


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_rows_read_as_typed(returns, name):
    sub = returns.sub(name)
    filler = returns.files[name].filler
    used = [r for r in sub.schedule if r.used]
    typed = filler.typed_schedule()
    assert len(used) == len(typed)
    for row, expected in zip(used, typed):
        got = {k: row.values.get(k) for k in expected}
        got = {k: (v.date() if isinstance(v, dt.datetime) else v) for k, v in got.items()}
        assert got == expected


def test_rule_violation_names_both_cells_and_figures(returns):
    f_ = returns.files["220_nu-lon-hon-tong.xlsx"].filler
    finding = the_finding(returns.sub("220_nu-lon-hon-tong.xlsx"), "rule-violation")
    female, total = f_.cell("PL03", "TE04", "female"), f_.cell("PL03", "TE04", "total")
    assert finding.cells == [female, total]
    assert finding.indicator == "TE04" and finding.field == "female" and finding.period == f_.year
    assert finding.value == f_.value("PL03", "TE04", "female")
    label = get_form("PL03").indicator("TE04").label
    assert f"“{label}”" in finding.message and "Năm 2023" in finding.message
    assert female in finding.message and total in finding.message


def test_drowning_over_injuries_message(returns):
    f_ = returns.files["222_duoi-nuoc.xlsx"].filler
    finding = the_finding(returns.sub("222_duoi-nuoc.xlsx"), "rule-violation")
    assert finding.cells == [f_.cell("PL03", "TE07"), f_.cell("PL03", "TE06")]
    assert "đuối nước" in finding.message and "tai nạn thương tích" in finding.message
    assert finding.expected.startswith("<=")


def test_number_typed_as_text_is_used(returns):
    sub = returns.sub("215_so-dang-chu.xlsx")
    finding = the_finding(sub, "number-as-text")
    assert finding.value == "12" and finding.expected == 12
    assert sub.valid


def test_ambiguous_number_shows_both_readings(returns):
    finding = the_finding(returns.sub("219_so-mo-ho.xlsx"), "not-a-number")
    assert finding.value == "1.234"
    assert finding.message == (
        f"Ô {finding.cell} (trang PL03) chứa “1.234” dạng chữ, có thể là 1234 (nếu dấu chấm phân cách hàng nghìn) "
        "hoặc 1,234 (nếu dấu chấm là dấu thập phân). Hãy nhập lại bằng số, không dùng dấu chấm hay dấu phẩy phân "
        "cách hàng nghìn."
    )


def test_formula_in_input_uses_the_cached_value(returns):
    sub = returns.sub("220_cong-thuc.xlsx")
    finding = the_finding(sub, "formula-in-input")
    assert finding.value == "=10+5"
    assert "=10+5" in finding.message
    assert sub.valid


def test_legacy_text_is_converted(returns):
    sub = returns.sub("213_vntime.xlsx")
    finding = the_finding(sub, "legacy-encoding")
    assert finding.value == TCVN3_NAME
    assert finding.expected == TCVN3_UNICODE
    assert ".VnTime" in finding.message and TCVN3_UNICODE in finding.message
    assert sub.schedule[0].values["focal_person"] == TCVN3_UNICODE
    assert sub.valid


def test_commune_typed_in_nfd_still_matches(returns):
    sub = returns.sub("222_nfd.xlsx")
    commune = sub.schedule[0].values["commune"]
    assert commune == unicodedata.normalize("NFC", commune)
    assert returns.files["222_nfd.xlsx"].filler.unit.owns_commune(commune)
    assert sub.valid


def test_file_level_findings(returns):
    wrong = returns.sub("218_luc-nam.xlsx")
    finding = the_finding(wrong, "unit-mismatch")
    assert wrong.unit_code == "215"  # the metadata wins; the name disagrees
    assert "215" in finding.message and "218" in finding.message
    other = returns.sub("219_dot-khac.xlsx")
    finding = the_finding(other, "round-mismatch")
    assert finding.value == OTHER_ROUND_ID and finding.expected == returns.rnd.id
    old = returns.sub("220_ban-cu.xlsx")
    assert old.forms["PL03"] == 0 and old.valid
    pasted = returns.sub("221_dan-sang.xlsx")
    assert pasted.recognised_by == "labels" and pasted.unit_code == "221" and pasted.valid
    assert sorted(pasted.forms) == ["PL01", "PL03"]


def test_summary_counts(returns):
    summary = returns.report.summary()
    assert summary["files"] == len(CASES)
    invalid = {s.path.name for s in returns.report.submissions if not s.valid}
    expected_invalid = {n for n, b in returns.files.items() if any(e.severity == ERROR for e in b.expected)}
    assert invalid == expected_invalid
    assert summary["invalid"] == len(expected_invalid)
    assert returns.report.exit_code == 1


def test_duplicates_and_late_files(returns, tmp_path):
    """Two files of one unit: the later one counts; a file received after the deadline is late."""
    src = returns.files["213_tp-bac-giang.xlsx"].path
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(src, inbox / "213_lan-1.xlsx")
    shutil.copy(returns.files["213_vntime.xlsx"].path, inbox / "213_lan-2.xlsx")  # corrected, resent
    shutil.copy(returns.files["218_luc-nam_bao-cao.xlsx"].path, inbox / "218_luc-nam.xlsx")
    late = dt.datetime.combine(returns.rnd.deadline + dt.timedelta(days=2), dt.time(8, 15))
    (inbox / "received.yaml").write_text(
        yaml.safe_dump(
            {"213_lan-1.xlsx": ON_TIME, "213_lan-2.xlsx": ON_TIME + dt.timedelta(hours=3), "218_luc-nam.xlsx": late}
        ),
        encoding="utf-8",
    )
    report = validate_paths([inbox], returns.rnd)
    by_name = {s.path.name: s for s in report.submissions}
    first, second, luc_nam = by_name["213_lan-1.xlsx"], by_name["213_lan-2.xlsx"], by_name["218_luc-nam.xlsx"]
    assert [(f.code, f.severity) for f in first.findings] == [("duplicate-submission", WARNING)]
    assert [(f.code, f.severity) for f in second.findings if f.code != "legacy-encoding"] == [
        ("duplicate-submission", WARNING)
    ]
    assert first.superseded_by == str(second.path) and second.superseded_by is None
    assert [s.path.name for s in report.counted()] == ["213_lan-2.xlsx", "218_luc-nam.xlsx"]
    assert [(f.code, f.severity) for f in luc_nam.findings] == [("late-submission", WARNING)]
    assert luc_nam.modified == late
    assert report.exit_code == 0


def test_identical_copies_are_one_submission_received_with_the_first(returns, tmp_path):
    """The same file saved twice (or downloaded again as "(1)"): one submission, on time if its first copy was."""
    src = returns.files["213_tp-bac-giang.xlsx"].path
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(src, inbox / "213_tp-bac-giang.xlsx")
    shutil.copy(src, inbox / "213_tp-bac-giang (1).xlsx")
    late = dt.datetime.combine(returns.rnd.deadline + dt.timedelta(days=2), dt.time(8, 0))
    (inbox / "received.yaml").write_text(
        yaml.safe_dump({"213_tp-bac-giang.xlsx": ON_TIME, "213_tp-bac-giang (1).xlsx": late}), encoding="utf-8"
    )
    report = validate_paths([inbox], returns.rnd)
    by_name = {s.path.name: s for s in report.submissions}
    first, copy = by_name["213_tp-bac-giang.xlsx"], by_name["213_tp-bac-giang (1).xlsx"]
    assert first.findings == [] and first.superseded_by is None
    assert copy.superseded_by == str(first.path)
    assert [f.message for f in copy.findings] == [
        "Tệp 213_tp-bac-giang (1).xlsx giống hệt tệp 213_tp-bac-giang.xlsx (cùng nội dung) nên chỉ được tính một "
        f"lần, theo lần nhận đầu tiên ({ON_TIME:%H:%M %d/%m/%Y})."
    ]
    assert report.counted() == [first]
    cons = consolidate(report, returns.rnd)
    assert next(u for u in cons.status if u.unit.code == "213").state == "ok"


def test_a_file_of_another_round_does_not_replace_the_return(returns, tmp_path):
    """Last year's file of a unit, received later, is not a resubmission: this round's return still counts."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(returns.files["219_o-trong.xlsx"].path, inbox / "219_bao-cao.xlsx")
    shutil.copy(returns.files["219_dot-khac.xlsx"].path, inbox / "219_dot-truoc.xlsx")
    (inbox / "received.yaml").write_text(
        yaml.safe_dump({"219_bao-cao.xlsx": ON_TIME, "219_dot-truoc.xlsx": ON_TIME + dt.timedelta(days=1)}),
        encoding="utf-8",
    )
    report = validate_paths([inbox], returns.rnd)
    by_name = {s.path.name: s for s in report.submissions}
    this, other = by_name["219_bao-cao.xlsx"], by_name["219_dot-truoc.xlsx"]
    assert this.superseded_by is None and other.superseded_by == str(this.path)
    assert not [f for f in this.findings if f.code == "duplicate-submission"]
    assert [f.message for f in other.findings if f.code == "duplicate-submission"] == [
        "Tệp 219_dot-truoc.xlsx là biểu mẫu của đợt báo cáo khác nên không được dùng; tệp 219_bao-cao.xlsx của "
        f"{this.unit_name} được dùng."
    ]
    status = {u.unit.code: u for u in consolidate(report, returns.rnd).status}["219"]
    assert status.submission is this


def test_receipt_times_as_people_write_them(returns, tmp_path):
    """received.yaml lines written by hand or by a mail export: time zones, no seconds, Vietnamese dates, names in
    decomposed Unicode; a time that cannot be read is a warning naming it, never a crash or a silent late file."""
    src = returns.files["213_tp-bac-giang.xlsx"].path
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    names = ["a.xlsx", "b.xlsx", "c.xlsx", "d.xlsx", "Báo cáo.xlsx", "f.xlsx"]
    for i, name in enumerate(names):
        data = bytearray(src.read_bytes())
        (inbox / unicodedata.normalize("NFD", name)).write_bytes(bytes(data) + b"\0" * i)  # distinct contents
    (inbox / "received.yaml").write_text(
        "a.xlsx: 2024-05-06T10:05:00+07:00\n"  # Vietnam time, as written
        "b.xlsx: 2024-05-09T20:30:00Z\n"  # UTC: 10/05 03:30 in Vietnam
        "c.xlsx: 2024-05-08 8:26\n"
        "d.xlsx: 03/05/2024 09:24\n"
        "Báo cáo.xlsx: 07/05/2024\n"  # NFC here, NFD on disk
        "f.xlsx: hôm qua\n",
        encoding="utf-8",
    )
    report = validate_paths([inbox], returns.rnd)
    by_name = {unicodedata.normalize("NFC", s.path.name): s for s in report.submissions}
    assert by_name["a.xlsx"].modified == dt.datetime(2024, 5, 6, 10, 5)
    assert by_name["b.xlsx"].modified == dt.datetime(2024, 5, 10, 3, 30)
    assert by_name["c.xlsx"].modified == dt.datetime(2024, 5, 8, 8, 26)
    assert by_name["d.xlsx"].modified == dt.datetime(2024, 5, 3, 9, 24)
    assert by_name["Báo cáo.xlsx"].modified == dt.datetime(2024, 5, 7, 12, 0)
    f = by_name["f.xlsx"]
    assert [(x.code, x.severity, x.message) for x in f.findings if x.code == "received-time-invalid"] == [
        (
            "received-time-invalid",
            WARNING,
            "Thời điểm nhận tệp f.xlsx ghi trong received.yaml (“hôm qua”) không đọc được; đã dùng thời điểm sửa "
            "tệp. Hãy ghi dạng 2024-05-08 09:30 hoặc 08/05/2024 09:30.",
        )
    ]
    assert not [x for s in report.submissions if s is not f for x in s.findings if x.code == "received-time-invalid"]


def test_a_broken_received_manifest_is_said_on_every_file_of_its_folder(returns, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(returns.files["213_tp-bac-giang.xlsx"].path, inbox / "213.xlsx")
    (inbox / "received.yaml").write_text("213.xlsx 2024-05-06 10:05:00\nx: [\n", encoding="utf-8")
    (sub,) = validate_paths([inbox], returns.rnd).submissions
    (finding,) = [x for x in sub.findings if x.code == "received-time-invalid"]
    assert finding.severity == WARNING
    assert finding.message.startswith(
        "Tệp received.yaml trong thư mục inbox bị lỗi (cú pháp YAML không hợp lệ"
    ) and finding.message.endswith(
        "nên không biết thời điểm nhận tệp 213.xlsx; đã dùng thời điểm sửa tệp. Hãy sửa received.yaml rồi chạy lại."
    )


def test_schedule_cells_typed_the_wrong_way_are_said_plainly(returns):
    note = the_finding(returns.sub("219_ghi-chu-cong-thuc.xlsx"), "formula-in-input")
    assert note.message == (
        f'Ô {note.cell} (trang PL01) chứa công thức “=HYPERLINK("http://example.com","bấm vào đây")” thay vì '
        "nội dung nhập tay. Đã dùng kết quả đã lưu của công thức (“bấm vào đây”); hãy gõ trực tiếp nội dung vào ô."
    )
    as_text = the_finding(returns.sub("213_ngay-dang-chu.xlsx"), "date-as-text")
    day = dt.date.fromisoformat(as_text.expected)
    assert as_text.message == (
        f"Ô {as_text.cell} (trang PL01) chứa ngày “{day.day}/{day.month}/{day.year}” được gõ dạng chữ; đã đọc là "
        f"ngày {day:%d/%m/%Y}. Hãy chọn ngày trong ô (ô định dạng ngày) để tránh nhầm lẫn."
    )
    words = the_finding(returns.sub("222_ngay-sai.xlsx"), "not-a-date")  # and no "outside the window" beside it
    assert words.message == (
        f"Ô {words.cell} (trang PL01) chứa “tuần sau”, không phải là ngày. Hãy nhập ngày dạng ngày/tháng/năm, ví dụ "
        "20/05/2024."
    )
    missing = the_finding(returns.sub("216_thieu-pl01.xlsx"), "missing-form")
    assert missing.message == (
        "Tệp 216_thieu-pl01.xlsx của Huyện Tân Yên thiếu Phụ lục 01 (PL01). Hãy bổ sung và gửi lại."
    )


def test_the_same_bytes_renamed_to_the_right_unit_count(returns, tmp_path):
    """Sent first under another unit's code (an error), then renamed and sent again: the renamed file counts."""
    src = returns.files["213_tp-bac-giang.xlsx"].path
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(src, inbox / "215_tp-bac-giang.xlsx")
    shutil.copy(src, inbox / "213_tp-bac-giang.xlsx")
    (inbox / "received.yaml").write_text(
        yaml.safe_dump({"215_tp-bac-giang.xlsx": ON_TIME, "213_tp-bac-giang.xlsx": ON_TIME + dt.timedelta(days=1)}),
        encoding="utf-8",
    )
    report = validate_paths([inbox], returns.rnd)
    by_name = {s.path.name: s for s in report.submissions}
    assert [s.path.name for s in report.counted()] == ["213_tp-bac-giang.xlsx"]
    assert by_name["215_tp-bac-giang.xlsx"].superseded_by == str(by_name["213_tp-bac-giang.xlsx"].path)


def test_a_copy_of_a_replaced_file_leaves_the_latest_counting_in_summary_and_registry(returns, tmp_path):
    """A (07/05), B (09/05) replaces it, then A again as "(1)" (13/05): B counts, for the summary's status and for
    `baocao status` (the registry) alike, and the copy of A is not late."""
    from toolkit.registry import Registry
    from toolkit.registry import status as registry_status

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a, b = returns.files["213_tp-bac-giang.xlsx"].path, returns.files["213_vntime.xlsx"].path
    shutil.copy(a, inbox / "213_lan-1.xlsx")
    shutil.copy(b, inbox / "213_lan-2.xlsx")
    shutil.copy(a, inbox / "213_lan-1 (1).xlsx")
    day = dt.datetime(2024, 5, 7, 9, 0)
    (inbox / "received.yaml").write_text(
        yaml.safe_dump(
            {
                "213_lan-1.xlsx": day,
                "213_lan-2.xlsx": day + dt.timedelta(days=2),
                "213_lan-1 (1).xlsx": day + dt.timedelta(days=6),
            }
        ),
        encoding="utf-8",
    )
    report = validate_paths([inbox], returns.rnd)
    by_name = {s.path.name: s for s in report.submissions}
    second = by_name["213_lan-2.xlsx"]
    assert report.counted() == [second]
    assert by_name["213_lan-1 (1).xlsx"].superseded_by == str(second.path)
    assert not [f for f in by_name["213_lan-1 (1).xlsx"].findings if f.code == "late-submission"]
    summary_status = {u.unit.code: u for u in consolidate(report, returns.rnd).status}["213"]
    assert summary_status.submission is second and summary_status.state == "ok"
    with Registry.open(tmp_path / "r.sqlite") as reg:
        reg.record(report, returns.rnd)
        row = {r.unit_code: r for r in registry_status(returns.rnd, reg)}["213"]
    assert Path(row.file).name == "213_lan-2.xlsx" and row.state == "ok"


def test_a_received_manifest_with_a_list_for_a_name_does_not_stop_the_round(returns, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(returns.files["213_tp-bac-giang.xlsx"].path, inbox / "213.xlsx")
    (inbox / "received.yaml").write_text("[213.xlsx]: 2024-05-08 08:26\n", encoding="utf-8")
    (sub,) = validate_paths([inbox], returns.rnd).submissions
    (finding,) = [x for x in sub.findings if x.code == "received-time-invalid"]
    assert finding.message == (
        "Tệp received.yaml trong thư mục inbox bị lỗi (cú pháp YAML không hợp lệ (tên mục không hợp lệ (một danh "
        "sách hay bảng khóa đứng ở chỗ tên mục)) ở dòng 1) nên không biết thời điểm nhận tệp 213.xlsx; đã dùng thời "
        "điểm sửa tệp. Hãy sửa received.yaml rồi chạy lại."
    )
