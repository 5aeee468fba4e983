"""Issue 3 – ``baocao validate``: exit codes, the JSON contract of DESIGN.md, the Vietnamese messages, and the
annotated copies (opened with openpyxl and once with LibreOffice). Returns are typed by a real LibreOffice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import openpyxl
import pytest
import yaml
from click.testing import CliRunner
from support import libreoffice as lo
from support.returns import edits_for

from toolkit.annotate import RESULT_SHEET
from toolkit.cli import main
from toolkit.findings import CATALOG
from toolkit.forms import get_form
from toolkit.round import Round

pytestmark = pytest.mark.libreoffice

ON_TIME = dt.datetime(2024, 5, 9, 16, 0)
FINDING_KEYS = {"code", "severity", "form", "sheet", "cell", "indicator", "field", "value", "expected", "message"}
FILE_KEYS = {"path", "sha256", "unit_code", "forms", "valid", "findings"}
RED, YELLOW = "FFC7CE", "FFEB9C"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Inbox:
    """Two folders typed by LibreOffice: ``clean/`` (two valid returns) and ``faulty/`` (two faulty returns)."""

    def __init__(self, root: Path, rnd: Round) -> None:
        self.root, self.rnd = root, rnd
        self.clean, self.faulty = root / "clean", root / "faulty"
        self.periods = tuple(p.id for p in rnd.periods)
        self.year = self.periods[0]
        self.typed: dict[str, dict] = {}  # file name -> {(form, indicator, field, period): value}

    def cell(self, code: str, fld: str = "total", form_id: str = "PL03") -> str:
        return get_form(form_id).layout(self.periods).cell(code, fld, self.year)


@pytest.fixture(scope="module")
def inbox(bac_giang_round: Round, templates_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Inbox:
    rnd = bac_giang_round
    box = Inbox(tmp_path_factory.mktemp("cli"), rnd)
    box.clean.mkdir()
    box.faulty.mkdir()
    jobs = []

    def job(unit_code: str, folder: Path, name: str, fmt: str, seed: int, change=None):
        """Type the unit's clean figures; ``change(typed)`` -> {address: edit} plants faults in PL03."""
        unit = rnd.unit(unit_code)
        edits, typed = {}, {}
        for form_id in unit.forms:
            for e in edits_for(get_form(form_id), rnd, unit, seed):
                edits[(e["sheet"], e["cell"])] = e
                if "value" in e:
                    typed[(e["sheet"], e["cell"])] = e["value"]
        for address, edit in (change(typed) if change else {}).items():
            edits[("PL03", address)] = {"sheet": "PL03", "cell": address, **edit}
        box.typed[name] = typed
        jobs.append(
            {
                "input": str(templates_dir / f"{unit.file_stem}.xlsx"),
                "output": str(folder / name),
                "format": fmt,
                "edits": list(edits.values()),
            }
        )

    job("213", box.clean, "213_tp-bac-giang.xlsx", "xlsx", 11)
    job("218", box.clean, "218_luc-nam.xlsx", "xlsx", 12)
    # three faults in one return: nữ > tổng, a blank input cell, a number typed as text
    job(
        "215",
        box.faulty,
        "215_yen-the.xlsx",
        "xlsx",
        13,
        lambda typed: {
            box.cell("TE04", "female"): {"value": typed[("PL03", box.cell("TE04"))] + 4},
            box.cell("TE05"): {"clear": True},
            box.cell("TE12"): {"text": "12"},
        },
    )
    # a faulty .xls: annotated from a values copy
    job("216", box.faulty, "216_tan-yen.xls", "xls", 14, lambda typed: {box.cell("TE05"): {"clear": True}})
    lo.run(jobs)
    for folder in (box.clean, box.faulty):
        names = [p.name for p in folder.iterdir()]
        (folder / "received.yaml").write_text(yaml.safe_dump(dict.fromkeys(names, ON_TIME)), encoding="utf-8")
    return box


