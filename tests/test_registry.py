"""The submission registry (SQLite beside the inbox): files seen, figures accepted, status, large changes.

Returns are the shipped Bắc Giang templates filled with openpyxl (the registry cares about what was read, not
which program typed it). The inbox of the current round has: clean returns received on time, one received
after the deadline (217), one with an error (219), one missing unit (222), a unit that owes nothing (223) and a
file that is not a workbook. Some figures are planted so that the previous round's figures (same seeds, a few
cells changed) give large-change warnings at known cells only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import multiprocessing
import shutil
import sqlite3
import time
from pathlib import Path

import openpyxl
import pytest
import yaml
from support.returns import edits_for, type_into

from toolkit.findings import WARNING
from toolkit.forms import get_form
from toolkit.registry import (
    LARGE_CHANGE_MIN,
    Registry,
    RegistryBusy,
    RegistryError,
    RegistryMissing,
    default_registry_path,
    flag_large_changes,
    status,
    status_json,
)
from toolkit.render import write_templates
from toolkit.round import Period, Round
from toolkit.validate import Report, collect_files, validate_paths

ON_TIME = dt.datetime(2024, 5, 8, 9, 30)
LATE = dt.datetime(2024, 5, 14, 15, 0)
PREV_ID = "bac-giang-2023-tebdg"
MISSING_UNIT, LATE_UNIT, INVALID_UNIT, NOT_OWED_UNIT = "222", "217", "219", "223"
JUNK = "ghi-chu-gui-kem.xlsx"

Override = tuple[str, str, str, int]  # (form, indicator, field, period position) -> value typed

# Figures typed in the current round's returns, and in the previous round's, where they differ from the seeded
# figures (indicators in no cross rule, or parents raised, so every return stays valid).
CURRENT: dict[str, dict[Override, float]] = {
    "213": {
        ("PL03", "BG22", "total", 0): 62,  # was 30: +107% -> warning
        ("PL03", "BG23", "total", 1): 20,  # was 50: −60% -> warning (second period with second period)
        ("PL03", "BG21", "total", 0): 14,  # was 10: +40% -> none
        ("PL03", "BG21", "total", 1): 15,  # was 10: exactly +50% -> none (more than 50% only)
        ("PL03", "TE05", "total", 0): 8,  # was 3: +167% but both below 10 -> none
        ("PL03", "TE12", "total", 0): 12,  # was 4: +200%, the new one is not small -> warning
        ("PL03", "BG20", "total", 0): 25,  # was 0: no percentage -> none
        ("PL03", "BG26A", "total", 0): 5000.5,  # was 1500 (money): +233% -> warning
    },
    "215": {("PL03", "TE05", "total", 1): 30},  # was 12: +150% -> warning
    "218": {("PL02", "TE12", "total", 0): 40},  # was 100: −60% -> warning (PL02)
    INVALID_UNIT: {
        ("PL03", "TE05", "total", 0): -3,  # an error: the return is not counted, so no large-change either
        ("PL03", "BG22", "total", 0): 200,  # was 20
    },
}
PREVIOUS: dict[str, dict[Override, float]] = {
    "213": {
        ("PL03", "BG22", "total", 0): 30,
        ("PL03", "BG23", "total", 1): 50,
        ("PL03", "BG21", "total", 0): 10,
        ("PL03", "BG21", "total", 1): 10,
        ("PL03", "TE05", "total", 0): 3,
        ("PL03", "TE12", "total", 0): 4,
        ("PL03", "BG20", "total", 0): 0,
        ("PL03", "BG26A", "total", 0): 1500,
    },
    "215": {("PL03", "TE05", "total", 1): 12},
    "218": {("PL02", "TE12", "total", 0): 100},
    INVALID_UNIT: {("PL03", "TE05", "total", 0): 5, ("PL03", "BG22", "total", 0): 20},
}
FLAGGED = {  # unit -> (form, indicator, field, period position) expected to get a large-change warning
    "213": {
        ("PL03", "BG22", "total", 0),
        ("PL03", "BG23", "total", 1),
        ("PL03", "TE12", "total", 0),
        ("PL03", "BG26A", "total", 0),
    },
    "215": {("PL03", "TE05", "total", 1)},
    "218": {("PL02", "TE12", "total", 0)},
}


# ------------------------------------------------------------------------------------------ helpers


def cell_of(rnd: Round, key: Override) -> str:
    form_id, indicator, fld, pos = key
    periods = tuple(p.id for p in rnd.periods)
    return get_form(form_id).layout(periods).cell(indicator, fld, periods[pos])


def fill(path: Path, rnd: Round, unit_code: str, overrides: dict[Override, float] | None = None) -> None:
    """Type the unit's seeded figures (and schedule) into its template, then the overrides."""
    unit = rnd.unit(unit_code)
    wb = openpyxl.load_workbook(path)
    for form_id in unit.forms:
        type_into(wb, edits_for(get_form(form_id), rnd, unit, seed=int(unit.code)))
    for key, value in (overrides or {}).items():
        wb[get_form(key[0]).sheet][cell_of(rnd, key)] = value
    wb.save(path)


