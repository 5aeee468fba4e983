"""What the server does with an uploaded workbook, without any web framework: check, store, validate, log.

An upload arrives as a staged file (streamed to the server's data folder by the web layer, size already
capped). :meth:`UploadDesk.accept` then

1. checks it like any return (:func:`toolkit.safety.inspect_workbook`: empty, renamed, encrypted, zip and XML
   bombs…); a file that cannot be read is refused with the finding's message and not kept;
2. names it ``<unit code>_<yyyymmdd-hhmmss>_<sha256[:8]>.<ext>`` (server time; the extension from the detected
   format; the client's file name is only ever displayed, never used in a path);
3. reads it and checks it belongs to the unit whose link was used: a file whose metadata (or “Đơn vị báo cáo”
   line) names another unit is kept, but in the inbox's hidden ``.khac-don-vi/`` folder, which consolidation
   never reads, so it cannot replace or count for the other unit;
4. writes the received time to the folder's ``received.yaml`` (rewritten atomically under a lock) and moves
   the file in (atomic rename);
5. validates it (as :func:`toolkit.validate.validate_paths` does: received time from the manifest, so a file
   after the deadline gets ``late-submission``), writes the annotated copy into the data folder and records
   the upload in the ``server_uploads`` table of the registry file.

:class:`RegistrySync` keeps the registry (and so :func:`toolkit.registry.status`) up to date with the whole
inbox after uploads: every file is read once (cached by size and mtime), the inbox is validated as a whole
and recorded with :meth:`toolkit.registry.Registry.record`; concurrent requests share one run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pickle
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..annotate import annotated_name, write_annotated
from ..findings import ERROR, Finding
from ..fsutil import atomic_file
from ..read import Submission, read_submission
from ..registry import Registry, _try_lock, _unlock, flag_large_changes
from ..round import Round, Unit
from ..safety import inspect_workbook
from ..validate import RECEIVED_MANIFEST, apply_received, collect_files, received_times, validate_submissions

log = logging.getLogger("baocao.server")

OTHER_UNIT_DIR = ".khac-don-vi"  # hidden: collect_files (and so consolidation) never reads it
REGISTRY_WAIT = 30  # seconds an upload waits for a consolidation that holds the registry's lock
FORMAT_EXTENSIONS = {"xlsx": "xlsx", "xlsm": "xlsm", "xls": "xls", "ods": "ods"}

UPLOADS_SQL = """
CREATE TABLE IF NOT EXISTS server_uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    round_id TEXT NOT NULL,
    unit_code TEXT NOT NULL,          -- the unit whose link was used
    received TEXT NOT NULL,           -- server time
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'other-unit', 'refused')),
    stored TEXT,                      -- path relative to the inbox; NULL when refused
    sha256 TEXT,
    size INTEGER NOT NULL,
    format TEXT,
    late INTEGER NOT NULL CHECK (late IN (0, 1)),
    valid INTEGER NOT NULL CHECK (valid IN (0, 1)),
    errors INTEGER NOT NULL,
    warnings INTEGER NOT NULL,
    findings TEXT NOT NULL,           -- JSON list of findings (the shape of Finding.to_dict)
    annotated TEXT,                   -- file name in the server's annotated folder
    client_name TEXT                  -- the name the browser sent, for display only
);
CREATE INDEX IF NOT EXISTS server_uploads_by_unit ON server_uploads(round_id, unit_code, id);
"""

OUTCOME_LABELS = {
    "accepted": "Đã nhận",
    "other-unit": "Biểu của đơn vị khác – không tính",
    "refused": "Bị từ chối",
}


def data_dir_for(registry_path: str | Path) -> Path:
    """The server's own folder, beside the registry (never inside the inbox): ``<registry stem>-server``."""
    registry_path = Path(registry_path)
    return registry_path.with_name(registry_path.stem + "-server")