def invoke(*args: str):
    result = CliRunner().invoke(main, ["validate", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


# ------------------------------------------------------------------------------------------------ exit codes


def test_clean_folder_exits_0(inbox):
    result = invoke(str(inbox.clean))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"✔ hợp lệ – {inbox.clean / '213_tp-bac-giang.xlsx'} – Thành phố Bắc Giang (213)"
    assert lines[1] == f"✔ hợp lệ – {inbox.clean / '218_luc-nam.xlsx'} – Huyện Lục Nam (218)"
    assert lines[-1] == "Tổng cộng: 2 tệp, 2 hợp lệ, 0 không hợp lệ; 0 lỗi, 0 cảnh báo."


def test_files_named_directly_and_the_round_option(inbox, bac_giang_round):
    result = invoke(str(inbox.clean / "213_tp-bac-giang.xlsx"), "--round", str(bac_giang_round.path))
    assert result.exit_code == 0, result.output


def test_a_faulty_return_exits_1(inbox):
    result = invoke(str(inbox.clean), str(inbox.faulty))
    assert result.exit_code == 1, result.output
    assert f"✖ 2 lỗi, 1 cảnh báo – {inbox.faulty / '215_yen-the.xlsx'} – Huyện Yên Thế (215)" in result.stdout
    assert f"✖ 1 lỗi, 0 cảnh báo – {inbox.faulty / '216_tan-yen.xls'} – Huyện Tân Yên (216)" in result.stdout
    assert "Tổng cộng: 4 tệp, 2 hợp lệ, 2 không hợp lệ; 3 lỗi, 1 cảnh báo." in result.stdout


def test_missing_path_exits_2(inbox):
    result = invoke(str(inbox.clean), str(inbox.root / "khong-co"))
    assert result.exit_code == 2
    assert "Không tìm thấy" in result.output and "khong-co" in result.output


def test_broken_round_file_exits_2(inbox, tmp_path):
    broken = tmp_path / "round.yaml"
    broken.write_text("id: dot-loi\nperiods: [\n  - {id: Y2023\n", encoding="utf-8")
    result = invoke(str(inbox.clean), "--round", str(broken))
    assert result.exit_code == 2
    assert str(broken.name) in result.output
    missing_keys = tmp_path / "thieu.yaml"
    missing_keys.write_text("id: dot-thieu\n", encoding="utf-8")
    result = invoke(str(inbox.clean), "--round", str(missing_keys))
    assert result.exit_code == 2
    assert result.stdout == ""  # nothing validated


def test_bad_option_exits_2(inbox):
    assert invoke(str(inbox.clean), "--khong-co-tuy-chon").exit_code == 2


# ------------------------------------------------------------------------------------------------------ JSON


def test_json_matches_the_design_contract(inbox):
    result = invoke(str(inbox.clean), str(inbox.faulty), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert set(data) == {"files", "summary"}
    files = {Path(f["path"]).name: f for f in data["files"]}
    assert sorted(files) == ["213_tp-bac-giang.xlsx", "215_yen-the.xlsx", "216_tan-yen.xls", "218_luc-nam.xlsx"]
    for f in data["files"]:
        assert FILE_KEYS <= set(f)
        assert f["sha256"] == sha256(Path(f["path"]))
        assert isinstance(f["valid"], bool) and isinstance(f["forms"], list)
        for finding in f["findings"]:
            assert FINDING_KEYS <= set(finding)
            assert finding["severity"] in ("error", "warning")
            assert finding["message"]
    assert files["213_tp-bac-giang.xlsx"]["unit_code"] == "213"
    assert files["213_tp-bac-giang.xlsx"]["forms"] == ["PL01", "PL03"]
    assert files["218_luc-nam.xlsx"]["forms"] == ["PL01", "PL02"]
    assert files["213_tp-bac-giang.xlsx"]["valid"] is True and files["213_tp-bac-giang.xlsx"]["findings"] == []
    faulty = files["215_yen-the.xlsx"]
    assert faulty["valid"] is False and faulty["unit_code"] == "215"
    got = sorted((x["code"], x["severity"], x["sheet"], x["cell"]) for x in faulty["findings"])
    assert got == sorted(
        [
            ("rule-violation", "error", "PL03", inbox.cell("TE04", "female")),
            ("missing-value", "error", "PL03", inbox.cell("TE05")),
            ("number-as-text", "warning", "PL03", inbox.cell("TE12")),
        ]
    )
    summary = data["summary"]
    assert summary["files"] == 4 and summary["valid"] == 2 and summary["invalid"] == 2
    assert summary["errors"] == 3 and summary["warnings"] == 1
    assert summary["by_code"] == {"missing-value": 2, "number-as-text": 1, "rule-violation": 1}


def test_exact_vietnamese_messages(inbox):
    data = json.loads(invoke(str(inbox.faulty / "215_yen-the.xlsx"), "--json").stdout)
    by_code = {f["code"]: f for f in data["files"][0]["findings"]}
    typed = inbox.typed["215_yen-the.xlsx"]
    female_cell, total_cell = inbox.cell("TE04", "female"), inbox.cell("TE04")
    total = int(typed[("PL03", total_cell)])
    assert by_code["rule-violation"]["message"] == (
        f"Số nữ ({total + 4}) lớn hơn tổng số ({total}) của chỉ tiêu “Số trẻ em bị xâm hại”, Năm 2023. "
        f"Số nữ không được vượt tổng số; hãy kiểm tra lại hai ô này. (ô {female_cell}, {total_cell}, trang PL03)"
    )
    assert by_code["rule-violation"]["indicator"] == "TE04" and by_code["rule-violation"]["field"] == "female"
    blank = inbox.cell("TE05")
    assert by_code["missing-value"]["message"] == (
        f"Ô {blank} (trang PL03) còn trống: “Số vụ xâm hại trẻ em” – Tổng số, Năm 2023. "
        "Hãy nhập số liệu; nếu bằng 0 thì nhập 0."
    )
    text = inbox.cell("TE12")
    assert by_code["number-as-text"]["message"] == (
        f"Ô {text} (trang PL03) chứa số “12” được gõ dạng chữ; đã đọc là 12. "
        "Hãy định dạng ô là số và nhập lại để tránh nhầm lẫn."
    )
    assert by_code["number-as-text"]["value"] == "12" and by_code["number-as-text"]["expected"] == 12
    # the console shows the same sentences, marked as error or warning
    console = invoke(str(inbox.faulty / "215_yen-the.xlsx")).stdout
    assert f"  Lỗi [rule-violation] {by_code['rule-violation']['message']}" in console
    assert f"  Lỗi [missing-value] {by_code['missing-value']['message']}" in console
    assert f"  Cảnh báo [number-as-text] {by_code['number-as-text']['message']}" in console


# ------------------------------------------------------------------------------------------------- annotate


def _link(cell) -> str:
    """Where an in-workbook hyperlink points, as “'Sheet'!A1” (a location, not a link to a file)."""
    h = cell.hyperlink
    assert h is not None, cell.coordinate
    assert not h.target, h.target
    return h.location


def test_annotate_writes_a_checked_copy_per_file(inbox, tmp_path):
    before = {p: sha256(p) for folder in (inbox.clean, inbox.faulty) for p in folder.iterdir()}
    out = tmp_path / "kiem-tra"
    result = invoke(str(inbox.clean), str(inbox.faulty), "--annotate", str(out))
    assert result.exit_code == 1
    assert {p: sha256(p) for p in before} == before  # the returned files are never modified
    assert sorted(p.name for p in out.iterdir()) == [
        "213_tp-bac-giang_kiem-tra.xlsx",
        "215_yen-the_kiem-tra.xlsx",
        "216_tan-yen_kiem-tra.xlsx",
        "218_luc-nam_kiem-tra.xlsx",
    ]
    assert f"Đã ghi 4 bản sao có chú thích vào {out}." in result.stdout
    findings = {
        Path(f["path"]).stem: f["findings"]
        for f in json.loads(invoke(str(inbox.clean), str(inbox.faulty), "--json").stdout)["files"]
    }

    for stem in ("215_yen-the", "216_tan-yen", "213_tp-bac-giang"):
        wb = openpyxl.load_workbook(out / f"{stem}_kiem-tra.xlsx")
        assert wb.sheetnames[0] == RESULT_SHEET
        assert "PL03" in wb.sheetnames
        ws = wb[RESULT_SHEET]
        assert stem in ws["A1"].value
        assert [ws.cell(4, c).value for c in range(1, 7)] == ["STT", "Mức độ", "Loại", "Trang", "Ô", "Nội dung"]
        listed = findings[stem]
        for i, f in enumerate(listed, start=1):
            row = 4 + i
            assert ws.cell(row, 1).value == i
            assert ws.cell(row, 2).value == ("Lỗi" if f["severity"] == "error" else "Cảnh báo")
            assert ws.cell(row, 3).value == CATALOG[f["code"]][1]  # the kind in Vietnamese, not the code
            assert ws.cell(row, 5).value == f["cell"]
            assert ws.cell(row, 6).value == f["message"]
            assert _link(ws.cell(row, 5)) == f"'{f['sheet']}'!{f['cell']}"
            target = wb[f["sheet"]][f["cell"]]
            assert target.fill.fgColor.rgb.endswith(RED if f["severity"] == "error" else YELLOW)
            assert target.comment is not None and f["message"] in target.comment.text
        assert ws.cell(5 + len(listed), 3).value is None
        if not listed:
            assert "Tệp hợp lệ" in ws["A2"].value
    # cells without a finding keep their look
    wb = openpyxl.load_workbook(out / "215_yen-the_kiem-tra.xlsx")
    untouched = wb["PL03"][inbox.cell("TE06")]
    assert untouched.comment is None
    assert not untouched.fill.fgColor.rgb.endswith((RED, YELLOW))
    # a real spreadsheet program opens every copy, the findings sheet first
    results = lo.run([{"input": str(p), "output": None, "edits": []} for p in sorted(out.iterdir())])
    for result in results:
        assert result["sheets"][0] == RESULT_SHEET


def test_files_that_are_not_returns_are_left_out_of_an_inbox(tmp_path):
    """What Windows, Excel and LibreOffice leave in a shared folder, and baocao's own files, are not returns."""
    from toolkit.validate import collect_files

    (tmp_path / "sub").mkdir()
    for name in (
        "~$213_tp-bac-giang.xlsx",  # Excel's owner file while the return is open
        ".~lock.213_tp-bac-giang.xlsx#",  # LibreOffice's lock file
        "Thumbs.db",
        "desktop.ini",
        "received.yaml",
        "registry.sqlite",
        "registry.sqlite-wal",
    ):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "213_tp-bac-giang.xlsx").write_bytes(b"x")
    (tmp_path / "sub" / "215_yen-the.xlsx").write_bytes(b"x")
    (tmp_path / "sub" / "Desktop.ini").write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in collect_files([tmp_path])] == [
        "213_tp-bac-giang.xlsx",
        "sub/215_yen-the.xlsx",
    ]
