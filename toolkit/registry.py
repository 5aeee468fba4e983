"""The submission registry: an embedded SQLite database of every file seen and the figures accepted.

By default it lives beside the inbox (``<inbox>.baocao.sqlite``, never inside it, so it is not read as a
return). It records, per round:

- every file seen, by content (sha256): path, unit, forms, size, received time, first and last seen, status
  (valid | invalid | unreadable | superseded), finding counts, the file that superseded it, whether it was in
  the inbox at the round's latest run (``present``), and its findings;
- the values accepted: the figures of the *counted* submissions (valid, not superseded), for the forms each
  unit owes, exactly what the consolidation sums; replaced as a whole at every run of the round;
- a run log.

Re-recording the same inbox changes nothing but ``files.last_seen`` and the run log. A resubmission (a later
file of the same unit) supersedes the earlier one and both stay in the history, also when the earlier file has
been taken out of the inbox. Two consolidations never write at once: :meth:`Registry.open` takes an exclusive
lock on ``<registry>.lock`` (``fcntl.flock``; ``msvcrt.locking`` on Windows) and each run is one transaction.
SQLite runs in WAL mode, so ``baocao status`` can read (``readonly=True``, no lock) while a run writes.
WAL needs the registry on a local disk: keep it off network shares.

When the registry holds the previous round's figures for a unit, :func:`flag_large_changes` turns a change of
more than 50% into a ``large-change`` warning (call it before :meth:`Registry.record`, so the warnings are
recorded too). :func:`status` answers "who is in" from the registry alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .clock import vietnam_now
from .findings import ERROR, WARNING, Finding
from .forms import available_forms
from .read import Submission, _fmt
from .round import Round
from .validate import Report

SCHEMA_VERSION = 2  # 2: no index of accepted values by file (it tripled the cost of recording a round)
REGISTRY_SUFFIX = ".baocao.sqlite"
LARGE_CHANGE_THRESHOLD = 0.5
# Small counts swing by large percentages for no reason (3 cases one year, 7 the next): when the old and the
# new figure are both below this, no large-change warning is raised.
LARGE_CHANGE_MIN = 10.0

FILE_STATUSES = ("valid", "invalid", "unreadable", "superseded")
STATES = ("ok", "late", "invalid", "missing", "not-owed")
STATE_LABELS = {
    "ok": "Đã nộp đúng hạn, hợp lệ",
    "late": "Nộp muộn",
    "invalid": "Có lỗi, chưa được tổng hợp",
    "missing": "Chưa nộp",
    "not-owed": "Không phải nộp",
}

FigureKey = tuple[str, str, str, int]  # (form, indicator, field, period position)

# Page cache of a recording connection, in KiB (SQLite's default is 2 MiB). A round's accepted values are
# replaced as a whole in one transaction: with the default cache, the B-trees of a district round (some 100,000
# figures, 30 MB) no longer fit and every insert goes back to the disk; the cache only grows as pages are used.
RECORD_CACHE_KIB = 65536

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    province_code TEXT NOT NULL,
    province_name TEXT NOT NULL,
    level TEXT NOT NULL,
    deadline TEXT NOT NULL,
    previous_round TEXT,
    periods TEXT NOT NULL,            -- JSON [[id, label], ...] in round order
    units TEXT NOT NULL               -- JSON [{"code", "name", "forms"}, ...]
);
CREATE TABLE IF NOT EXISTS files (
    round_id TEXT NOT NULL REFERENCES rounds(id),
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,               -- absolute path where it was last seen
    name TEXT NOT NULL,
    unit_code TEXT,
    unit_name TEXT,
    forms TEXT NOT NULL,              -- JSON sorted list of form ids
    size INTEGER NOT NULL,
    received TEXT,                    -- ISO time received (received.yaml or file time)
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    present INTEGER NOT NULL CHECK (present IN (0, 1)),   -- in the inbox at the round's latest run
    status TEXT NOT NULL CHECK (status IN ('valid', 'invalid', 'unreadable', 'superseded')),
    valid INTEGER NOT NULL CHECK (valid IN (0, 1)),       -- its own validity (kept when superseded)
    errors INTEGER NOT NULL,
    warnings INTEGER NOT NULL,
    superseded_by_sha TEXT,
    PRIMARY KEY (round_id, sha256),
    FOREIGN KEY (round_id, superseded_by_sha) REFERENCES files(round_id, sha256) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX IF NOT EXISTS files_by_unit ON files(round_id, unit_code);
CREATE TABLE IF NOT EXISTS findings (
    round_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    seq INTEGER NOT NULL,
    code TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('error', 'warning')),
    form TEXT,
    sheet TEXT,
    cell TEXT,
    indicator TEXT,
    field TEXT,
    period TEXT,
    value,
    expected,
    message TEXT NOT NULL,
    PRIMARY KEY (round_id, sha256, seq),
    FOREIGN KEY (round_id, sha256) REFERENCES files(round_id, sha256) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accepted_values (
    round_id TEXT NOT NULL REFERENCES rounds(id),
    unit_code TEXT NOT NULL,
    form TEXT NOT NULL,
    indicator TEXT NOT NULL,
    field TEXT NOT NULL,
    period TEXT NOT NULL,
    period_index INTEGER NOT NULL,    -- position of the period in the round (0: first)
    value REAL NOT NULL,
    sha256 TEXT NOT NULL,
    sheet TEXT NOT NULL,
    cell TEXT NOT NULL,
    PRIMARY KEY (round_id, unit_code, form, indicator, field, period),
    FOREIGN KEY (round_id, sha256) REFERENCES files(round_id, sha256)
) WITHOUT ROWID;
DROP INDEX IF EXISTS accepted_values_by_file;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    round_id TEXT NOT NULL REFERENCES rounds(id),
    at TEXT NOT NULL,                 -- the run's time (files.last_seen)
    finished TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    version TEXT NOT NULL,
    files INTEGER NOT NULL,
    new_files INTEGER NOT NULL,
    superseded INTEGER NOT NULL,
    counted INTEGER NOT NULL,
    value_count INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    warnings INTEGER NOT NULL
);
"""