def make_inbox(
    rnd: Round, folder: Path, overrides: dict[str, dict[Override, float]], skip: set[str] = frozenset()
) -> Path:
    units = [u for u in rnd.units_owing() if u.code not in skip]
    paths = write_templates(rnd, folder, units=units)
    received = {}
    for unit, path in zip(units, paths):
        fill(path, rnd, unit.code, overrides.get(unit.code))
        received[path.name] = LATE if unit.code == LATE_UNIT else ON_TIME
    write_received(folder, received)
    return folder


def write_received(folder: Path, received: dict[str, dt.datetime]) -> None:
    (folder / "received.yaml").write_text(yaml.safe_dump(received, allow_unicode=True), encoding="utf-8")


def add_received(folder: Path, name: str, when: dt.datetime) -> None:
    data = yaml.safe_load((folder / "received.yaml").read_text(encoding="utf-8"))
    data[name] = when
    write_received(folder, data)


def snapshot(path: Path) -> dict[str, list[tuple]]:
    """Every registry table but the run log, without ``files.last_seen``."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for table in ("rounds", "files", "findings", "accepted_values"):
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "last_seen"]
            out[table] = sorted(conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(), key=repr)
        return out
    finally:
        conn.close()


def query(path: Path, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def expected_values(report: Report, rnd: Round) -> set[tuple]:
    out = set()
    for s in report.counted():
        unit = rnd.unit(s.unit_code)
        for v in s.values:
            if v.value is not None and v.form in unit.forms:
                out.add((s.unit_code, v.form, v.indicator, v.field, v.period, v.value, s.sha256, v.cell))
    return out


def accepted(path: Path, round_id: str) -> set[tuple]:
    return set(
        query(
            path,
            "SELECT unit_code, form, indicator, field, period, value, sha256, cell FROM accepted_values "
            "WHERE round_id = ?",
            round_id,
        )
    )


def by_unit(report: Report, code: str):
    return next(s for s in report.submissions if s.unit_code == code and s.superseded_by is None)


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def inbox(bac_giang_round: Round, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The current round's inbox (tests copy it before changing anything)."""
    folder = make_inbox(bac_giang_round, tmp_path_factory.mktemp("reg") / "inbox", CURRENT, skip={MISSING_UNIT})
    (folder / JUNK).write_bytes(b"Danh sach gui kem - khong phai bang tinh")
    add_received(folder, JUNK, ON_TIME)
    return folder


@pytest.fixture(scope="module")
def report(inbox: Path, bac_giang_round: Round) -> Report:
    return validate_paths([inbox], bac_giang_round)


@pytest.fixture(scope="module")
def previous_round(bac_giang_round: Round) -> Round:
    return dataclasses.replace(
        bac_giang_round,
        id=PREV_ID,
        periods=(Period("Y2022", "Năm 2022"), Period("Q1_2023", "Quý I/2023")),
        deadline=dt.date(2023, 5, 10),
    )


