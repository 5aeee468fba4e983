"""Build the demo inbox of the Bắc Giang 2024 round: ``examples/bac-giang-2024/inbox/`` (used by ``baocao demo``).

    .venv/bin/python scripts/make_demo_inbox.py        # needs LibreOffice headless and python3-uno

The units' templates are generated with ``toolkit.render.write_templates``, then filled in a real LibreOffice as
district staff would (figures from ``tests/support/returns.py``, fixed seeds) and saved under the names staff send
back. ``received.yaml`` stands in for the e-mail log: file name → time received (Asia/Ho_Chi_Minh, naive).

What the inbox shows (see ``PLAN``): most units clean; two with an office's usual mistakes, so their files carry
errors and are left out of the totals (Lạng Giang then resent a corrected file, which supersedes the first);
one unit late; one saved by LibreOffice as .ods; Yên Dũng (221) sent nothing; Hiệp Hòa (223) owes nothing.

The figures are reproducible; the bytes are not (LibreOffice stamps the save time into each file). Regenerate
only when the plan, the forms or ``returns.py`` change, and commit the result: ``tests/test_demo_inbox.py``
checks the committed files. The script checks its own result with ``validate_paths`` and stops if any file's
findings differ from the plan.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # support.returns, support.libreoffice

from support import libreoffice as lo  # noqa: E402
from support.returns import edits_for  # noqa: E402

from toolkit.cli import render_report  # noqa: E402
from toolkit.forms import get_form  # noqa: E402
from toolkit.render import write_templates  # noqa: E402
from toolkit.round import Round, load_round  # noqa: E402
from toolkit.validate import validate_paths  # noqa: E402

ROUND = ROOT / "examples" / "bac-giang-2024" / "round.yaml"
INBOX = ROUND.parent / "inbox"
SEED = 2024  # + the unit code: one fixed set of figures per unit (a resent file keeps its unit's figures)

# (finding code, form, indicator, field, period) as the plan expects them; cells come from the form layout.
Expected = tuple[str, str | None, str | None, str | None, str | None]


class Filler:
    """A unit's clean return as LibreOffice edits, with helpers to type a mistake over it."""

    def __init__(self, rnd: Round, unit_code: str) -> None:
        self.rnd = rnd
        self.unit = rnd.unit(unit_code)
        self.periods = tuple(p.id for p in rnd.periods)
        self.edits: dict[tuple[str, str], dict] = {}
        self.values: dict[tuple[str, str, str, str], float] = {}
        for form_id in self.unit.forms:
            form = get_form(form_id)
            for e in edits_for(form, rnd, self.unit, SEED + int(unit_code)):
                self.edits[(e["sheet"], e["cell"])] = e
            if form.kind == "indicators":
                for c in form.layout(self.periods).inputs:
                    typed = self.edits[(form.sheet, c.address)]["value"]
                    self.values[(form_id, c.indicator, c.field, c.period)] = typed

    def cell(self, form_id: str, code: str, fld: str, period: str) -> str:
        return get_form(form_id).layout(self.periods).cell(code, fld, period)

    def value(self, form_id: str, code: str, fld: str, period: str) -> float:
        return self.values[(form_id, code, fld, period)]

    def set(self, form_id: str, code: str, fld: str, period: str, **edit) -> str:
        sheet, address = get_form(form_id).sheet, self.cell(form_id, code, fld, period)
        self.edits[(sheet, address)] = {"sheet": sheet, "cell": address, **edit}
        return address


def vn(number: float) -> str:
    """A whole number as Vietnamese write it: 18.975."""
    return f"{int(number):,}".replace(",", ".")


def swapped_digits_and_blank(f: Filler) -> str:
    """Two digits swapped in “nữ” of the civil servants (nữ > tổng), and one figure of PL03 left blank."""
    year, quarter = f.periods
    total = f.value("PL03", "BG16", "total", year)
    female = str(int(f.value("PL03", "BG16", "female", year)))
    typo = int(female[1] + female[0] + female[2:])
    assert typo > total, "the seed no longer gives a digit swap that makes nữ > tổng; pick another figure"
    at = f.set("PL03", "BG16", "female", year, value=typo)
    blank = f.set("PL03", "BG24", "female", quarter, clear=True)
    return (
        f"{at}: nữ {vn(typo)} gõ nhầm từ {vn(int(female))} (đảo hai chữ số), lớn hơn tổng số {vn(total)}; "
        f"{blank} để trống (nữ được tập huấn, quý I)"
    )


def text_number_and_formula(f: Filler) -> str:
    """A figure pasted from the Word report as text with a dot for thousands, and a sum formula in an input cell."""
    year = f.periods[0]
    swimmers = int(f.value("PL03", "TE08", "total", year))
    assert swimmers >= 1000
    text = vn(swimmers)
    at_text = f.set("PL03", "TE08", "total", year, text=text)
    male, female = f.cell("PL03", "TE01", "male", year), f.cell("PL03", "TE01", "female", year)
    at_formula = f.set("PL03", "TE01", "total", year, formula=f"={male}+{female}")
    return f"{at_text}: “{text}” dán dạng chữ (đọc được 2 cách); {at_formula}: công thức ={male}+{female}"


@dataclass(frozen=True)
class Return:
    name: str  # as received by e-mail
    unit: str
    received: dt.datetime
    fmt: str = "xlsx"
    mistake: Callable[[Filler], str] | None = None
    expected: tuple[Expected, ...] = ()  # findings of the file (codes with where), besides duplicate/late
    note: str = ""