class RegistryError(Exception):
    """The registry cannot be used (message in Vietnamese)."""


class RegistryBusy(RegistryError):
    """Another run holds the registry's lock for longer than the timeout."""


class RegistryMissing(RegistryError):
    """Opened read-only, but there is no registry (no consolidation has run yet)."""


def default_registry_path(inbox: str | Path) -> Path:
    """``<inbox parent>/<inbox name>.baocao.sqlite``: beside the inbox, never inside it."""
    inbox = Path(inbox).resolve()
    return inbox.parent / f"{inbox.name}{REGISTRY_SUFFIX}"


# ------------------------------------------------------------------------------------------------ lock


class _FileLock:
    """An exclusive inter-process lock on a file (flock; msvcrt on Windows). Held until :meth:`release`."""

    def __init__(self, path: Path, registry: Path) -> None:
        self.path = path
        self.registry = registry
        self.fd: int | None = None

    def acquire(self, timeout: float) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + max(0.0, timeout)
        pause = 0.02
        while True:
            if _try_lock(fd):
                break
            if time.monotonic() >= deadline:
                holder = _read_holder(self.path)
                os.close(fd)
                who = f" (đang dùng: {holder})" if holder else ""
                waited = f"{timeout:g}".replace(".", ",")
                raise RegistryBusy(
                    f"Sổ theo dõi {self.registry} đang được một lần tổng hợp khác sử dụng{who}; "
                    f"đã chờ {waited} giây. Hãy đợi lần tổng hợp đó chạy xong rồi chạy lại."
                )
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.1)
        self.fd = fd
        try:  # who holds it, for the message a waiting run shows
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            info = f"tiến trình {os.getpid()} trên máy {socket.gethostname()}, từ {dt.datetime.now():%H:%M:%S %d/%m/%Y}"
            os.write(fd, info.encode())
        except OSError:
            pass

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            _unlock(fd)
        finally:
            os.close(fd)


try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _read_holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()[:200]
    except OSError:
        return ""


# ------------------------------------------------------------------------------------------ records


