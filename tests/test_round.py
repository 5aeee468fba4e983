"""The reporting round (round.yaml): the shipped rounds load, and a broken file gives a clear Vietnamese message."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.forms import available_forms
from toolkit.round import load_round
from toolkit.text import fold_place
from toolkit.yamlio import ConfigError

# REPORTING.md: units of Bắc Giang's 2024 plan (GSO district codes) and the names staff use.
BAC_GIANG_UNITS = {
    "213": "TP. Bắc Giang",
    "215": "Yên Thế",
    "216": "Tân Yên",
    "217": "Lạng Giang",
    "218": "Lục Nam",
    "219": "Lục Ngạn",
    "220": "Sơn Động",
    "221": "Yên Dũng",
    "222": "Việt Yên",
    "223": "Hiệp Hòa",
}
# REPORTING.md: the plan's proposed schedule (Phụ lục 01 as issued): unit -> (communes, date).
PLANNED = {
    "220": (("Phúc Sơn", "An Bá"), dt.date(2024, 5, 20)),
    "219": (("Kiên Thành", "Kiên Lao"), dt.date(2024, 5, 22)),
    "218": (("TT. Đồi Ngô", "Khám Lạng"), dt.date(2024, 5, 23)),
    "217": (("Tân Thanh", "Nghĩa Hưng"), dt.date(2024, 5, 28)),
    "215": (("Canh Nậu", "TT. Phồn Xương"), dt.date(2024, 5, 29)),
    "223": (("Thường Thắng", "Quang Minh"), dt.date(2024, 6, 6)),
    "222": (("Minh Đức", "Nghĩa Trung"), dt.date(2024, 6, 7)),
    "216": (("Đại Hóa", "Tân Trung"), dt.date(2024, 6, 11)),
    "221": (("TT. Tân An", "Quỳnh Sơn"), dt.date(2024, 6, 12)),
    "213": (("Thọ Xương", "Ngô Quyền"), dt.date(2024, 6, 13)),
}


# ------------------------------------------------------------------------------------------ shipped rounds


def test_bac_giang_round_has_the_ten_districts_of_the_plan(bac_giang_round):
    rnd = bac_giang_round
    assert rnd.level == "district"
    assert rnd.level_label == "cấp huyện"
    assert rnd.province_code == "24"
    assert {u.code: u.short_name for u in rnd.units} == BAC_GIANG_UNITS
    assert len(rnd.units) == 10


def test_bac_giang_forms_follow_the_annexes(bac_giang_round):
    """Lục Nam owes Phụ lục 02, Hiệp Hòa (inspected separately) nothing, every other district Phụ lục 03;
    every district that reports also confirms its Phụ lục 01 schedule."""
    forms = {u.code: u.forms for u in bac_giang_round.units}
    assert forms.pop("218") == ("PL01", "PL02")
    assert forms.pop("223") == ()
    assert set(forms.values()) == {("PL01", "PL03")}
    assert [u.code for u in bac_giang_round.units_owing()] == [c for c in BAC_GIANG_UNITS if c != "223"]
    assert bac_giang_round.expected_forms() == {"PL01", "PL02", "PL03"}


def test_bac_giang_deadline_periods_and_inspection_window(bac_giang_round):
    rnd = bac_giang_round
    assert rnd.deadline == dt.date(2024, 5, 10)
    assert [(p.id, p.label) for p in rnd.periods] == [("Y2023", "Năm 2023"), ("Q1_2024", "Quý I/2024")]
    assert rnd.plan_number == "82/KH-SLĐTBXH"
    assert rnd.plan_date == dt.date(2024, 4, 19)
    assert rnd.issuer == "Sở Lao động - Thương binh và Xã hội"
    assert rnd.inspection.sessions == ("Sáng", "Chiều")
    # Every planned visit of the plan lies inside the inspection window.
    assert all(rnd.inspection.start <= date <= rnd.inspection.end for _, date in PLANNED.values())


@pytest.mark.parametrize("code", sorted(PLANNED))
def test_bac_giang_planned_visits_match_the_plan(bac_giang_round, code):
    unit = bac_giang_round.unit(code)
    communes, date = PLANNED[code]
    assert unit.planned is not None
    assert [fold_place(c) for c in unit.planned.communes] == [fold_place(c) for c in communes]
    assert unit.planned.date == date
    # The planned communes belong to the district (so its PL01 list offers them).
    assert all(unit.owns_commune(c) for c in unit.planned.communes)


def test_default_round_is_the_bac_giang_example(bac_giang_round):
    assert load_round().id == bac_giang_round.id


def test_commune_round_reports_per_commune(commune_round):
    rnd = commune_round
    assert rnd.level == "commune"
    assert rnd.level_label == "cấp xã"
    assert len(rnd.units) == 99
    codes = [u.code for u in rnd.units]
    assert len(set(codes)) == 99
    assert all(len(c) == 5 and c.isdigit() for c in codes)  # GSO commune codes
    assert [(p.id, p.label) for p in rnd.periods] == [("Y2025", "Năm 2025"), ("Q1_2026", "Quý I/2026")]
    assert rnd.deadline == dt.date(2026, 4, 24)
    assert rnd.plan_date < rnd.deadline < rnd.inspection.start
    # A commune reports on itself: its commune list is its own name.
    assert all(u.communes == (u.name,) for u in rnd.units)
    assert all(u.forms for u in rnd.units)
    assert {f for u in rnd.units for f in u.forms} <= set(available_forms())
    for u in rnd.units:
        if u.planned:
            assert all(u.owns_commune(c) for c in u.planned.communes)
            assert rnd.inspection.start <= u.planned.date <= rnd.inspection.end


# ------------------------------------------------------------------------------------------ broken rounds

VALID = """\
id: test-round
province: {code: "24", name: Bắc Giang}
issuing_body: [UBND TỈNH BẮC GIANG, SỞ LAO ĐỘNG - THƯƠNG BINH VÀ XÃ HỘI]
issuer: Sở Lao động - Thương binh và Xã hội
plan:
  number: 82/KH-SLĐTBXH
  date: 2024-04-19
  title: Kiểm tra công tác trẻ em và bình đẳng giới năm 2024
