"""The shipped demo inbox (``examples/bac-giang-2024/inbox/``, used by ``baocao demo``) says what it is meant to.

The files were filled in LibreOffice by ``scripts/make_demo_inbox.py`` and are committed; these tests read the
committed files (no LibreOffice needed), so they cannot drift silently from the story the demo tells:
six units clean, Lạng Giang wrong then corrected, Việt Yên wrong, Tân Yên late, Yên Dũng missing, Hiệp Hòa not
asked. Cells are taken from the form layout, never hard-coded.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile

import pytest
from click.testing import CliRunner

from toolkit.cli import main as cli
from toolkit.findings import ERROR, WARNING
from toolkit.forms import get_form
from toolkit.resources import examples_dir
from toolkit.round import Round
from toolkit.validate import RECEIVED_MANIFEST, Report, validate_paths
from toolkit.yamlio import load_yaml

INBOX = examples_dir() / "bac-giang-2024" / "inbox"
Y, Q = "Y2023", "Q1_2024"

# file name -> (unit code, received)
FILES = {
    "220_son-dong.ods": ("220", dt.datetime(2024, 5, 3, 9, 24)),
    "215_yen-the.xlsx": ("215", dt.datetime(2024, 5, 6, 10, 5)),
    "217_lang-giang.xlsx": ("217", dt.datetime(2024, 5, 7, 16, 20)),
    "219_luc-ngan.xlsx": ("219", dt.datetime(2024, 5, 8, 8, 26)),
    "213_tp-bac-giang.xlsx": ("213", dt.datetime(2024, 5, 8, 15, 42)),
    "217_lang-giang_lan-2.xlsx": ("217", dt.datetime(2024, 5, 9, 9, 12)),
    "218_luc-nam.xlsx": ("218", dt.datetime(2024, 5, 9, 14, 35)),
    "222_viet-yen.xlsx": ("222", dt.datetime(2024, 5, 9, 17, 5)),
    "216_tan-yen.xlsx": ("216", dt.datetime(2024, 5, 13, 8, 47)),
}
CLEAN = ["220_son-dong.ods", "215_yen-the.xlsx", "219_luc-ngan.xlsx", "213_tp-bac-giang.xlsx", "218_luc-nam.xlsx"]
FIRST, RESENT = "217_lang-giang.xlsx", "217_lang-giang_lan-2.xlsx"
FAULTY = [FIRST, "222_viet-yen.xlsx"]
LATE = "216_tan-yen.xlsx"
MISSING = "221"  # Yên Dũng
NOT_ASKED = "223"  # Hiệp Hòa


@pytest.fixture(scope="module")
def report(bac_giang_round: Round) -> Report:
    return validate_paths([INBOX], bac_giang_round)


def sub(report: Report, name: str):
    return next(s for s in report.submissions if s.path.name == name)


def cell(rnd: Round, form_id: str, code: str, fld: str, period: str) -> str:
    return get_form(form_id).layout(tuple(p.id for p in rnd.periods)).cell(code, fld, period)


def findings(s) -> set[tuple[str, str, str | None, str | None]]:
    return {(f.code, f.severity, f.form, f.cell) for f in s.findings}


def test_inbox_holds_the_planned_files_and_the_received_log(report):
    names = sorted(p.name for p in INBOX.iterdir())
    assert names == sorted([*FILES, RECEIVED_MANIFEST])
    log = load_yaml(INBOX / RECEIVED_MANIFEST)
    assert {str(k): v for k, v in log.items()} == {name: when for name, (_, when) in FILES.items()}
    assert sorted(s.path.name for s in report.submissions) == sorted(FILES)
    for s in report.submissions:
        unit, when = FILES[s.path.name]
        assert s.readable and s.unit_code == unit, s.path.name
        assert s.modified == when, s.path.name  # the e-mail log, not the file's mtime
        assert dt.date(2024, 5, 2) <= when.date() and when.weekday() < 5 and 7 <= when.hour < 18


@pytest.mark.parametrize("name", CLEAN)
def test_clean_returns_have_no_findings(report, name):
    s = sub(report, name)
    assert s.valid and s.superseded_by is None
    assert s.findings == [], [f.message for f in s.findings]


def test_late_return_counts_but_is_marked_late(report, bac_giang_round):
    s = sub(report, LATE)
    assert s.valid and s.superseded_by is None
    assert findings(s) == {("late-submission", WARNING, None, None)}
    assert s.modified.date() > bac_giang_round.deadline
    others = [x for x in report.submissions if x.path.name != LATE]
    assert all(x.modified.date() < bac_giang_round.deadline for x in others)


def test_lang_giang_swapped_digits_and_blank_cell(report, bac_giang_round):
    rnd = bac_giang_round
    s = sub(report, FIRST)
    female, total = cell(rnd, "PL03", "BG16", "female", Y), cell(rnd, "PL03", "BG16", "total", Y)
    blank = cell(rnd, "PL03", "BG24", "female", Q)
    assert findings(s) == {
        ("rule-violation", ERROR, "PL03", female),
        ("missing-value", ERROR, "PL03", blank),
        ("duplicate-submission", WARNING, None, None),
    }
    rule = next(f for f in s.findings if f.code == "rule-violation")
    assert rule.indicator == "BG16" and rule.field == "female" and rule.period == Y
    assert rule.cells == [female, total]
    values = {(v.indicator, v.field, v.period): v.value for v in s.values}
    typed, whole = values[("BG16", "female", Y)], values[("BG16", "total", Y)]
    assert typed > whole
    # a typo: two adjacent digits swapped; the corrected file has the figure as it should be
    fixed = {(v.indicator, v.field, v.period): v.value for v in sub(report, RESENT).values}
    right = str(int(fixed[("BG16", "female", Y)]))
    assert str(int(typed)) == right[1] + right[0] + right[2:] and fixed[("BG16", "female", Y)] <= whole
    assert values[("BG24", "female", Q)] is None and fixed[("BG24", "female", Q)] is not None
    assert {k: v for k, v in values.items() if k not in {("BG16", "female", Y), ("BG24", "female", Q)}} == {
        k: v for k, v in fixed.items() if k not in {("BG16", "female", Y), ("BG24", "female", Q)}
    }


def test_lang_giang_resent_a_corrected_file_that_supersedes_the_first(report):
    first, resent = sub(report, FIRST), sub(report, RESENT)
    assert not first.valid and first.superseded_by == str(resent.path)
    assert resent.valid and resent.superseded_by is None
    assert findings(resent) == {("duplicate-submission", WARNING, None, None)}
    assert resent.modified > first.modified


def test_viet_yen_number_typed_as_text_and_formula_in_input(report, bac_giang_round):
    rnd = bac_giang_round
    s = sub(report, "222_viet-yen.xlsx")
    as_text = cell(rnd, "PL03", "TE08", "total", Y)
    total = cell(rnd, "PL03", "TE01", "total", Y)
    male, female = cell(rnd, "PL03", "TE01", "male", Y), cell(rnd, "PL03", "TE01", "female", Y)
    assert findings(s) == {
        ("not-a-number", ERROR, "PL03", as_text),
        ("formula-in-input", WARNING, "PL03", total),
    }
    text = next(f for f in s.findings if f.code == "not-a-number")
    assert re.fullmatch(r"\d{1,3}\.\d{3}", text.value), text.value  # “18.975”: 18975 or 18,975?
    formula = next(f for f in s.findings if f.code == "formula-in-input")
    assert formula.value == f"={male}+{female}"
    values = {(v.indicator, v.field, v.period): v.value for v in s.values}
    assert values[("TE08", "total", Y)] is None
    assert values[("TE01", "total", Y)] == values[("TE01", "male", Y)] + values[("TE01", "female", Y)]
    assert not s.valid


def test_faulty_files_are_left_out_of_the_totals(report):
    counted = {s.path.name for s in report.counted()}
    assert counted == set(CLEAN) | {LATE, RESENT}
    assert not counted & set(FAULTY)
    assert report.exit_code == 1
    assert report.summary()["by_code"] == {
        "duplicate-submission": 2,
        "formula-in-input": 1,
        "late-submission": 1,
        "missing-value": 1,
        "not-a-number": 1,
        "rule-violation": 1,
    }


def test_yen_dung_sent_nothing_and_hiep_hoa_owes_nothing(report, bac_giang_round):
    owing = {u.code for u in bac_giang_round.units_owing()}
    sent = {s.unit_code for s in report.submissions}
    assert owing - sent == {MISSING}
    assert NOT_ASKED not in owing and NOT_ASKED not in sent
    assert sent <= owing


@pytest.mark.parametrize("name", [n for n in FILES if n not in FAULTY])
def test_counted_returns_are_plausible_and_confirm_the_planned_visit(report, bac_giang_round, name):
    rnd = bac_giang_round
    s = sub(report, name)
    unit = rnd.unit(s.unit_code)
    assert sorted(s.forms) == sorted(unit.forms)
    values = {(v.indicator, v.field, v.period): v.value for v in s.values}
    for period in (Y, Q):
        assert values[("TE09", "total", period)] == len(unit.communes)
        assert 20_000 <= values[("TE01", "total", period)] <= 100_000
        assert values[("TE01", "female", period)] / values[("TE01", "total", period)] == pytest.approx(0.485, abs=0.04)
    rows = [r for r in s.schedule if r.used]
    assert [r.values["commune"] for r in rows] == list(unit.planned.communes)
    dates = {r.values["date"].date() if isinstance(r.values["date"], dt.datetime) else r.values["date"] for r in rows}
    assert dates == {unit.planned.date}
    assert len({r.values["focal_person"] for r in rows}) == 1 and all(r.values["focal_person"] for r in rows)
    assert all(re.fullmatch(r"0\d{9}", str(r.values["phone"])) for r in rows)


@pytest.mark.parametrize("name", list(FILES))
def test_files_were_saved_by_libreoffice_and_are_small(name):
    path = INBOX / name
    with zipfile.ZipFile(path) as z:
        if path.suffix == ".ods":
            meta = z.read("meta.xml").decode()
            app = re.search(r"<meta:generator>([^<]*)</meta:generator>", meta).group(1)
        else:
            props = z.read("docProps/app.xml").decode()
            app = re.search(r"<Application>([^<]*)</Application>", props).group(1)
    assert "LibreOffice" in app
    assert path.stat().st_size < 64 * 1024


def test_cli_validate_on_the_demo_inbox():
    result = CliRunner().invoke(cli, ["validate", str(INBOX), "--json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)["summary"]
    assert (summary["files"], summary["valid"], summary["invalid"]) == (9, 7, 2)
    assert (summary["errors"], summary["warnings"]) == (3, 4)