@dataclass
class RunRecord:
    """What one :meth:`Registry.record` did."""

    run_id: int
    round_id: str
    at: dt.datetime
    files: int  # distinct files (by content) seen in this run
    new_files: list[str]  # sha256 of the files seen for the first time
    superseded: list[str]  # sha256 of every superseded file of the round (in the inbox or not)
    counted: list[str]  # unit codes whose figures were accepted
    values: int  # figures accepted
    errors: int
    warnings: int


@dataclass
class FileRecord:
    """One row of ``files``."""

    round_id: str
    sha256: str
    path: str
    name: str
    unit_code: str | None
    unit_name: str | None
    forms: list[str]
    size: int
    received: dt.datetime | None
    first_seen: dt.datetime
    last_seen: dt.datetime
    present: bool
    status: str
    valid: bool
    errors: int
    warnings: int
    superseded_by_sha: str | None


@dataclass
class StatusRow:
    unit_code: str
    unit_name: str
    forms_owed: tuple[str, ...]
    file: str | None  # path of the file that counts (the unit's current file at the latest run)
    sha256: str | None
    received: dt.datetime | None
    on_time: bool | None
    valid: bool | None
    errors: int
    warnings: int
    state: str  # missing | invalid | late | ok | not-owed
    files_seen: int = 0  # every file of the unit in the round's history (superseded ones included)
    history: list[FileRecord] = field(default_factory=list)

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit_code": self.unit_code,
            "unit_name": self.unit_name,
            "forms_owed": list(self.forms_owed),
            "state": self.state,
            "state_label": self.state_label,
            "file": self.file,
            "sha256": self.sha256,
            "received": self.received.isoformat() if self.received else None,
            "on_time": self.on_time,
            "valid": self.valid,
            "errors": self.errors,
            "warnings": self.warnings,
            "files_seen": self.files_seen,
            "history": [_file_dict(f) for f in self.history],
        }