@pytest.fixture(scope="module")
def previous_report(previous_round: Round, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """Last year's returns: the same seeded figures (so the same numbers), with the PREVIOUS cells typed."""
    folder = make_inbox(previous_round, tmp_path_factory.mktemp("reg-prev") / "inbox", PREVIOUS)
    rep = validate_paths([folder], previous_round)
    assert [s.name for s in rep.submissions if not s.valid] == []
    return rep


def resubmit(inbox: Path, rnd: Round, folder: Path, when: dt.datetime) -> tuple[Path, Path]:
    """A copy of the inbox where Yên Thế (215) sent a corrected file later; returns (old, new)."""
    shutil.copytree(inbox, folder)
    old = folder / f"{rnd.unit('215').file_stem}.xlsx"
    new = folder / f"{rnd.unit('215').file_stem}-sua-lai.xlsx"
    shutil.copy(old, new)
    wb = openpyxl.load_workbook(new)
    wb["PL03"][cell_of(rnd, ("PL03", "TE12", "total", 0))] = 77
    wb.save(new)
    add_received(folder, new.name, when)
    return old, new


# ------------------------------------------------------------------------------------------ the path


def test_default_registry_path_is_beside_the_inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = tmp_path / "hop-thu"
    inbox.mkdir()
    assert default_registry_path(inbox) == tmp_path / "hop-thu.baocao.sqlite"
    monkeypatch.chdir(tmp_path)
    assert default_registry_path(Path("hop-thu/")) == tmp_path / "hop-thu.baocao.sqlite"
    with Registry.open(default_registry_path(inbox)):
        pass
    assert (tmp_path / "hop-thu.baocao.sqlite").is_file()
    assert list(inbox.iterdir()) == []  # nothing is written into the inbox, so nothing is read as a return
    assert collect_files([inbox]) == []


# ------------------------------------------------------------------------------------------ recording


def test_record_files_findings_and_accepted_values(report: Report, bac_giang_round: Round, tmp_path: Path) -> None:
    rnd = bac_giang_round
    path = tmp_path / "registry.sqlite"
    now = dt.datetime(2024, 5, 11, 8, 0)
    with Registry.open(path) as reg:
        run = reg.record(report, rnd, now=now)

    assert run.round_id == rnd.id and run.files == len(report.submissions) == 9
    assert sorted(run.new_files) == sorted(s.sha256 for s in report.submissions)
    assert run.superseded == []
    counted = {s.unit_code for s in report.counted()}
    assert set(run.counted) == counted == {u.code for u in rnd.units_owing()} - {MISSING_UNIT, INVALID_UNIT}

    rows = {
        r[0]: r[1:]
        for r in query(
            path,
            "SELECT sha256, path, unit_code, forms, size, received, first_seen, last_seen, present, status, "
            "errors, warnings, superseded_by_sha FROM files",
        )
    }
    assert set(rows) == {s.sha256 for s in report.submissions}
    for s in report.submissions:
        path_, unit, forms, size, received, first, last, present, state, errors, warnings, sup = rows[s.sha256]
        assert path_ == str(s.path.resolve()) and unit == s.unit_code and json.loads(forms) == sorted(s.forms)
        assert size == s.size == s.path.stat().st_size
        assert received == ON_TIME.isoformat() if s.unit_code != LATE_UNIT else received == LATE.isoformat()
        assert first == last == now.isoformat() and present == 1 and sup is None
        assert (errors, warnings) == (len(s.errors), len(s.warnings))
        expected_state = "unreadable" if s.name == JUNK else "invalid" if s.unit_code == INVALID_UNIT else "valid"
        assert state == expected_state, s.name
        stored = query(
            path,
            "SELECT code, severity, form, sheet, cell, indicator, field, period, value, expected, message "
            "FROM findings WHERE sha256 = ? ORDER BY seq",
            s.sha256,
        )
        want = [f.to_dict() for f in s.findings]
        assert stored == [
            tuple(d[k] for k in ("code", "severity", "form", "sheet", "cell", "indicator", "field", "period"))
            + (d["value"], d["expected"], d["message"])
            for d in want
        ]
    assert rows[by_unit(report, INVALID_UNIT).sha256][8] == "invalid"

    # the accepted values are exactly the counted submissions' figures, each with its file and cell
    values = accepted(path, rnd.id)
    assert values == expected_values(report, rnd) and len(values) == run.values
    assert {v[0] for v in values} == counted
    positions = dict(query(path, "SELECT DISTINCT period, period_index FROM accepted_values"))
    assert positions == {p.id: i for i, p in enumerate(rnd.periods)}

    assert query(path, "PRAGMA foreign_key_check") == []
    assert query(path, "PRAGMA journal_mode") == [("wal",)]
    assert query(path, "SELECT version FROM schema_version") == [(2,)]
    log = query(path, "SELECT round_id, at, files, new_files, counted, value_count, errors, warnings FROM runs")
    assert log == [(rnd.id, now.isoformat(), 9, 9, len(counted), run.values, report.errors, report.warnings)]


def test_recording_the_same_inbox_again_changes_only_last_seen(
    inbox: Path, report: Report, bac_giang_round: Round, tmp_path: Path
) -> None:
    rnd = bac_giang_round
    path = tmp_path / "registry.sqlite"
    t1, t2, t3 = (dt.datetime(2024, 5, 11, h, 0) for h in (8, 9, 10))
    with Registry.open(path) as reg:
        reg.record(report, rnd, now=t1)
    before = snapshot(path)
    with Registry.open(path) as reg:
        again = reg.record(report, rnd, now=t2)
    assert again.new_files == []
    assert snapshot(path) == before
    with Registry.open(path) as reg:  # a fresh run over the same inbox (read and validated again)
        reg.record(validate_paths([inbox], rnd), rnd, now=t3)
    assert snapshot(path) == before
    assert set(query(path, "SELECT first_seen, last_seen FROM files")) == {(t1.isoformat(), t3.isoformat())}
    assert [r[0] for r in query(path, "SELECT at FROM runs ORDER BY id")] == [t.isoformat() for t in (t1, t2, t3)]


def test_a_unit_whose_file_leaves_the_inbox_has_no_accepted_values_left(
    inbox: Path, report: Report, bac_giang_round: Round, tmp_path: Path
) -> None:
    """Accepted values are exactly the counted returns' figures at every run: a unit's file taken out of the inbox
    takes its figures out of the registry; the file itself stays in the history."""
    rnd = bac_giang_round
    path = tmp_path / "registry.sqlite"
    with Registry.open(path) as reg:
        reg.record(report, rnd, now=dt.datetime(2024, 5, 9, 8, 0))
    gone = by_unit(report, "216")
    assert query(path, "SELECT COUNT(*) FROM accepted_values WHERE unit_code = '216'")[0][0] > 0
    folder = tmp_path / "inbox"
    shutil.copytree(inbox, folder)
    (folder / gone.name).unlink()
    second = validate_paths([folder], rnd)
    with Registry.open(path) as reg:
        reg.record(second, rnd, now=dt.datetime(2024, 5, 9, 9, 0))
    assert accepted(path, rnd.id) == expected_values(second, rnd)
    assert query(path, "SELECT COUNT(*) FROM accepted_values WHERE unit_code = '216'") == [(0,)]
    assert query(path, "SELECT present FROM files WHERE sha256 = ?", gone.sha256) == [(0,)]


def test_a_resubmission_supersedes_the_earlier_file_and_both_stay(
    inbox: Path, report: Report, bac_giang_round: Round, tmp_path: Path
) -> None:
    rnd = bac_giang_round
    path = tmp_path / "registry.sqlite"
    with Registry.open(path) as reg:
        reg.record(report, rnd, now=dt.datetime(2024, 5, 9, 8, 0))

    folder = tmp_path / "inbox"
    old, new = resubmit(inbox, rnd, folder, LATE)  # the correction arrives after the deadline
    second = validate_paths([folder], rnd)
    old_sha = next(s.sha256 for s in second.submissions if s.name == old.name)
    new_sha = next(s.sha256 for s in second.submissions if s.name == new.name)
    with Registry.open(path) as reg:
        run = reg.record(second, rnd, now=dt.datetime(2024, 5, 14, 16, 0))
    assert run.new_files == [new_sha] and run.superseded == [old_sha]

    files = {r[0]: r[1:] for r in query(path, "SELECT sha256, status, superseded_by_sha, present FROM files")}
    assert files[old_sha] == ("superseded", new_sha, 1)
    assert files[new_sha] == ("valid", None, 1)
    te12 = cell_of(rnd, ("PL03", "TE12", "total", 0))
    assert query(
        path,
        "SELECT value, sha256, cell FROM accepted_values WHERE unit_code = '215' AND indicator = 'TE12' "
        "AND field = 'total' AND period_index = 0",
    ) == [(77.0, new_sha, te12)]
    assert accepted(path, rnd.id) == expected_values(second, rnd)
    assert not query(path, "SELECT 1 FROM accepted_values WHERE sha256 = ?", old_sha)

    # the earlier file is taken out of the inbox: it stays in the history, still superseded
    old.unlink()
    third = validate_paths([folder], rnd)
    with Registry.open(path) as reg:
        reg.record(third, rnd, now=dt.datetime(2024, 5, 15, 8, 0))
        rows = {r.unit_code: r for r in status(rnd, reg)}
        history = {f.sha256: f for f in reg.files(rnd.id)}
    files = {r[0]: r[1:] for r in query(path, "SELECT sha256, status, superseded_by_sha, present FROM files")}
    assert files[old_sha] == ("superseded", new_sha, 0)
    assert files[new_sha] == ("valid", None, 1)
    assert history[old_sha].first_seen == dt.datetime(2024, 5, 9, 8, 0)
    assert history[old_sha].last_seen == dt.datetime(2024, 5, 14, 16, 0)
    row = rows["215"]
    assert row.sha256 == new_sha and row.file == str(new.resolve()) and row.files_seen == 2
    assert (row.state, row.on_time, row.received) == ("late", False, LATE)

    # Tân Yên (216) corrects its return and the file is replaced in the inbox under the same name: the file
    # never seen beside its correction is superseded all the same, and stays in the history
    replaced = folder / f"{rnd.unit('216').file_stem}.xlsx"
    first_sha = next(s.sha256 for s in third.submissions if s.path == replaced)
    wb = openpyxl.load_workbook(replaced)
    wb["PL03"][cell_of(rnd, ("PL03", "BG22", "total", 0))] = 55
    wb.save(replaced)
    fourth = validate_paths([folder], rnd)
    corrected_sha = next(s.sha256 for s in fourth.submissions if s.path == replaced)
    with Registry.open(path) as reg:
        run = reg.record(fourth, rnd, now=dt.datetime(2024, 5, 15, 9, 0))
        rows = {r.unit_code: r for r in status(rnd, reg)}
    assert run.new_files == [corrected_sha] and set(run.superseded) == {old_sha, first_sha}
    files = {r[0]: r[1:] for r in query(path, "SELECT sha256, status, superseded_by_sha, present FROM files")}
    assert files[first_sha] == ("superseded", corrected_sha, 0)
    assert files[corrected_sha] == ("valid", None, 1)
    assert (rows["216"].sha256, rows["216"].files_seen, rows["216"].state) == (corrected_sha, 2, "ok")
    assert accepted(path, rnd.id) == expected_values(fourth, rnd)
    assert query(path, "PRAGMA foreign_key_check") == []


# ------------------------------------------------------------------------------------------ status


def test_status_from_the_registry(report: Report, bac_giang_round: Round, tmp_path: Path) -> None:
    rnd = bac_giang_round
    path = tmp_path / "registry.sqlite"
    with pytest.raises(RegistryMissing, match="Chưa có sổ theo dõi"):
        Registry.open(path, readonly=True)
    with Registry.open(path) as reg:
        assert {r.state for r in status(rnd, reg)} == {"missing", "not-owed"}  # nothing recorded yet
        assert status_json(rnd, reg)["last_run"] is None
        reg.record(report, rnd, now=dt.datetime(2024, 5, 11, 8, 0))

        # a reader needs no lock: it reads while a run holds the registry
        with Registry.open(path, readonly=True, timeout=1) as ro:
            rows = status(rnd, ro)
            doc = status_json(rnd, ro)
    states = {r.unit_code: r.state for r in rows}
    assert states == {
        "213": "ok",
        "215": "ok",
        "216": "ok",
        LATE_UNIT: "late",
        "218": "ok",
        INVALID_UNIT: "invalid",
        "220": "ok",
        "221": "ok",
        MISSING_UNIT: "missing",
        NOT_OWED_UNIT: "not-owed",
    }
    row = {r.unit_code: r for r in rows}
    invalid = by_unit(report, INVALID_UNIT)
    assert (row[INVALID_UNIT].valid, row[INVALID_UNIT].errors) == (False, len(invalid.errors)) and invalid.errors
    assert row[LATE_UNIT].on_time is False and row[LATE_UNIT].received == LATE
    assert row["213"].forms_owed == ("PL01", "PL03") and row["213"].file == str(by_unit(report, "213").path.resolve())
    assert row[MISSING_UNIT].file is None and row[MISSING_UNIT].files_seen == 0

    doc = json.loads(json.dumps(doc))
    assert doc["round"] == rnd.id and doc["last_run"] == "2024-05-11T08:00:00"
    assert [u["unit_code"] for u in doc["units"]] == [u.code for u in rnd.units]
    assert doc["summary"] == {"units": 10, "owing": 9, "ok": 6, "late": 1, "invalid": 1, "missing": 1, "not-owed": 1}
    assert [f["path"].endswith(JUNK) and f["status"] for f in doc["unidentified"]] == ["unreadable"]
    assert doc["units"][0]["state_label"] == "Đã nộp đúng hạn, hợp lệ"


# ------------------------------------------------------------------------------------------ the lock


def _hold(path: str, held, release) -> None:
    with Registry.open(path):
        held.set()
        release.wait(30)


def test_a_busy_registry_waits_then_raises(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    ctx = multiprocessing.get_context("fork")
    held, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(path), held, release))
    holder.start()
    try:
        assert held.wait(30)
        start = time.monotonic()
        with pytest.raises(RegistryBusy) as exc:
            Registry.open(path, timeout=0.5)
        assert 0.5 <= time.monotonic() - start < 10
        message = str(exc.value)
        assert "đang được một lần tổng hợp khác sử dụng" in message and f"tiến trình {holder.pid}" in message
        assert "0,5 giây" in message
    finally:
        release.set()
        holder.join(30)
    assert holder.exitcode == 0
    with Registry.open(path, timeout=5):  # free again
        pass


