"""`baocao consolidate`, `status` and `demo` end to end on the shipped inbox (returns saved by LibreOffice)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
import python_calamine
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.forms import get_form
from toolkit.resources import examples_dir
from toolkit.round import load_round

INBOX = examples_dir() / "bac-giang-2024" / "inbox"
ROUND = examples_dir() / "bac-giang-2024" / "round.yaml"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inbox_hashes() -> dict[str, str]:
    return {p.name: sha(p) for p in sorted(INBOX.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    before = inbox_hashes()
    result = CliRunner().invoke(main, ["demo", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output, before


@pytest.fixture(scope="module")
def run_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("json")
    result = CliRunner().invoke(
        main, ["consolidate", str(INBOX), "-o", str(out / "s.xlsx"), "--registry", str(out / "r.sqlite"), "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output), out


def cell_value(path: Path, sheet: str, address: str):
    """Read one cell straight from a return (openpyxl for .xlsx, calamine for .ods/.xls) — not via toolkit."""
    if path.suffix == ".xlsx":
        return openpyxl.load_workbook(path, data_only=True)[sheet][address].value
    col = 0
    letters = "".join(ch for ch in address if ch.isalpha())
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    row = int(address[len(letters) :])
    rows = (
        python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    )
    return rows[row - 1][col - 1]


def test_demo_prints_status_and_where_outputs_are(demo):
    out, output, _ = demo
    assert "Đã ghi bảng tổng hợp:" in output
    assert (out / "tong-hop-bac-giang-2024.xlsx").exists()
    assert "✖ chưa nộp" in output  # the missing unit
    assert "⚠ nộp muộn" in output  # the late unit
    assert len(list((out / "bieu-mau").glob("*.xlsx"))) == 9


def test_returned_files_are_never_modified(demo):
    _, _, before = demo
    assert inbox_hashes() == before


def test_totals_match_an_independent_recomputation(run_json):
    doc, out = run_json
    rnd = load_round(ROUND)
    periods = tuple(p.id for p in rnd.periods)
    files = {f["unit_code"]: Path(f["path"]) for f in doc["files"] if f["valid"] and not f["superseded_by"]}
    summary = openpyxl.load_workbook(out / "s.xlsx")
    for form_id, units in doc["included"].items():
        assert units, form_id
        assert set(units) == {u for u in files if form_id in load_round(ROUND).unit(u).forms}
        form = get_form(form_id)
        layout = form.layout(periods)
        ws = summary[f"Tổng hợp {form_id}"]
        sums = {}
        for cell in layout.inputs:
            expected = sum(float(cell_value(files[u], form.sheet, cell.address)) for u in units)
            sums[(cell.indicator, cell.field, cell.period)] = expected
            assert ws[cell.address].value == pytest.approx(expected), (form_id, cell.address)
        for ind in form.indicators:
            if not ind.is_rate:
                continue
            for period in periods:
                num = sums[(ind.numerator[0], ind.numerator[1], period)]
                den = sums[(ind.denominator[0], ind.denominator[1], period)]
                got = ws[layout.cell(ind.code, "total", period)].value
                assert got == pytest.approx(num / den * 100, abs=0.05), (ind.code, period)


def test_the_tidy_table_is_every_counted_figure_and_adds_up_to_the_totals():
    """The tidy table (kept per return and form) reads as rows: one per figure of each counted return, traced to
    its cell, and its rows add up to the province's totals."""
    from toolkit.consolidate import consolidate
    from toolkit.validate import validate_paths

    rnd = load_round(ROUND)
    cons = consolidate(validate_paths([INBOX], rnd), rnd)
    rows = list(cons.tidy)
    assert len(rows) == len(cons.tidy) > 0
    assert cons.tidy[0] == rows[0] and cons.tidy[-1] == rows[-1] and cons.tidy[3:6] == rows[3:6]
    with pytest.raises(IndexError):
        cons.tidy[len(rows)]
    counted = {s.sha256: s for s in cons.report.counted()}
    books = {sha: openpyxl.load_workbook(s.path, data_only=True) for sha, s in counted.items() if s.format == "xlsx"}
    sums: dict[tuple, float] = {}
    for t in rows:
        source = counted[t.sha256]
        assert (t.unit_code, t.source_file) == (source.unit_code, source.name)
        book = books.get(t.sha256)
        assert t.value == (book[t.sheet][t.cell].value if book else cell_value(source.path, t.sheet, t.cell))
        sums[(t.form, t.indicator, t.field, t.period)] = sums.get((t.form, t.indicator, t.field, t.period), 0) + t.value
    for form_id, ft in cons.forms.items():
        assert {k: v for k, v in sums.items() if k[0] == form_id} == {(form_id, *k): v for k, v in ft.totals.items()}