periods:
  - {id: Y2023, label: Năm 2023}
  - {id: Q1_2024, label: Quý I/2024}
deadline: 2024-05-10
level: district
inspection: {start: 2024-05-01, end: 2024-06-30}
units:
  - code: "218"
    name: Huyện Lục Nam
    forms: [PL01, PL02]
  - code: "219"
    name: Huyện Lục Ngạn
    forms: [PL01, PL03]
"""


def line_no(text: str, fragment: str, occurrence: int = 0) -> int:
    """1-based number of the line holding ``fragment`` (its n-th occurrence)."""
    lines = [i for i, line in enumerate(text.splitlines(), start=1) if fragment in line]
    return lines[occurrence]


def broken(old: str, new: str) -> str:
    assert VALID.count(old) == 1, old
    return VALID.replace(old, new)


def run_templates(round_path: Path, out: Path):
    return CliRunner().invoke(main, ["templates", "--round", str(round_path), "-o", str(out)])


def test_the_valid_round_used_below_generates_templates(tmp_path):
    """Control for the broken-file tests: without the breakage the same file works."""
    path = tmp_path / "round.yaml"
    path.write_text(VALID, encoding="utf-8")
    result = run_templates(path, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["218_huyen-luc-nam.xlsx", "219_huyen-luc-ngan.xlsx"]


# Each case: the broken text, the fragment on the line the message must name, the message, the fix line.
# "{path}" stands for the file, "{first}" for the line of the first "218" (duplicate codes).
CASES = {
    "unknown form": (
        broken("forms: [PL01, PL03]", "forms: [PL01, PL04]"),
        "forms: [PL01, PL04]",
        "đơn vị “219” khai báo biểu “PL04” không có trong bộ biểu mẫu.",
        "Dùng một trong các biểu: PL01, PL02, PL03.",
    ),
    "duplicate unit code": (
        broken('code: "219"', 'code: "218"'),
        ('code: "218"', 1),
        "mã đơn vị “218” bị trùng (đã dùng ở dòng {first}).",
        "Mỗi đơn vị phải có một mã riêng; kiểm tra lại mã GSO.",
    ),
    "unit without a code": (
        broken('  - code: "219"\n    name: Huyện Lục Ngạn', "  - name: Huyện Lục Ngạn"),
        "name: Huyện Lục Ngạn",
        "đơn vị “Huyện Lục Ngạn” chưa có mã (code).",
        'Thêm “code:” với mã đơn vị hành chính chính thức (mã GSO), ví dụ code: "218".',
    ),
    "unit that is not a mapping": (
        broken('  - code: "219"\n    name: Huyện Lục Ngạn\n    forms: [PL01, PL03]', "  - Huyện Lục Ngạn"),
        "- Huyện Lục Ngạn",
        "mỗi đơn vị phải có “code”, “name” và “forms”.",
        None,
    ),
    "YAML: colon inside an unquoted value": (
        broken("title: Kiểm tra công tác", "title: Kế hoạch: Kiểm tra công tác"),
        "title: Kế hoạch:",
        "cú pháp YAML không hợp lệ: có dấu hai chấm “:” trong giá trị; hãy đặt giá trị trong ngoặc kép.",
        "Kiểm tra thụt lề, dấu hai chấm và dấu ngoặc kép ở dòng này.",
    ),
    "YAML: tab used for indentation": (
        broken("    name: Huyện Lục Ngạn", "\tname: Huyện Lục Ngạn"),
        "\tname: Huyện Lục Ngạn",
        "cú pháp YAML không hợp lệ: có ký tự tab; YAML chỉ thụt lề bằng dấu cách.",
        "Kiểm tra thụt lề, dấu hai chấm và dấu ngoặc kép ở dòng này.",
    ),
    "deadline that is not a date": (
        broken("deadline: 2024-05-10", "deadline: 31/04/2024"),
        "deadline:",
        "“deadline” phải là một ngày hợp lệ, nhưng đang là “31/04/2024”.",
        "Viết ngày theo dạng YYYY-MM-DD (ví dụ 2024-05-10) hoặc dd/mm/yyyy (10/05/2024).",
    ),
    "deadline in words": (
        broken("deadline: 2024-05-10", "deadline: trước 10/5/2024"),
        "deadline:",
        "“deadline” phải là một ngày hợp lệ, nhưng đang là “trước 10/5/2024”.",
        "Viết ngày theo dạng YYYY-MM-DD (ví dụ 2024-05-10) hoặc dd/mm/yyyy (10/05/2024).",
    ),
    "unknown level": (
        broken("level: district", "level: province"),
        "level: province",
        "cấp báo cáo “province” không hợp lệ.",
        "Dùng “district” (cấp huyện, trước 2025) hoặc “commune” (cấp xã, sau cải cách 2025).",
    ),
}


def expected_message(text: str, path: Path, where, message: str, fix: str | None) -> str:
    fragment, occurrence = where if isinstance(where, tuple) else (where, 0)
    line = line_no(text, fragment, occurrence)
    message = message.format(first=line_no(text, 'code: "218"')) if "{first}" in message else message
    out = f"Lỗi trong tệp {path}, dòng {line}: {message}"
    return out + (f"\nCách sửa: {fix}" if fix else "")


@pytest.mark.parametrize("case", list(CASES))
def test_broken_round_stops_the_command_with_a_vietnamese_message(tmp_path, case):
    text, where, message, fix = CASES[case]
    path = tmp_path / "round.yaml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"

    result = run_templates(path, out)

    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # exited on purpose, not crashed
    assert "Traceback" not in result.output
    assert result.stderr == expected_message(text, path, where, message, fix) + "\n"
    assert result.stdout == ""
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_config_error_carries_file_line_and_fix(tmp_path):
    """The library raises the same error (for a future web page or add-in), with its parts separately."""
    text, where, message, fix = CASES["unknown level"]
    path = tmp_path / "round.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_round(path)
    err = info.value
    assert (err.path, err.line, err.message, err.fix) == (str(path), line_no(text, where), message, fix)
    assert str(err) == expected_message(text, path, where, message, fix)


def test_impossible_iso_deadline_is_a_config_error(tmp_path):
    text = broken("deadline: 2024-05-10", "deadline: 2024-02-30")
    path = tmp_path / "round.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_templates(path, tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr == (
        expected_message(
            text,
            path,
            "deadline:",
            "“deadline” phải là một ngày hợp lệ, nhưng đang là “2024-02-30”.",
            "Viết ngày theo dạng YYYY-MM-DD (ví dụ 2024-05-10) hoặc dd/mm/yyyy (10/05/2024).",
        )
        + "\n"
    )


def test_missing_round_file(tmp_path):
    path = tmp_path / "khong-co.yaml"
    result = run_templates(path, tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr == f"Lỗi trong tệp {path}: không tìm thấy tệp.\nCách sửa: Kiểm tra lại đường dẫn.\n"