def _record_loop(path: str, report: Report, rnd: Round, times: int, go) -> None:
    go.wait(30)
    for _ in range(times):
        with Registry.open(path, timeout=60) as reg:
            reg.record(report, rnd)
        time.sleep(0.5)  # let the other process, waiting for the lock, take its turn


def test_two_processes_recording_at_once_never_corrupt_it(
    inbox: Path, report: Report, bac_giang_round: Round, tmp_path: Path
) -> None:
    rnd = bac_giang_round
    path = tmp_path / "registry.sqlite"
    resubmit(inbox, rnd, tmp_path / "other", ON_TIME + dt.timedelta(hours=1))
    other = validate_paths([tmp_path / "other"], rnd)
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    times = 4
    workers = [ctx.Process(target=_record_loop, args=(str(path), rep, rnd, times, go)) for rep in (report, other)]
    for w in workers:
        w.start()
    go.set()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]

    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    assert query(path, "PRAGMA foreign_key_check") == []
    runs = query(path, "SELECT pid FROM runs ORDER BY id")
    assert sorted(runs) == sorted([(w.pid,) for w in workers for _ in range(times)])
    assert sum(a != b for a, b in zip(runs, runs[1:])) >= 2  # the runs really took turns
    # every run was one transaction: the registry holds exactly what the last run recorded
    last = report if runs[-1][0] == workers[0].pid else other
    assert accepted(path, rnd.id) == expected_values(last, rnd)
    present = {r[0] for r in query(path, "SELECT path FROM files WHERE present = 1")}
    assert present == {str(s.path.resolve()) for s in last.submissions}