def connect(registry_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(registry_path), timeout=60, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 60000")
    return conn


# ------------------------------------------------------------------------------------------ upload log


@dataclass
class Upload:
    """One row of ``server_uploads``."""

    id: int
    round_id: str
    unit_code: str
    received: dt.datetime
    outcome: str
    stored: str | None
    sha256: str | None
    size: int
    format: str | None
    late: bool
    valid: bool
    errors: int
    warnings: int
    findings: list[Finding] = field(default_factory=list)
    annotated: str | None = None
    client_name: str | None = None

    @classmethod
    def refused(
        cls,
        rnd: Round,
        unit: Unit,
        received: dt.datetime,
        size: int,
        client_name: str | None,
        sha256: str | None = None,
        findings: list[Finding] | None = None,
    ) -> Upload:
        """A refused upload of ``unit`` (one error); what it turns out to be is filled in as it is checked."""
        return cls(
            id=0,
            round_id=rnd.id,
            unit_code=unit.code,
            received=received,
            outcome="refused",
            stored=None,
            sha256=sha256,
            size=size,
            format=None,
            late=received.date() > rnd.deadline,
            valid=False,
            errors=1,
            warnings=0,
            findings=list(findings or []),
            client_name=client_name,
        )

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS[self.outcome]

    @property
    def stored_name(self) -> str | None:
        return Path(self.stored).name if self.stored else None


class UploadLog:
    """The ``server_uploads`` table (plain SQLite transactions: never waits for a long consolidation)."""

    def __init__(self, registry_path: Path) -> None:
        self.registry_path = registry_path
        registry_path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(registry_path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(UPLOADS_SQL)
        finally:
            conn.close()

    def add(self, up: Upload) -> int:
        conn = connect(self.registry_path)
        try:
            cur = conn.execute(
                """
                INSERT INTO server_uploads (round_id, unit_code, received, outcome, stored, sha256, size, format,
                    late, valid, errors, warnings, findings, annotated, client_name)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    up.round_id,
                    up.unit_code,
                    up.received.isoformat(timespec="seconds"),
                    up.outcome,
                    up.stored,
                    up.sha256,
                    up.size,
                    up.format,
                    int(up.late),
                    int(up.valid),
                    up.errors,
                    up.warnings,
                    json.dumps([f.to_dict() for f in up.findings], ensure_ascii=False, default=str),
                    up.annotated,
                    up.client_name,
                ),
            )
            up.id = int(cur.lastrowid)
            return up.id
        finally:
            conn.close()

    def _select(self, where: str, args: tuple) -> list[Upload]:
        conn = connect(self.registry_path)
        try:
            cur = conn.execute(f"SELECT * FROM server_uploads WHERE {where}", args)
            cols = [c[0] for c in cur.description]
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        finally:
            conn.close()
        out = []
        for r in rows:
            findings = [_finding(d) for d in json.loads(r["findings"] or "[]")]
            out.append(
                Upload(
                    id=r["id"],
                    round_id=r["round_id"],
                    unit_code=r["unit_code"],
                    received=dt.datetime.fromisoformat(r["received"]),
                    outcome=r["outcome"],
                    stored=r["stored"],
                    sha256=r["sha256"],
                    size=r["size"],
                    format=r["format"],
                    late=bool(r["late"]),
                    valid=bool(r["valid"]),
                    errors=r["errors"],
                    warnings=r["warnings"],
                    findings=findings,
                    annotated=r["annotated"],
                    client_name=r["client_name"],
                )
            )
        return out

    def for_unit(self, round_id: str, unit_code: str, limit: int = 200) -> list[Upload]:
        """The unit's uploads, newest first."""
        return self._select("round_id = ? AND unit_code = ? ORDER BY id DESC LIMIT ?", (round_id, unit_code, limit))

    def get(self, round_id: str, unit_code: str, upload_id: int) -> Upload | None:
        """One upload, only when it was made through ``unit_code``'s link."""
        rows = self._select("id = ? AND round_id = ? AND unit_code = ?", (upload_id, round_id, unit_code))
        return rows[0] if rows else None

    def count(self, round_id: str) -> int:
        conn = connect(self.registry_path)
        try:
            return conn.execute("SELECT COUNT(*) FROM server_uploads WHERE round_id = ?", (round_id,)).fetchone()[0]
        finally:
            conn.close()


def _finding(d: dict[str, Any]) -> Finding:
    known = {k: d.get(k) for k in ("code", "message", "severity", "form", "sheet", "cell", "indicator", "field")}
    known.update(value=d.get("value"), expected=d.get("expected"), period=d.get("period"), cells=d.get("cells") or [])
    return Finding(**known)


# ------------------------------------------------------------------------------------------ file lock


class FolderLock:
    """A thread lock plus an inter-process file lock (flock / msvcrt), for read-modify-write of a manifest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = threading.Lock()

    def __enter__(self) -> FolderLock:
        self._thread.acquire()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            pause = 0.01
            while not _try_lock(self._fd):
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        except BaseException:
            self._thread.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            _unlock(self._fd)
            os.close(self._fd)
        finally:
            self._thread.release()


# ------------------------------------------------------------------------------------------ the desk


class Refused(Exception):
    """An upload that is not kept; ``finding`` says why (Vietnamese)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@dataclass
class UploadDesk:
    """Accepts uploads into ``inbox`` for ``rnd``; the server's own files go to ``data_dir``."""

    rnd: Round
    inbox: Path
    registry_path: Path
    data_dir: Path
    now: Callable[[], dt.datetime]
    max_upload_bytes: int
    log: UploadLog = field(init=False)
    sync: RegistrySync = field(init=False)

    def __post_init__(self) -> None:
        self.inbox = Path(self.inbox)
        self.data_dir = Path(self.data_dir)
        for folder in (self.inbox, self.data_dir, self.staging_dir, self.annotated_dir):
            folder.mkdir(parents=True, exist_ok=True)
        for stale in self.staging_dir.iterdir():  # left over by a server that stopped mid-upload
            shutil.rmtree(stale, ignore_errors=True)
        self.log = UploadLog(self.registry_path)
        self.sync = RegistrySync(self.rnd, self.inbox, self.registry_path, self.now)
        self._manifest_lock = FolderLock(self.data_dir / "inbox.lock")
        self._reserved: set[str] = set()
        self.validation_lock = self.sync.validation_lock

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"

    @property
    def annotated_dir(self) -> Path:
        return self.data_dir / "annotated"

    def new_staging_file(self) -> Path:
        """An empty private folder for one upload's bytes; the web layer streams into ``<folder>/upload``."""
        return Path(tempfile.mkdtemp(prefix="up-", dir=self.staging_dir)) / "upload"

    def annotated_path(self, up: Upload) -> Path | None:
        if not up.annotated:
            return None
        path = (self.annotated_dir / up.annotated).resolve()
        if path.parent != self.annotated_dir.resolve() or not path.is_file():
            return None
        return path

    # -- the pipeline

    def accept(self, unit: Unit, staged: Path, sha256: str, size: int, client_name: str | None) -> Upload:
        """Check, store, validate and log one upload (see the module docstring). Never raises for a bad file:
        a refused file comes back as an Upload with ``outcome == "refused"``. ``staged`` is consumed."""
        received = self.now().replace(microsecond=0)
        up = Upload.refused(self.rnd, unit, received, size, client_name, sha256=sha256)
        base = f"{unit.code}_{received:%Y%m%d-%H%M%S}_{sha256[:8]}"
        work = staged.parent
        try:
            probe = work / base  # no extension yet: messages must not repeat one the client chose
            os.replace(staged, probe)
            safety = inspect_workbook(probe, max_bytes=max(self.max_upload_bytes, 1), keep_data=True)
            if safety.finding is not None or safety.format not in FORMAT_EXTENSIONS:
                raise Refused(
                    _to_unit(safety.finding)
                    or Finding(
                        "file-unreadable",
                        f"Tệp {base} không phải sổ tính Excel (.xlsx, .xls, .ods). Hãy tải lên tệp biểu mẫu đã điền.",
                    )
                )
            up.format = safety.format
            name = self._reserve(base, FORMAT_EXTENSIONS[safety.format])
            try:
                candidate = work / name
                os.replace(probe, candidate)
                sub = read_submission(candidate, self.rnd, safety)  # the bytes just checked, not read again
                if not sub.readable:
                    raise Refused(
                        _to_unit(sub.errors[0])
                        if sub.errors
                        else Finding(
                            "file-unreadable",
                            f"Không đọc được tệp {name}. Hãy mở tệp bằng Excel, lưu lại dạng .xlsx rồi tải lên lại.",
                        )
                    )
                other = bool(sub.unit_code) and sub.unit_code != unit.code
                folder = self.inbox / OTHER_UNIT_DIR if other else self.inbox
                final = self._store(candidate, folder, name, received)
            finally:
                self._release(name)
            sub.path = final
            if not other:
                self.sync.remember(final, sub)
            sub.modified = received
            try:
                with self.validation_lock:
                    validate_submissions([sub], self.rnd)
            except Exception as exc:  # noqa: BLE001 - the file is kept; the province's run will check it again
                log.exception("validation of %s failed", final.name)
                sub.findings.append(
                    Finding(
                        "file-unreadable",
                        f"Máy chủ chưa kiểm tra hết được tệp {final.name} (lỗi {type(exc).__name__}). Tệp đã được lưu; "
                        "hãy thử gửi lại sau ít phút hoặc báo cho Sở.",
                    )
                )
            if other:
                _mark_other_unit(sub, unit, self.rnd)
            up.outcome = "other-unit" if other else "accepted"
            up.stored = final.relative_to(self.inbox).as_posix()
            up.valid = sub.valid and not other
            up.errors, up.warnings = len(sub.errors), len(sub.warnings)
            up.findings = list(sub.findings)
            try:
                up.annotated = write_annotated(sub, self.annotated_dir).name
            except Exception:  # noqa: BLE001 - the upload is kept even if its annotated copy cannot be made
                log.exception("annotated copy of %s failed", final.name)
        except Refused as exc:
            up.findings = [exc.finding]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.log.add(up)
        return up

    def _reserve(self, base: str, ext: str) -> str:
        """A file name free in the inbox and in its other-unit folder, held until :meth:`_release`."""
        with self._manifest_lock:
            n = 1
            while True:
                name = f"{base}.{ext}" if n == 1 else f"{base}-{n}.{ext}"
                taken = (
                    name in self._reserved
                    or (self.inbox / name).exists()
                    or (self.inbox / OTHER_UNIT_DIR / name).exists()
                )
                if not taken:
                    self._reserved.add(name)
                    return name
                n += 1

    def _release(self, name: str) -> None:
        with self._manifest_lock:
            self._reserved.discard(name)

    def _store(self, src: Path, folder: Path, name: str, received: dt.datetime) -> Path:
        """Log the received time in the folder's manifest, then move the file in (both atomic, under lock)."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        with self._manifest_lock:
            add_received(folder, name, received, self.data_dir)
            try:
                os.replace(src, target)
            except OSError:  # another file system: copy beside the target (hidden name), then rename
                with atomic_file(target) as tmp:
                    shutil.copyfile(src, tmp)
        return target


# The safety gate speaks to the province's staff ("ask the unit to resend"); on the unit's page, to the unit.
_UNIT_WORDING = (
    ("Hãy xin đơn vị gửi lại tệp", "Hãy gửi lại tệp"),
    ("xin đơn vị gửi lại tệp", "hãy lưu lại tệp bằng Excel rồi gửi lại"),
)


def _to_unit(finding: Finding | None) -> Finding | None:
    if finding is None:
        return None
    for old, new in _UNIT_WORDING:
        finding.message = finding.message.replace(old, new)
    return finding


def _mark_other_unit(sub: Submission, unit: Unit, rnd: Round) -> None:
    """Replace the reader's generic unit-mismatch findings by one that says what happened to this upload."""
    other = rnd.unit(sub.unit_code) if sub.unit_code else None
    whose = f"{other.name} (mã {other.code})" if other else f"đơn vị có mã {sub.unit_code}"
    sub.findings = [f for f in sub.findings if f.code != "unit-mismatch"]
    sub.findings.insert(
        0,
        Finding(
            "unit-mismatch",
            f"Tệp này là biểu mẫu của {whose}, không phải của {unit.name} (mã {unit.code}). Tệp được lưu lại nhưng "
            f"không được tính cho đơn vị nào. Hãy điền số liệu vào biểu mẫu Sở gửi cho {unit.name} rồi gửi lại.",
            value=sub.unit_code,
            expected=unit.code,
        ),
    )


def add_received(folder: Path, name: str, when: dt.datetime, backup_dir: Path) -> None:
    """Add ``name: when`` to ``folder/received.yaml``, rewriting it atomically (call under the inbox lock).

    A manifest that cannot be read is copied to ``backup_dir`` and started afresh (never left half-written)."""
    manifest = folder / RECEIVED_MANIFEST
    data: dict = {}
    if manifest.exists():
        text = manifest.read_text(encoding="utf-8", errors="replace")
        try:
            loaded = yaml.safe_load(text) or {}
            if not isinstance(loaded, dict):
                raise ValueError("not a mapping")
            data = {str(k): v for k, v in loaded.items()}
        except Exception:  # noqa: BLE001
            backup = backup_dir / f"received-hong-{dt.datetime.now():%Y%m%d-%H%M%S}.yaml"
            backup.write_text(text, encoding="utf-8")
            log.warning("%s could not be read; kept as %s and started afresh", manifest, backup)
    data[name] = when
    with atomic_file(manifest, suffix=".yaml", prefix=".tmp-received-") as tmp:
        tmp.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=True), encoding="utf-8")


# ------------------------------------------------------------------------------------------ registry sync


class RegistrySync:
    """Records the whole inbox in the registry after uploads; concurrent callers share one run.

    Each file is read once (the read result is cached by path, size and mtime); every run validates all files
    together (duplicates, late files) and records the report in one registry transaction.
    """

    def __init__(self, rnd: Round, inbox: Path, registry_path: Path, now: Callable[[], dt.datetime]) -> None:
        self.rnd, self.inbox, self.registry_path, self.now = rnd, inbox, registry_path, now
        self.validation_lock = threading.Lock()  # pandera validation, one at a time
        self._run_lock = threading.Lock()
        self._state = threading.Lock()
        self._requested = 0
        self._done = 0
        self.attempted = False  # a run was started (successful or not)
        self._cache: dict[str, tuple[tuple[int, int], bytes]] = {}

    @property
    def done(self) -> int:
        return self._done

    def request(self) -> int:
        """Ask for a run that starts after this call; returns the ticket to :meth:`wait` for."""
        with self._state:
            self._requested += 1
            return self._requested

    def wait(self, ticket: int) -> None:
        """Return once a run that started after ``ticket`` was requested has recorded the registry."""
        with self._run_lock:
            if self._done >= ticket:
                return
            with self._state:
                target = self._requested
            self.attempted = True
            self._run()
            self._done = target

    def remember(self, path: Path, sub: Submission) -> None:
        """Cache a submission just read (before validation) so the next run does not read the file again."""
        try:
            st = path.stat()
        except OSError:
            return
        with self._state:
            self._cache[str(path)] = ((st.st_size, st.st_mtime_ns), pickle.dumps(sub))

    def _read(self, path: Path) -> Submission:
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns)
        with self._state:
            hit = self._cache.get(str(path))
        if hit and hit[0] == key:
            return pickle.loads(hit[1])
        sub = read_submission(path, self.rnd)
        with self._state:
            self._cache[str(path)] = (key, pickle.dumps(sub))
        return sub

    def _run(self) -> None:
        files = collect_files([self.inbox])
        problems: dict[Path, str] = {}
        received = received_times(files, problems)
        subs = []
        for path in files:
            try:
                sub = self._read(path)
            except OSError:  # gone meanwhile
                continue
            subs.append(sub)
        apply_received(subs, received, problems)
        with self._state:
            keep = {str(p) for p in files}
            for stale in [k for k in self._cache if k not in keep]:
                del self._cache[stale]
        with self.validation_lock:
            report = validate_submissions(subs, self.rnd)
        with Registry.open(self.registry_path, timeout=REGISTRY_WAIT) as reg:
            flag_large_changes(report, self.rnd, reg)
            reg.record(report, self.rnd, now=self.now())


def severity_label(f: Finding) -> str:
    return "Lỗi" if f.severity == ERROR else "Cảnh báo"


__all__ = [
    "OTHER_UNIT_DIR",
    "Refused",
    "RegistrySync",
    "Upload",
    "UploadDesk",
    "UploadLog",
    "add_received",
    "annotated_name",
    "data_dir_for",
]