def _file_dict(f: FileRecord) -> dict[str, Any]:
    return {
        "path": f.path,
        "sha256": f.sha256,
        "unit_code": f.unit_code,
        "forms": f.forms,
        "received": f.received.isoformat() if f.received else None,
        "first_seen": f.first_seen.isoformat(),
        "last_seen": f.last_seen.isoformat(),
        "present": f.present,
        "status": f.status,
        "errors": f.errors,
        "warnings": f.warnings,
        "superseded_by_sha": f.superseded_by_sha,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _file_key(s: Submission) -> str:
    """The file's sha256; when the file could not even be hashed, a stable stand-in from its path."""
    if s.sha256:
        return s.sha256
    try:
        return hashlib.sha256(Path(s.path).read_bytes()).hexdigest()
    except OSError:
        return "path:" + hashlib.sha256(str(Path(s.path).resolve()).encode()).hexdigest()


# ------------------------------------------------------------------------------------------ registry


class Registry:
    """The submission registry. Use :meth:`open` as a context manager::

    with Registry.open(default_registry_path(inbox)) as reg:
        flag_large_changes(report, rnd, reg)
        reg.record(report, rnd)
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, lock: _FileLock | None, readonly: bool) -> None:
        self.path = path
        self.conn = conn
        self.readonly = readonly
        self._lock = lock

    # -- opening and closing

    @classmethod
    def open(cls, path: str | Path, timeout: float = 60, readonly: bool = False) -> Registry:
        """Open (and create) the registry, holding its exclusive lock until :meth:`close`.

        A second process waits up to ``timeout`` seconds for the lock, then raises :class:`RegistryBusy`.
        ``readonly=True`` (for ``baocao status``) takes no lock and never writes: SQLite's WAL gives it a
        consistent snapshot even while a run records; it raises :class:`RegistryMissing` when there is no
        registry yet.
        """
        path = Path(path)
        if readonly:
            if not path.is_file():
                raise RegistryMissing(
                    f"Chưa có sổ theo dõi {path}: chưa chạy tổng hợp lần nào. Hãy chạy “baocao consolidate” trước."
                )
            try:
                conn = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout, isolation_level=None
                )
                conn.execute("PRAGMA foreign_keys = ON")
                reg = cls(path, conn, None, True)
                version = reg._stored_version()
            except sqlite3.DatabaseError as exc:
                raise RegistryError(f"Không mở được sổ theo dõi {path}: {exc}. Tệp có thể bị hỏng.") from exc
            if version is None:
                conn.close()
                raise RegistryMissing(f"Sổ theo dõi {path} chưa có dữ liệu. Hãy chạy “baocao consolidate” trước.")
            reg._check_version(version)
            return reg

        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _FileLock(path.with_name(path.name + ".lock"), path)
        lock.acquire(timeout)
        try:
            conn = sqlite3.connect(str(path), timeout=max(timeout, 1), isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA foreign_keys = ON")
                reg = cls(path, conn, lock, False)
                reg._migrate()
            except BaseException:
                conn.close()
                raise
        except sqlite3.DatabaseError as exc:
            lock.release()
            raise RegistryError(f"Không mở được sổ theo dõi {path}: {exc}. Tệp có thể bị hỏng.") from exc
        except BaseException:
            lock.release()
            raise
        return reg

    def close(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.rollback()
            self.conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stored_version(self) -> int | None:
        has = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not has:
            return None
        row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return row[0] if row else None

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            self.close()
            raise RegistryError(
                f"Sổ theo dõi {self.path} được tạo bởi phiên bản baocao mới hơn (lược đồ {version}, phiên bản này "
                f"hiểu đến {SCHEMA_VERSION}). Hãy cập nhật baocao."
            )

    def _migrate(self) -> None:
        version = self._stored_version()
        if version is not None:
            self._check_version(version)
            if version == SCHEMA_VERSION:
                return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute(
                "INSERT OR IGNORE INTO schema_version (version, applied) VALUES (?, ?)",
                (SCHEMA_VERSION, dt.datetime.now().isoformat(timespec="seconds")),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    # -- writing

    def record(
        self,
        report: Report,
        rnd: Round,
        now: dt.datetime | None = None,
        before_commit: Callable[[], object] | None = None,
    ) -> RunRecord:
        """Record one run of ``rnd`` (one transaction): its files, their findings and the accepted values.

        - every file seen is upserted by (round, sha256); ``first_seen`` is kept from the first run;
        - a file superseded by a later file of the same unit (both in the inbox) gets status ``superseded``;
          a file of the round no longer in the inbox is superseded by its unit's current file, when there is
          one; either way it stays in the history;
        - the round's accepted values are replaced by those of the counted submissions (valid, not
          superseded; forms the unit owes), as the consolidation sums them.

        Recording the same report again leaves ``files``, ``findings`` and ``accepted_values`` identical but
        for ``files.last_seen``; the run log grows by one row.

        ``before_commit`` is called inside the transaction, just before it commits; if it raises, nothing of the
        run is recorded and its exception propagates (the summary written alongside failed).
        """
        if self.readonly:
            raise RegistryError(f"Sổ theo dõi {self.path} đang mở chỉ để đọc.")
        now = now or vietnam_now()  # first/last seen stand in for receipt times: the same clock
        at = now.isoformat(timespec="seconds")
        conn = self.conn
        period_index = {p.id: i for i, p in enumerate(rnd.periods)}
        units = {}  # code -> unit, the first of a code as Round.unit finds it (a linear search)
        for u in rnd.units:
            units.setdefault(u.code, u)

        # One row per distinct content: a file copied twice into the inbox is one file (its current copy).
        by_key: dict[str, Submission] = {}
        for s in report.submissions:
            key = _file_key(s)
            if key not in by_key or (by_key[key].superseded_by is not None and s.superseded_by is None):
                by_key[key] = s
        path_key = {str(s.path): _file_key(s) for s in report.submissions}

        conn.execute(f"PRAGMA cache_size = -{RECORD_CACHE_KIB}")
        # Foreign keys are checked once before the commit (below) instead of on every row: looking up the file of
        # each of a round's hundred thousand accepted values doubled the cost of recording it.
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            conn.execute("PRAGMA foreign_keys = ON")
            raise
        try:
            self._upsert_round(rnd)
            known = {
                sha: first
                for sha, first in conn.execute("SELECT sha256, first_seen FROM files WHERE round_id = ?", (rnd.id,))
            }
            conn.execute("UPDATE files SET present = 0 WHERE round_id = ?", (rnd.id,))
            new_files: list[str] = []
            for key, s in by_key.items():
                winner = path_key.get(s.superseded_by) if s.superseded_by else None
                if winner == key:  # the same bytes under two names: this copy counts
                    winner = None
                if winner:
                    status = "superseded"
                elif not s.readable:
                    status = "unreadable"
                else:
                    status = "valid" if s.valid else "invalid"
                if key not in known:
                    new_files.append(key)
                conn.execute(
                    """
                    INSERT INTO files (round_id, sha256, path, name, unit_code, unit_name, forms, size, received,
                        first_seen, last_seen, present, status, valid, errors, warnings, superseded_by_sha)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
                    ON CONFLICT (round_id, sha256) DO UPDATE SET
                        path = excluded.path, name = excluded.name, unit_code = excluded.unit_code,
                        unit_name = excluded.unit_name, forms = excluded.forms, size = excluded.size,
                        received = excluded.received, last_seen = excluded.last_seen, present = 1,
                        status = excluded.status, valid = excluded.valid, errors = excluded.errors,
                        warnings = excluded.warnings, superseded_by_sha = excluded.superseded_by_sha
                    """,
                    (
                        rnd.id,
                        key,
                        str(Path(s.path).resolve()),
                        s.name,
                        s.unit_code,
                        s.unit_name,
                        json.dumps(sorted(s.forms)),
                        s.size,
                        _iso(s.modified),
                        at,
                        at,
                        status,
                        int(s.valid),
                        len(s.errors),
                        len(s.warnings),
                        winner,
                    ),
                )
                conn.execute("DELETE FROM findings WHERE round_id = ? AND sha256 = ?", (rnd.id, key))
                conn.executemany(
                    """
                    INSERT INTO findings (round_id, sha256, seq, code, severity, form, sheet, cell, indicator, field,
                        period, value, expected, message)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    [
                        (
                            rnd.id,
                            key,
                            i,
                            d["code"],
                            d["severity"],
                            d["form"],
                            d["sheet"],
                            d["cell"],
                            d["indicator"],
                            d["field"],
                            d["period"],
                            d["value"],
                            d["expected"],
                            d["message"],
                        )
                        for i, d in enumerate(f.to_dict() for f in s.findings)
                    ],
                )

            # Files of the round that left the inbox: superseded by their unit's current file, if any.
            current: dict[str, str] = {}
            for key, s in by_key.items():
                if s.unit_code and s.readable and s.superseded_by is None:
                    current.setdefault(s.unit_code, key)
            for sha, unit_code in conn.execute(
                "SELECT sha256, unit_code FROM files WHERE round_id = ? AND present = 0 AND unit_code IS NOT NULL",
                (rnd.id,),
            ).fetchall():
                if unit_code in current and current[unit_code] != sha:
                    conn.execute(
                        "UPDATE files SET status = 'superseded', superseded_by_sha = ? "
                        "WHERE round_id = ? AND sha256 = ?",
                        (current[unit_code], rnd.id, sha),
                    )

            # The accepted values of the round: exactly the counted submissions' figures.
            rows, counted_units = [], []
            for s in report.counted():
                unit = units.get(str(s.unit_code)) if s.unit_code else None
                if unit is None:
                    continue
                counted_units.append(unit.code)
                key = _file_key(s)
                for v in s.values:
                    if v.value is None or v.form not in unit.forms or v.period not in period_index:
                        continue
                    rows.append(
                        (
                            rnd.id,
                            unit.code,
                            v.form,
                            v.indicator,
                            v.field,
                            v.period,
                            period_index[v.period],
                            float(v.value),
                            key,
                            v.sheet,
                            v.cell,
                        )
                    )
            if not {row[8] for row in rows} <= by_key.keys():  # every figure's file was recorded above
                raise RegistryError(
                    f"Lỗi nội bộ của baocao: một số liệu được chấp nhận không gắn với tệp nào trong sổ theo dõi "
                    f"{self.path}; lần tổng hợp này không được ghi vào sổ. Hãy báo lỗi này cho người quản trị."
                )
            self._replace_accepted_values(rnd.id, rows)

            superseded = [
                sha
                for (sha,) in conn.execute(
                    "SELECT sha256 FROM files WHERE round_id = ? AND status = 'superseded' ORDER BY sha256",
                    (rnd.id,),
                )
            ]
            errors = sum(len(s.errors) for s in by_key.values())
            warnings = sum(len(s.warnings) for s in by_key.values())
            cur = conn.execute(
                """
                INSERT INTO runs (round_id, at, finished, pid, host, version, files, new_files, superseded, counted,
                    value_count, errors, warnings)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    rnd.id,
                    at,
                    dt.datetime.now().isoformat(timespec="seconds"),
                    os.getpid(),
                    socket.gethostname(),
                    __version__,
                    len(by_key),
                    len(new_files),
                    len(superseded),
                    len(counted_units),
                    len(rows),
                    errors,
                    warnings,
                ),
            )
            run_id = int(cur.lastrowid)
            for table in ("files", "findings", "runs"):  # the small tables; accepted values are checked above
                broken = conn.execute(f"PRAGMA foreign_key_check({table})").fetchall()
                if broken:
                    raise RegistryError(
                        f"Lỗi nội bộ của baocao: bảng {table} của sổ theo dõi {self.path} tham chiếu tới dòng không "
                        "tồn tại; lần tổng hợp này không được ghi vào sổ. Hãy báo lỗi này cho người quản trị."
                    )
            if before_commit is not None:
                before_commit()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.execute("PRAGMA foreign_keys = ON")
        return RunRecord(
            run_id=run_id,
            round_id=rnd.id,
            at=dt.datetime.fromisoformat(at),
            files=len(by_key),
            new_files=new_files,
            superseded=superseded,
            counted=counted_units,
            values=len(rows),
            errors=errors,
            warnings=warnings,
        )

    def _upsert_round(self, rnd: Round) -> None:
        self.conn.execute(
            """
            INSERT INTO rounds (id, title, province_code, province_name, level, deadline, previous_round, periods,
                units)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET
                title = excluded.title, province_code = excluded.province_code,
                province_name = excluded.province_name, level = excluded.level, deadline = excluded.deadline,
                previous_round = excluded.previous_round, periods = excluded.periods, units = excluded.units
            """,
            (
                rnd.id,
                rnd.title,
                rnd.province_code,
                rnd.province_name,
                rnd.level,
                rnd.deadline.isoformat(),
                rnd.previous_round,
                json.dumps([[p.id, p.label] for p in rnd.periods], ensure_ascii=False),
                json.dumps(
                    [{"code": u.code, "name": u.name, "forms": list(u.forms)} for u in rnd.units], ensure_ascii=False
                ),
            ),
        )

    def _replace_accepted_values(self, round_id: str, rows: list[tuple]) -> None:
        """Make the round's accepted values exactly ``rows``, writing only what changed: a re-run at the deadline
        (the same inbox, or a few more files) rewrites a handful of the round's hundred thousand figures, not all
        of them. New rows go in in key order (appending to the table's B-tree is the cheap case)."""
        conn = self.conn
        # one row per key, the last one (as INSERT OR REPLACE would keep); what is still here after the stored rows
        # went by is new or changed. The stored rows are compared as they are read, never held: a commune round's
        # half a million figures would take some 400 MB as a dictionary.
        pending = {row[:6]: row for row in rows}
        gone = []
        for stored in conn.execute(
            "SELECT round_id, unit_code, form, indicator, field, period, period_index, value, sha256, sheet, cell "
            "FROM accepted_values WHERE round_id = ?",
            (round_id,),
        ):
            key = stored[:6]
            row = pending.get(key)
            if row is None:
                gone.append(key)
            elif row[6:] == stored[6:]:
                del pending[key]
        changed = list(pending.values())
        del pending
        if gone:
            conn.executemany(
                "DELETE FROM accepted_values WHERE round_id = ? AND unit_code = ? AND form = ? AND indicator = ? "
                "AND field = ? AND period = ?",
                gone,
            )
        changed.sort()
        conn.executemany(
            """
            INSERT OR REPLACE INTO accepted_values (round_id, unit_code, form, indicator, field, period,
                period_index, value, sha256, sheet, cell)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            changed,
        )

    # -- reading

    def previous_figures(self, round_id: str, unit_code: str) -> dict[FigureKey, float]:
        """The figures accepted for ``unit_code`` in round ``round_id``: (form, indicator, field, period
        position) -> value. Empty when the registry holds none."""
        return {
            (form, indicator, fld, int(index)): float(value)
            for form, indicator, fld, index, value in self.conn.execute(
                "SELECT form, indicator, field, period_index, value FROM accepted_values "
                "WHERE round_id = ? AND unit_code = ?",
                (round_id, str(unit_code)),
            )
        }

    def files(self, round_id: str, *, present_only: bool = False) -> list[FileRecord]:
        """The round's files, oldest received first (history included unless ``present_only``)."""
        sql = "SELECT * FROM files WHERE round_id = ?" + (" AND present = 1" if present_only else "")
        sql += " ORDER BY COALESCE(received, first_seen), name, sha256"
        cur = self.conn.execute(sql, (round_id,))
        cols = [c[0] for c in cur.description]
        out = []
        for row in cur.fetchall():
            r = dict(zip(cols, row))
            out.append(
                FileRecord(
                    round_id=r["round_id"],
                    sha256=r["sha256"],
                    path=r["path"],
                    name=r["name"],
                    unit_code=r["unit_code"],
                    unit_name=r["unit_name"],
                    forms=json.loads(r["forms"]),
                    size=r["size"],
                    received=_time(r["received"]),
                    first_seen=_time(r["first_seen"]),
                    last_seen=_time(r["last_seen"]),
                    present=bool(r["present"]),
                    status=r["status"],
                    valid=bool(r["valid"]),
                    errors=r["errors"],
                    warnings=r["warnings"],
                    superseded_by_sha=r["superseded_by_sha"],
                )
            )
        return out

    def findings(self, round_id: str, sha256: str) -> list[Finding]:
        cur = self.conn.execute(
            "SELECT code, message, severity, form, sheet, cell, indicator, field, value, expected, period "
            "FROM findings WHERE round_id = ? AND sha256 = ? ORDER BY seq",
            (round_id, sha256),
        )
        return [Finding(*row) for row in cur.fetchall()]

    def last_run(self, round_id: str) -> dict[str, Any] | None:
        """The round's latest run log row, or None when the round was never recorded."""
        cur = self.conn.execute("SELECT * FROM runs WHERE round_id = ? ORDER BY id DESC LIMIT 1", (round_id,))
        row = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], row)) if row else None

    def runs(self, round_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs" + (" WHERE round_id = ?" if round_id else "") + " ORDER BY id"
        cur = self.conn.execute(sql, (round_id,) if round_id else ())
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


# ------------------------------------------------------------------------------------------ large changes


def _finding_order(f: Finding) -> tuple:
    digits = "".join(ch for ch in f.cell or "" if ch.isdigit())
    return (f.severity != ERROR, f.form or "", (int(digits or 0), f.cell or ""), f.code)


def flag_large_changes(
    report: Report, rnd: Round, registry: Registry, threshold: float = LARGE_CHANGE_THRESHOLD
) -> list[Finding]:
    """Warn where a counted submission's figure moved by more than ``threshold`` since ``rnd.previous_round``.

    For each counted submission whose unit has figures of the previous round in the registry, every figure is
    compared with the previous round's figure of the same form, indicator and field at the same period
    *position* (the first period with the first period, …). A ``large-change`` warning is added to the
    submission's findings when ``|new − old| / old > threshold``, except when the old figure is not positive
    (no percentage) or when both figures are below ``LARGE_CHANGE_MIN`` (small counts, noise). Returns the new
    findings. Calling it again replaces its earlier warnings instead of adding more.
    """
    prev_id = rnd.previous_round
    if not prev_id or prev_id == rnd.id:
        return []
    forms = available_forms()
    position = {p.id: i for i, p in enumerate(rnd.periods)}
    label = {p.id: p.label for p in rnd.periods}
    out: list[Finding] = []
    for s in report.counted():
        if not s.unit_code:
            continue
        old_figures = registry.previous_figures(prev_id, s.unit_code)
        if not old_figures:
            continue
        s.findings = [f for f in s.findings if f.code != "large-change"]
        added = []
        for v in s.values:
            if v.value is None or v.period not in position or v.form not in forms:
                continue
            old = old_figures.get((v.form, v.indicator, v.field, position[v.period]))
            new = float(v.value)
            if old is None or old <= 0 or (abs(new) < LARGE_CHANGE_MIN and old < LARGE_CHANGE_MIN):
                continue
            change = (new - old) / old
            if abs(change) <= threshold:
                continue
            form = forms[v.form]
            pct = abs(change) * 100
            pct_text = f"{pct:.0f}" if round(pct) > threshold * 100 else f"{pct:.1f}".replace(".", ",")
            what = f"“{form.indicator(v.indicator).label}” – {form.field_labels.get(v.field, v.field)}"
            added.append(
                Finding(
                    "large-change",
                    f"Ô {v.cell} (trang {v.sheet}): {what}, {label[v.period]} là {_fmt(new)}, "
                    f"{'tăng' if change > 0 else 'giảm'} {pct_text}% so với đợt trước ({prev_id}: {_fmt(old)}). "
                    "Hãy kiểm tra lại; nếu số liệu đúng, hãy ghi rõ lý do khi gửi báo cáo.",
                    severity=WARNING,
                    form=v.form,
                    sheet=v.sheet,
                    cell=v.cell,
                    indicator=v.indicator,
                    field=v.field,
                    period=v.period,
                    value=new,
                    expected=old,
                )
            )
        s.findings.extend(added)
        s.findings.sort(key=_finding_order)
        out.extend(added)
    return out


# ------------------------------------------------------------------------------------------ status


def status(rnd: Round, registry: Registry) -> list[StatusRow]:
    """Per unit of ``rnd``, in round order, from the registry alone: the file that counts (the unit's current,
    not superseded file at the round's latest run), received on time or late, valid or not, or missing."""
    files = registry.files(rnd.id)
    rows = []
    for unit in rnd.units:
        mine = [f for f in files if f.unit_code == unit.code]
        current = [f for f in mine if f.present and f.status != "superseded"]
        sub = current[-1] if current else None
        received = sub.received if sub else None
        on_time = None if received is None else received.date() <= rnd.deadline
        valid = None if sub is None else sub.valid
        if not unit.forms:
            state = "not-owed"
        elif sub is None:
            state = "missing"
        elif not valid:
            state = "invalid"
        else:
            state = "ok" if on_time is not False else "late"
        rows.append(
            StatusRow(
                unit_code=unit.code,
                unit_name=unit.name,
                forms_owed=unit.forms,
                file=sub.path if sub else None,
                sha256=sub.sha256 if sub else None,
                received=received,
                on_time=on_time,
                valid=valid,
                errors=sub.errors if sub else 0,
                warnings=sub.warnings if sub else 0,
                state=state,
                files_seen=len(mine),
                history=mine,
            )
        )
    return rows


def status_json(rnd: Round, registry: Registry) -> dict[str, Any]:
    """The ``baocao status --json`` document: one entry per unit, the files no unit could be matched to, and
    counts per state."""
    rows = status(rnd, registry)
    known = {u.code for u in rnd.units}
    stray = [f for f in registry.files(rnd.id, present_only=True) if f.unit_code not in known]
    last = registry.last_run(rnd.id)
    counts = {state: sum(1 for r in rows if r.state == state) for state in STATES}
    return {
        "round": rnd.id,
        "deadline": rnd.deadline.isoformat(),
        "registry": str(registry.path),
        "last_run": last["at"] if last else None,
        "units": [r.to_dict() for r in rows],
        "unidentified": [_file_dict(f) for f in stray],
        "summary": {"units": len(rows), "owing": sum(1 for r in rows if r.forms_owed), **counts},
    }


__all__ = [
    "LARGE_CHANGE_MIN",
    "LARGE_CHANGE_THRESHOLD",
    "FileRecord",
    "Registry",
    "RegistryBusy",
    "RegistryError",
    "RegistryMissing",
    "RunRecord",
    "StatusRow",
    "default_registry_path",
    "flag_large_changes",
    "status",
    "status_json",
]