# ------------------------------------------------------------------------------------------ large changes


def test_large_changes_against_the_previous_round(
    inbox: Path, previous_report: Report, previous_round: Round, bac_giang_round: Round, tmp_path: Path
) -> None:
    path = tmp_path / "registry.sqlite"
    rnd = dataclasses.replace(bac_giang_round, previous_round=PREV_ID)
    report = validate_paths([inbox], rnd)  # a fresh report: flagging adds findings to it
    with Registry.open(path) as reg:
        assert flag_large_changes(report, rnd, reg) == []  # the registry holds nothing of last round yet
        reg.record(previous_report, previous_round)
        assert reg.previous_figures(PREV_ID, "213")[("PL03", "BG22", "total", 0)] == 30
        assert reg.previous_figures(PREV_ID, "213")[("PL03", "BG23", "total", 1)] == 50
        assert reg.previous_figures(PREV_ID, MISSING_UNIT)  # last year it did report
        assert reg.previous_figures(rnd.id, "213") == {}
        assert flag_large_changes(report, bac_giang_round, reg) == []  # no previous round named

        valid_before = {s.sha256: s.valid for s in report.submissions}
        found = flag_large_changes(report, rnd, reg)
        assert flag_large_changes(report, rnd, reg) == found  # again: replaced, not added twice
        run = reg.record(report, rnd)

    flagged: dict[str, set] = {}
    for s in report.submissions:
        for f in s.findings:
            if f.code == "large-change":
                key = next(k for k in CURRENT[s.unit_code] if cell_of(rnd, k) == f.cell)
                flagged.setdefault(s.unit_code, set()).add(key)
                assert f.severity == WARNING and (f.form, f.indicator, f.field) == key[:3]
                assert f.period == rnd.periods[key[3]].id
                assert (f.value, f.expected) == (CURRENT[s.unit_code][key], PREVIOUS[s.unit_code][key])
    assert flagged == FLAGGED
    assert len(found) == sum(len(v) for v in FLAGGED.values())
    assert {s.sha256: s.valid for s in report.submissions} == valid_before  # warnings only

    sub213 = by_unit(report, "213")
    bg22 = next(f for f in sub213.findings if f.code == "large-change" and f.indicator == "BG22")
    assert bg22.message == (
        f"Ô {cell_of(rnd, ('PL03', 'BG22', 'total', 0))} (trang PL03): “{get_form('PL03').indicator('BG22').label}”"
        f" – Tổng số, Năm 2023 là 62, tăng 107% so với đợt trước ({PREV_ID}: 30). "
        "Hãy kiểm tra lại; nếu số liệu đúng, hãy ghi rõ lý do khi gửi báo cáo."
    )
    bg23 = next(f for f in sub213.findings if f.code == "large-change" and f.indicator == "BG23")
    assert "Quý I/2024 là 20, giảm 60% so với đợt trước" in bg23.message and f"({PREV_ID}: 50)" in bg23.message
    money = next(f for f in sub213.findings if f.code == "large-change" and f.indicator == "BG26A")
    assert "là 5.000,5, tăng 233%" in money.message and ": 1.500)" in money.message
    assert LARGE_CHANGE_MIN == 10  # the documented noise floor the TE05 case relies on

    # the warnings are recorded with the file
    stored = query(path, "SELECT sha256, cell FROM findings WHERE round_id = ? AND code = 'large-change'", rnd.id)
    assert sorted(stored) == sorted(
        (s.sha256, f.cell) for s in report.submissions for f in s.findings if f.code == "large-change"
    )
    warnings = dict(query(path, "SELECT sha256, warnings FROM files WHERE round_id = ?", rnd.id))
    assert warnings[sub213.sha256] == len(sub213.warnings) >= 4
    assert run.warnings == report.warnings
    # last round's figures are untouched by this round's run
    assert accepted(path, PREV_ID) == expected_values(previous_report, previous_round)