Y, Q = (p.id for p in load_round(ROUND).periods)  # the round's two periods: the year, the quarter
PLAN: tuple[Return, ...] = (
    Return("220_son-dong.ods", "220", dt.datetime(2024, 5, 3, 9, 24), fmt="ods", note="lưu dạng .ods (LibreOffice)"),
    Return("215_yen-the.xlsx", "215", dt.datetime(2024, 5, 6, 10, 5)),
    Return(
        "217_lang-giang.xlsx",
        "217",
        dt.datetime(2024, 5, 7, 16, 20),
        mistake=swapped_digits_and_blank,
        expected=(
            ("rule-violation", "PL03", "BG16", "female", Y),
            ("missing-value", "PL03", "BG24", "female", Q),
        ),
        note="sai, đã gửi lại",
    ),
    Return("219_luc-ngan.xlsx", "219", dt.datetime(2024, 5, 8, 8, 26)),
    Return("213_tp-bac-giang.xlsx", "213", dt.datetime(2024, 5, 8, 15, 42)),
    Return("217_lang-giang_lan-2.xlsx", "217", dt.datetime(2024, 5, 9, 9, 12), note="bản sửa, thay tệp trước"),
    Return("218_luc-nam.xlsx", "218", dt.datetime(2024, 5, 9, 14, 35)),
    Return(
        "222_viet-yen.xlsx",
        "222",
        dt.datetime(2024, 5, 9, 17, 5),
        mistake=text_number_and_formula,
        expected=(
            ("not-a-number", "PL03", "TE08", "total", Y),
            ("formula-in-input", "PL03", "TE01", "total", Y),
        ),
    ),
    Return("216_tan-yen.xlsx", "216", dt.datetime(2024, 5, 13, 8, 47), note="nộp muộn"),
)
MISSING = ("221",)  # Yên Dũng sent nothing


def build(rnd: Round, work: Path) -> dict[str, str]:
    templates = work / "templates"
    write_templates(rnd, templates)
    out = work / "inbox"
    out.mkdir()
    jobs, notes = [], {}
    for r in PLAN:
        f = Filler(rnd, r.unit)
        notes[r.name] = r.mistake(f) if r.mistake else ""
        jobs.append(
            {
                "input": str(templates / f"{f.unit.file_stem}.xlsx"),
                "output": str(out / r.name),
                "format": r.fmt,
                "edits": list(f.edits.values()),
            }
        )
    lo.run(jobs)
    manifest = {r.name: r.received for r in sorted(PLAN, key=lambda r: r.received)}
    header = (
        "# Nhật ký nhận báo cáo qua thư điện tử (giờ Việt Nam): tên tệp → thời điểm nhận.\n"
        "# baocao dùng thời điểm này (thay cho ngày sửa tệp) để xét nộp muộn và tệp nào gửi sau cùng.\n"
        f"# Hạn nộp: {rnd.deadline:%d/%m/%Y}. Tạo bởi scripts/make_demo_inbox.py.\n"
    )
    (out / "received.yaml").write_text(
        header + yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return notes


def check(rnd: Round, folder: Path) -> None:
    """The inbox says exactly what the plan intends (stops with an AssertionError otherwise)."""
    report = validate_paths([folder], rnd)
    periods = tuple(p.id for p in rnd.periods)
    by_name = {s.path.name: s for s in report.submissions}
    assert sorted(by_name) == sorted(r.name for r in PLAN), sorted(by_name)
    sent = {r.unit for r in PLAN}
    for r in PLAN:
        s = by_name[r.name]
        expected = set()
        for code, form_id, ind, fld, period in r.expected:
            cell = get_form(form_id).layout(periods).cell(ind, fld, period) if ind else None
            expected.add((code, form_id, cell))
        if r.received.date() > rnd.deadline:
            expected.add(("late-submission", None, None))
        if sum(x.unit == r.unit for x in PLAN) > 1:
            expected.add(("duplicate-submission", None, None))
        got = {(x.code, x.form, x.cell) for x in s.findings}
        assert got == expected, (r.name, got, expected)
        assert s.unit_code == r.unit and s.modified == r.received, r.name
    assert not sent & set(MISSING)
    assert {u.code for u in rnd.units_owing()} == sent | set(MISSING)
    print(render_report(report))


def main() -> None:
    rnd = load_round(ROUND)
    if not lo.available():
        sys.exit(
            "LibreOffice headless (soffice) with python3-uno is needed: apt-get install libreoffice-calc-nogui python3-uno"
        )
    with tempfile.TemporaryDirectory(prefix="baocao-demo-") as tmp:
        notes = build(rnd, Path(tmp))
        check(rnd, Path(tmp) / "inbox")
        if INBOX.exists():
            shutil.rmtree(INBOX)
        shutil.copytree(Path(tmp) / "inbox", INBOX)
    print(f"\nĐã ghi {INBOX.relative_to(ROOT)}:")
    for r in PLAN:
        size = (INBOX / r.name).stat().st_size // 1024
        what = "; ".join(x for x in (r.note, notes[r.name]) if x)
        print(f"  {r.name:28} {r.received:%d/%m/%Y %H:%M}  {size:3} KB  {what}")
    missing = ", ".join(f"{rnd.unit(c).name} ({c})" for c in MISSING)
    print(f"  không gửi: {missing}")


if __name__ == "__main__":
    main()