def test_a_counted_return_with_every_figure_blank_gives_no_rows():
    """Where the rules let figures be left blank, a return may give a form no figure at all: it is counted (the
    unit is named in the totals) but gives the tidy table nothing, so nothing of it reaches the data sheet."""
    from toolkit.consolidate import consolidate
    from toolkit.validate import validate_paths

    rnd = load_round(ROUND)
    report = validate_paths([INBOX], rnd)
    blank = next(s for s in report.counted() if "PL03" in s.forms)
    for v in blank.values:
        if v.form == "PL03":
            v.value = None
    cons = consolidate(report, rnd)
    assert blank.unit_code in cons.forms["PL03"].units
    assert all(b.values for b in cons.tidy.blocks)
    assert not [t for t in cons.tidy if t.sha256 == blank.sha256 and t.form == "PL03"]


def test_rerun_changes_nothing(demo):
    out, _, _ = demo
    summary = out / "tong-hop-bac-giang-2024.xlsx"
    with zipfile.ZipFile(summary) as z:
        before = {n: z.read(n) for n in z.namelist()}
    db = sqlite3.connect(out / "registry.sqlite")
    files_before = db.execute("select sha256, first_seen, status from files order by sha256").fetchall()
    db.close()
    result = CliRunner().invoke(main, ["demo", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(summary) as z:
        assert {n: z.read(n) for n in z.namelist()} == before
    db = sqlite3.connect(out / "registry.sqlite")
    assert db.execute("select sha256, first_seen, status from files order by sha256").fetchall() == files_before
    db.close()


def _copy_inbox(tmp_path: Path) -> Path:
    """The shipped inbox copied to tmp_path/inbox, its round beside it (tmp_path/round.yaml)."""
    (tmp_path / "round.yaml").write_bytes(ROUND.read_bytes())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for p in INBOX.iterdir():
        if p.is_file():
            (inbox / p.name).write_bytes(p.read_bytes())
    return inbox


def test_an_output_inside_the_inbox_is_refused_and_nothing_is_touched(tmp_path):
    """`-o` on a unit's return (or anywhere in the inbox) would overwrite it or be read as a return next time."""
    inbox = _copy_inbox(tmp_path)
    before = {p.name: sha(p) for p in inbox.iterdir()}
    for target in (inbox / "213_tp-bac-giang.xlsx", inbox / "TONG_HOP.xlsx"):
        result = CliRunner().invoke(
            main, ["consolidate", str(inbox), "-o", str(target), "--registry", str(tmp_path / "r.sqlite")]
        )
        assert result.exit_code == 2
        assert result.stderr == (
            f"Không ghi tệp tổng hợp {target} vào trong hộp thư {inbox}: tệp có thể đè lên tệp đơn vị gửi về, và lần "
            "chạy sau sẽ bị đọc như một tệp gửi về. Hãy chọn một thư mục ngoài hộp thư.\n"
        )
    annotate = inbox / "chu-thich"
    result = CliRunner().invoke(
        main,
        ["consolidate", str(inbox), "-o", str(tmp_path / "s.xlsx"), "--annotate", str(annotate)],
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"Không ghi bản sao có chú thích vào {annotate}: thư mục này nằm trong hộp thư {inbox}, lần chạy sau các bản "
        "sao sẽ bị đọc như tệp gửi về. Hãy chọn một thư mục ngoài hộp thư (--annotate).\n"
    )
    result = CliRunner().invoke(main, ["validate", str(inbox), "--annotate", str(annotate)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"Không ghi bản sao có chú thích vào {annotate}: thư mục này nằm trong thư mục đang kiểm tra {inbox}, lần "
        "sau các bản sao sẽ bị đọc như tệp gửi về. Hãy chọn một thư mục khác (--annotate).\n"
    )
    assert {p.name: sha(p) for p in inbox.iterdir()} == before
    assert not (tmp_path / "r.sqlite").exists() and not (tmp_path / "s.xlsx").exists()


def test_the_round_beside_the_inbox_is_used_without_round(tmp_path):
    """dot/round.yaml + dot/inbox: `consolidate dot/inbox` needs no --round; with no round beside, stderr says
    the example round is used (stdout stays JSON)."""
    inbox = _copy_inbox(tmp_path)
    text = (tmp_path / "round.yaml").read_text(encoding="utf-8")
    (tmp_path / "round.yaml").write_text(text.replace("id: bac-giang-2024-tebdg\n", "id: dot-2\n", 1), encoding="utf-8")
    result = CliRunner().invoke(main, ["consolidate", str(inbox), "-o", str(tmp_path / "s.xlsx"), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert json.loads(result.stdout)["summary"]["round"] == "dot-2"

    (tmp_path / "round.yaml").unlink()
    result = CliRunner().invoke(main, ["status", str(inbox), "--json"])
    assert result.stderr.startswith(
        f"Không có --round và không thấy {tmp_path / 'round.yaml'}: dùng đợt mẫu Bắc Giang 2024. Hãy chỉ rõ tệp đợt "
        "báo cáo bằng --round round.yaml.\n"
    )


def test_files_of_no_unit_are_named_under_the_status_table(tmp_path):
    inbox = _copy_inbox(tmp_path)
    (inbox / "cong-van-kem-theo.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    result = CliRunner().invoke(main, ["consolidate", str(inbox), "-o", str(tmp_path / "s.xlsx")])
    assert result.exit_code == 0, result.output
    assert (
        "Tệp không thuộc đơn vị nào của đợt này (1): cong-van-kem-theo.pdf. Xem lý do ở trang “Lỗi và cảnh báo” "
        "của bảng tổng hợp.\n"
    ) in result.stdout


def test_the_summary_must_be_an_xlsx_so_never_the_round_file(tmp_path):
    """`-o tong-hop.ods` would be xlsx bytes under another name; `-o round.yaml` would overwrite the round."""
    round_copy = tmp_path / "round.yaml"
    round_copy.write_bytes(ROUND.read_bytes())
    for target, message in (
        (
            tmp_path / "tong-hop.ods",
            f"Không ghi được tệp tổng hợp {tmp_path / 'tong-hop.ods'}: bảng tổng hợp là sổ tính Excel nên tên tệp "
            "phải có đuôi .xlsx. Hãy đặt tên dạng TONG_HOP.xlsx.\n",
        ),
        (
            round_copy,
            f"Không ghi được tệp tổng hợp {round_copy}: bảng tổng hợp là sổ tính Excel nên tên tệp phải có đuôi "
            ".xlsx. Hãy đặt tên dạng TONG_HOP.xlsx.\n",
        ),
    ):
        result = CliRunner().invoke(
            main,
            [
                "consolidate",
                str(INBOX),
                "--round",
                str(round_copy),
                "-o",
                str(target),
                "--registry",
                str(tmp_path / "r.sqlite"),
            ],
        )
        assert result.exit_code == 2
        assert result.stderr == message
    assert round_copy.read_bytes() == ROUND.read_bytes()


def test_output_that_cannot_be_written_is_exit_2(tmp_path):
    target = tmp_path / "khong-co" / "tong-hop.xlsx"
    result = CliRunner().invoke(
        main, ["consolidate", str(INBOX), "-o", str(target), "--registry", str(tmp_path / "r.sqlite")]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"Không ghi được tệp tổng hợp {target}: thư mục {target.parent} không tồn tại. "
        "Hãy tạo thư mục hoặc chọn đường dẫn khác.\n"
    )
    assert not (tmp_path / "r.sqlite").exists()


def test_status_reads_the_registry(tmp_path):
    reg = tmp_path / "r.sqlite"
    result = CliRunner().invoke(main, ["status", str(INBOX), "--registry", str(reg)])
    assert result.exit_code == 2
    assert "Chưa có sổ theo dõi" in result.stderr
    CliRunner().invoke(main, ["consolidate", str(INBOX), "-o", str(tmp_path / "s.xlsx"), "--registry", str(reg)])
    result = CliRunner().invoke(main, ["status", str(INBOX), "--registry", str(reg), "--json"])
    assert result.exit_code == 0, result.output
    units = {u["unit_code"]: u["state"] for u in json.loads(result.output)["units"]}
    rnd = load_round(ROUND)
    assert set(units) == {u.code for u in rnd.units}
    assert units["223"] == "not-owed"
    received = {p.name.split("_")[0] for p in INBOX.iterdir() if p.name[0].isdigit()}
    for code, state in units.items():
        if code != "223" and code not in received:
            assert state == "missing"


def test_two_consolidations_at_once_do_not_corrupt_the_registry(tmp_path):
    reg = tmp_path / "r.sqlite"
    cmd = [sys.executable, "-m", "toolkit.cli", "consolidate", str(INBOX), "--registry", str(reg), "-o"]
    procs = [
        subprocess.Popen(cmd + [str(tmp_path / f"s{i}.xlsx")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    db = sqlite3.connect(reg)
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    db.close()
    with zipfile.ZipFile(tmp_path / "s0.xlsx") as a, zipfile.ZipFile(tmp_path / "s1.xlsx") as b:
        assert {n: a.read(n) for n in a.namelist()} == {n: b.read(n) for n in b.namelist()}


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "forked"])
def test_a_summary_that_fails_while_written_records_nothing(tmp_path, monkeypatch, parallel):
    """The registry commits only once the summary is written: a summary that failed records nothing, whether it
    was written before the registry recorded or by a forked child meanwhile."""
    import toolkit.pipeline as pipeline

    def fail(cons, path, temp_prefix=".tmp-"):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pipeline, "write_summary", fail)
    reg, target = tmp_path / "r.sqlite", tmp_path / "tong-hop.xlsx"
    with pytest.raises(pipeline.OutputError) as err:
        pipeline.consolidate_inbox(INBOX, load_round(ROUND), target, reg, parallel=parallel)
    assert str(err.value) == (
        f"Không ghi được tệp tổng hợp {target}: không có quyền truy cập. "
        "Hãy đóng tệp nếu đang mở trong Excel, hoặc chọn đường dẫn khác."
    )
    db = sqlite3.connect(reg)
    assert [db.execute(f"select count(*) from {t}").fetchone()[0] for t in ("runs", "files", "accepted_values")] == [
        0,
        0,
        0,
    ]
    db.close()
    assert not target.exists()


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "forked"])
def test_a_table_longer_than_an_excel_sheet_is_an_output_error(tmp_path, monkeypatch, parallel):
    import toolkit.summary as summary
    from toolkit.pipeline import OutputError, consolidate_inbox

    original = summary._BulkSheet.__init__

    def small_sheets(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.xls_rowmax = 100  # as if the round had more figures than an Excel sheet has rows

    monkeypatch.setattr(summary._BulkSheet, "__init__", small_sheets)
    target = tmp_path / "tong-hop.xlsx"
    with pytest.raises(OutputError) as err:
        consolidate_inbox(INBOX, load_round(ROUND), target, tmp_path / "r.sqlite", parallel=parallel)
    assert str(err.value).startswith(f"Không ghi được tệp tổng hợp {target}: ")
    assert "quá số dòng tối đa của một trang Excel (100)" in str(err.value)
    assert not target.exists() and not list(tmp_path.glob(".tmp-*"))


# ------------------------------------------------------------------------ the summary written by a forked child


@pytest.fixture
def forks(monkeypatch):
    """How many summary children were started (a test of the forked path must see one)."""
    import toolkit.pipeline as pipeline

    started = []
    real = pipeline._SummaryProcess

    def spy(*args, **kwargs):
        started.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_SummaryProcess", spy)
    yield started
    assert multiprocessing.active_children() == []  # every child reaped


def registry_rows(path: Path) -> dict[str, list]:
    """The registry's tables, as a test compares them (times of the run left out)."""
    db = sqlite3.connect(path)
    try:
        return {
            "files": db.execute(
                "select round_id, sha256, unit_code, status, errors, warnings from files order by sha256"
            ).fetchall(),
            "findings": db.execute("select * from findings order by 1, 2, 3").fetchall(),
            "accepted_values": db.execute("select * from accepted_values order by 1, 2, 3, 4, 5, 6").fetchall(),
            "runs": db.execute("select round_id, files, value_count, errors, warnings from runs").fetchall(),
        }
    finally:
        db.close()


def test_a_summary_written_by_a_forked_child_is_the_same(tmp_path, forks):
    """Large inboxes have the summary written by a forked child while the registry records: same summary, same
    registry as when they are written one after the other."""
    from toolkit.pipeline import consolidate_inbox

    rnd = load_round(ROUND)
    runs = {}
    for parallel in (False, True):
        out = tmp_path / str(parallel)
        out.mkdir()
        runs[parallel] = consolidate_inbox(INBOX, rnd, out / "s.xlsx", out / "r.sqlite", parallel=parallel)
    assert forks == [True]
    with zipfile.ZipFile(tmp_path / "False" / "s.xlsx") as a, zipfile.ZipFile(tmp_path / "True" / "s.xlsx") as b:
        assert a.namelist() == b.namelist()
        assert {n: a.read(n) for n in a.namelist()} == {n: b.read(n) for n in b.namelist()}
    assert registry_rows(tmp_path / "False" / "r.sqlite") == registry_rows(tmp_path / "True" / "r.sqlite")
    (run,) = registry_rows(tmp_path / "True" / "r.sqlite")["runs"]
    assert run[1:3] == (len(runs[True].report.submissions), len(runs[True].consolidation.tidy)) == (9, 1070)
    assert not list(tmp_path.rglob(".tmp-*"))


def test_a_child_that_dies_while_writing_the_summary_records_nothing(tmp_path, monkeypatch, forks):
    """A child killed while it writes (say, out of memory) is an output error; the registry records nothing."""
    import os

    import toolkit.pipeline as pipeline

    def die(cons, path, temp_prefix=".tmp-"):
        (path.parent / f"{temp_prefix}half.xlsx").write_bytes(b"PK")  # as if killed while writing
        os._exit(9)

    monkeypatch.setattr(pipeline, "write_summary", die)
    reg, target = tmp_path / "r.sqlite", tmp_path / "tong-hop.xlsx"
    with pytest.raises(pipeline.OutputError) as err:
        pipeline.consolidate_inbox(INBOX, load_round(ROUND), target, reg, parallel=True)
    assert str(err.value) == (
        f"Không ghi được tệp tổng hợp {target}: tiến trình ghi tệp dừng đột ngột (mã 9), có thể do thiếu bộ nhớ. "
        "Hãy chạy lại; nếu vẫn lỗi, hãy báo cho người quản trị."
    )
    assert registry_rows(reg) == {"files": [], "findings": [], "accepted_values": [], "runs": []}
    assert not target.exists() and not list(tmp_path.glob(".tmp-*"))
    assert multiprocessing.active_children() == []


def test_a_registry_that_fails_still_waits_for_the_summary(tmp_path, monkeypatch, forks):
    """The registry's error is the one raised; the child has finished writing the summary by then (no orphan
    process writing after the command has returned)."""
    import toolkit.pipeline as pipeline
    from toolkit.registry import Registry, RegistryError

    def broken(self, *args, **kwargs):
        raise RegistryError("sổ hỏng")

    monkeypatch.setattr(Registry, "record", broken)
    target = tmp_path / "tong-hop.xlsx"
    with pytest.raises(RegistryError, match="sổ hỏng"):
        pipeline.consolidate_inbox(INBOX, load_round(ROUND), target, tmp_path / "r.sqlite", parallel=True)
    assert forks == [True]
    assert zipfile.ZipFile(target).testzip() is None
    assert not list(tmp_path.glob(".tmp-*"))


def test_no_fork_while_other_threads_run(tmp_path, monkeypatch):
    """In a process running other threads (the upload server), the summary is written in-process: a lock held by
    another thread at a fork would stay held in the child."""
    import threading

    import toolkit.pipeline as pipeline

    def no_fork(*args, **kwargs):
        raise AssertionError("forked")

    monkeypatch.setattr(pipeline, "_SummaryProcess", no_fork)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not pipeline.can_fork()
        pipeline.consolidate_inbox(INBOX, load_round(ROUND), tmp_path / "s.xlsx", tmp_path / "r.sqlite", parallel=True)
    finally:
        stop.set()
        other.join()
    assert (tmp_path / "s.xlsx").is_file()
    assert pipeline.can_fork()


def test_large_inboxes_fork_small_ones_do_not(tmp_path, monkeypatch, forks):
    import toolkit.pipeline as pipeline

    rnd = load_round(ROUND)
    pipeline.consolidate_inbox(INBOX, rnd, tmp_path / "a.xlsx", tmp_path / "r.sqlite")
    assert forks == []  # 9 files
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_FILES", 9)
    pipeline.consolidate_inbox(INBOX, rnd, tmp_path / "b.xlsx", tmp_path / "r.sqlite")
    assert forks == [True]


def test_no_process_to_be_had_writes_the_summary_here(tmp_path, monkeypatch):
    """When no child can be started (a process limit, memory), the summary is written in-process as for few files."""
    import toolkit.pipeline as pipeline

    def no_process(*args, **kwargs):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(pipeline, "_SummaryProcess", no_process)
    reg = tmp_path / "r.sqlite"
    pipeline.consolidate_inbox(INBOX, load_round(ROUND), tmp_path / "s.xlsx", reg, parallel=True)
    assert zipfile.ZipFile(tmp_path / "s.xlsx").testzip() is None
    assert len(registry_rows(reg)["runs"]) == 1


def test_a_bug_in_the_child_comes_back_with_its_traceback(tmp_path, monkeypatch, forks):
    import toolkit.pipeline as pipeline

    def buggy(cons, path, temp_prefix=".tmp-"):
        return {}["không có"]

    monkeypatch.setattr(pipeline, "write_summary", buggy)
    reg = tmp_path / "r.sqlite"
    with pytest.raises(KeyError) as err:
        pipeline.consolidate_inbox(INBOX, load_round(ROUND), tmp_path / "s.xlsx", reg, parallel=True)
    assert forks == [True]
    (note,) = err.value.__notes__
    assert "in buggy" in note and note.endswith("KeyError: 'không có'")
    assert registry_rows(reg)["runs"] == []


def test_a_commune_booked_twice_is_flagged_once_per_unit(bac_giang_round):
    """The merged schedule flags a commune booked twice on one date or on several dates; a commune is its unit's
    own, so two districts' communes of the same name visited on one date are not one commune booked twice."""
    import dataclasses
    import datetime as dt

    from toolkit.consolidate import _schedule
    from toolkit.read import ScheduleRow, Submission

    rnd = dataclasses.replace(
        bac_giang_round, inspection=dataclasses.replace(bac_giang_round.inspection, one_team=False)
    )

    def sub(code: str, visits: list[tuple[str, dt.date]]) -> Submission:
        rows = [
            ScheduleRow("PL01", "PL01", 13 + i, {"commune": c, "date": d, "session": "Sáng"}, {"commune": f"B{13 + i}"})
            for i, (c, d) in enumerate(visits)
        ]
        return Submission(path=Path(f"{code}.xlsx"), unit_code=code, forms={"PL01": 1}, schedule=rows)

    may = dt.date(2024, 5, 22)
    entries = _schedule(
        rnd,
        [
            sub("219", [("Xã Kiên Thành", may), ("Xã Kiên Thành", dt.date(2024, 5, 24)), ("Xã Kiên Lao", may)]),
            sub("220", [("Xã An Bá", may), ("Xã An Bá", may)]),
            sub("213", [("Xã Tân Lập", may)]),
            sub("215", [("Xã Tân Lập", may)]),  # another district's commune of the same name
        ],
        [],
    )
    said = {(e.unit_code, e.commune, e.date): e.conflicts for e in entries}
    assert said[("219", "Xã Kiên Thành", may)] == ["Xã Kiên Thành được xếp lịch nhiều ngày: 22/05/2024, 24/05/2024"]
    assert said[("219", "Xã Kiên Thành", dt.date(2024, 5, 24))] == said[("219", "Xã Kiên Thành", may)]
    assert said[("219", "Xã Kiên Lao", may)] == []
    assert [e.conflicts for e in entries if e.unit_code == "220"] == [["Xã An Bá được xếp hai lần ngày 22/05/2024"]] * 2
    assert said[("213", "Xã Tân Lập", may)] == said[("215", "Xã Tân Lập", may)] == []