def test_a_broken_or_newer_registry_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"khong phai co so du lieu " * 100)
    for readonly in (False, True):
        with pytest.raises(RegistryError, match="Không mở được sổ theo dõi"):
            Registry.open(broken, timeout=1, readonly=readonly)

    newer = tmp_path / "newer.sqlite"
    with Registry.open(newer):
        pass
    query_conn = sqlite3.connect(newer)
    with query_conn:
        query_conn.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00')")
    query_conn.close()
    for _ in range(2):  # the second try fails the same way, not with RegistryBusy: a failed open frees the lock
        for readonly in (False, True):
            with pytest.raises(RegistryError, match="phiên bản baocao mới hơn") as exc:
                Registry.open(newer, timeout=0.2, readonly=readonly)
            assert not isinstance(exc.value, RegistryBusy)


def test_a_version_1_registry_is_migrated_and_keeps_its_figures(
    report: Report, bac_giang_round: Round, tmp_path: Path
) -> None:
    path = tmp_path / "v1.sqlite"
    with Registry.open(path) as reg:
        reg.record(report, bac_giang_round)
        assert reg.conn.execute("PRAGMA foreign_keys").fetchone() == (1,)  # back on after recording
    values = query(path, "SELECT * FROM accepted_values ORDER BY unit_code, form, indicator, field, period")
    assert values
    conn = sqlite3.connect(path)  # as version 1 left it: the index of accepted values by file
    with conn:
        conn.execute("CREATE INDEX accepted_values_by_file ON accepted_values(round_id, sha256)")
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00')")
    conn.close()
    with Registry.open(path):
        pass
    assert query(path, "SELECT MAX(version) FROM schema_version") == [(2,)]
    assert query(path, "SELECT name FROM sqlite_master WHERE name = 'accepted_values_by_file'") == []
    assert query(path, "SELECT * FROM accepted_values ORDER BY unit_code, form, indicator, field, period") == values
