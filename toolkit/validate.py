"""Submissions -> findings: pandera schemas over all returns of a run at once, mapped back to cells."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors

from .clock import to_vietnam
from .findings import ERROR, WARNING, Finding
from .forms import available_forms
from .read import Submission, Value, _fmt, read_submission
from .round import Round
from .rules import rules_for
from .schemas import column_key, indicator_schema, input_cells, schedule_schema
from .yamlio import ConfigError, load_yaml

SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}
RECEIVED_MANIFEST = "received.yaml"


@dataclass
class Report:
    round: Round
    submissions: list[Submission] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(len(s.errors) for s in self.submissions)

    @property
    def warnings(self) -> int:
        return sum(len(s.warnings) for s in self.submissions)

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def counted(self) -> list[Submission]:
        """Submissions whose figures count: valid and not superseded by a later file of the same unit."""
        return [s for s in self.submissions if s.valid and s.superseded_by is None]

    def summary(self) -> dict[str, Any]:
        by_code: dict[str, int] = {}
        for s in self.submissions:
            for f in s.findings:
                by_code[f.code] = by_code.get(f.code, 0) + 1
        return {
            "round": self.round.id,
            "files": len(self.submissions),
            "valid": sum(1 for s in self.submissions if s.valid),
            "invalid": sum(1 for s in self.submissions if not s.valid),
            "errors": self.errors,
            "warnings": self.warnings,
            "by_code": dict(sorted(by_code.items())),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [
                {
                    "path": str(s.path),
                    "sha256": s.sha256,
                    "unit_code": s.unit_code,
                    "unit_name": s.unit_name,
                    "forms": sorted(s.forms),
                    "valid": s.valid,
                    "superseded_by": s.superseded_by,
                    "received": s.modified.isoformat() if s.modified else None,
                    "findings": [f.to_dict() for f in s.findings],
                }
                for s in self.submissions
            ],
            "summary": self.summary(),
        }


def collect_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly, and every file under named folders (hidden files and Office lock files skipped)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                rel = child.relative_to(p)
                if not child.is_file() or any(part.startswith(".") for part in rel.parts):
                    continue
                if (
                    child.name.startswith("~$")
                    or child.name == RECEIVED_MANIFEST
                    or child.name.lower() in ("thumbs.db", "desktop.ini")  # Windows' own files in every folder
                    or child.suffix in (".sqlite", ".db", ".lock", ".sqlite-wal", ".sqlite-shm", ".sqlite-journal")
                ):
                    continue
                out.append(child)
        else:
            out.append(p)
    seen, unique = set(), []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


_DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T,]+(\d{1,2})[:h](\d{2})(?::(\d{2}))?)?$")
_YMD = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def parse_received(value: Any) -> dt.datetime | None:
    """A receipt time as logged in ``received.yaml``: a YAML date or date-time (with or without a time zone), or
    text such as ``2024-05-08 8:26``, ``08/05/2024 08:26`` or ``08/05/2024``; None when it is none of these.
    A date alone is taken as noon of that day."""
    if isinstance(value, dt.datetime):
        return to_vietnam(value)  # a time zone is read as Vietnam's wall-clock time
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(12))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if "T" in text or "+" in text or text.endswith("Z"):
        try:
            return parse_received(
                dt.datetime.fromisoformat(text.removesuffix("Z") + ("+00:00" if text.endswith("Z") else ""))
            )
        except ValueError:
            pass
    m = _DMY.match(text)
    parts = (m.group(3), m.group(2), m.group(1)) if m else None
    if m is None:
        m = _YMD.match(text)
        parts = (m.group(1), m.group(2), m.group(3)) if m else None
    if m is None or parts is None:
        return None
    hour, minute, second = m.group(4), m.group(5), m.group(6)
    try:
        day = dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
        if hour is None:
            return dt.datetime.combine(day, dt.time(12))
        return dt.datetime.combine(day, dt.time(int(hour), int(minute), int(second or 0)))
    except ValueError:
        return None


def received_times(paths: list[Path], problems: dict[Path, str] | None = None) -> dict[Path, dt.datetime]:
    """When each file was received: from a ``received.yaml`` in its folder (as logged from e-mail), else mtime.

    File names are matched in Unicode NFC (a name saved on a Mac, or unzipped, may be decomposed). ``problems``,
    when given, gets a Vietnamese sentence for each file whose receipt time could not be read from its folder's
    ``received.yaml`` (a time that is not a time, or a manifest that is not valid YAML): its file time is used.
    """
    manifests: dict[Path, dict[str, Any]] = {}
    broken: dict[Path, str] = {}
    out: dict[Path, dt.datetime] = {}
    for p in paths:
        folder = p.parent
        if folder not in manifests:
            m = folder / RECEIVED_MANIFEST
            manifests[folder] = {}
            if m.exists():
                try:
                    data = load_yaml(m) or {}
                except ConfigError as exc:
                    broken[folder] = exc.message.rstrip(".") + (f" ở dòng {exc.line}" if exc.line else "")
                except Exception as exc:  # noqa: BLE001 - whatever is wrong with it, the files are still read
                    broken[folder] = f"không đọc được ({type(exc).__name__})"
                else:
                    if isinstance(data, dict):
                        manifests[folder] = {unicodedata.normalize("NFC", str(k)): v for k, v in data.items()}
                    else:
                        broken[folder] = "tệp phải là các dòng “tên tệp: thời điểm nhận”"
        key = unicodedata.normalize("NFC", p.name)
        if folder in broken:
            if problems is not None:
                problems[p] = (
                    f"Tệp {RECEIVED_MANIFEST} trong thư mục {folder.name or folder} bị lỗi ({broken[folder]}) nên "
                    f"không biết thời điểm nhận tệp {p.name}; đã dùng thời điểm sửa tệp. Hãy sửa {RECEIVED_MANIFEST} "
                    "rồi chạy lại."
                )
            continue
        if key not in manifests[folder]:
            continue
        value = manifests[folder][key]
        when = parse_received(value)
        if when is not None:
            out[p] = when
        elif problems is not None:
            shown = "để trống" if value is None or value == "" else f"“{value}”"
            problems[p] = (
                f"Thời điểm nhận tệp {p.name} ghi trong {RECEIVED_MANIFEST} ({shown}) không đọc được; đã dùng thời "
                f"điểm sửa tệp. Hãy ghi dạng 2024-05-08 09:30 hoặc 08/05/2024 09:30."
            )
    return out


def apply_received(subs: list[Submission], received: dict[Path, dt.datetime], problems: dict[Path, str]) -> None:
    """Set each submission's receipt time from the manifests; a time that could not be read is a warning."""
    for sub in subs:
        if sub.path in received:
            sub.modified = received[sub.path]
        if sub.path in problems:
            sub.findings.append(
                Finding("received-time-invalid", problems[sub.path], severity=WARNING, value=RECEIVED_MANIFEST)
            )


_WORKER_ROUND: Round | None = None  # the round of a reading worker process, set once when it starts


def _init_worker(rnd: Round) -> None:
    global _WORKER_ROUND
    _WORKER_ROUND = rnd
    # Everything inherited from the parent (modules, forms, caches) is long-lived: keep the cyclic garbage
    # collector from walking it again and again (and from copying its pages) while files are read. The collector
    # itself stays on (the parent forks with it paused): a file's parser may leave cycles behind.
    gc.freeze()
    gc.enable()


def _read_chunk(paths: list[Path]) -> list[Submission]:
    assert _WORKER_ROUND is not None
    return [read_submission(p, _WORKER_ROUND) for p in paths]


def read_all(
    files: list[Path], rnd: Round, progress: Callable[[Path], None] | None = None, workers: int | None = None
) -> list[Submission]:
    """Read every file; many files are read in parallel processes (one per CPU), order kept."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(files) < 40:
        subs = []
        for path in files:
            subs.append(read_submission(path, rnd))
            if progress:
                progress(path)
        return subs
    from concurrent.futures import ProcessPoolExecutor

    # The first file is read here: the forms, layouts and caches it loads are then inherited by the forked
    # workers instead of being built again in each of them.
    subs = [read_submission(files[0], rnd)]
    if progress:
        progress(files[0])
    rest = files[1:]
    # Chunks shrink as the work runs out (guided scheduling): big ones first, few round trips; small ones last,
    # so that no worker is left alone with a long chunk at the end.
    chunks: list[list[Path]] = []
    i = 0
    while i < len(rest):
        size = max(4, (len(rest) - i) // (workers * 3))
        chunks.append(rest[i : i + size])
        i += size
    with _gc_paused(), ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(rnd,)) as pool:
        for chunk, result in zip(chunks, pool.map(_read_chunk, chunks)):
            subs.extend(result)
            if progress:
                for path in chunk:
                    progress(path)
    return subs


@contextlib.contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while hundreds of thousands of small objects are made that are all kept
    and acyclic (figures unpickled from the reading workers, the schemas' frames), which would trigger it over
    and over. Never around reading a file itself: a file's parser may leave cycles holding its bytes."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def validate_paths(
    paths: Iterable[str | Path],
    rnd: Round,
    progress: Callable[[Path], None] | None = None,
    workers: int | None = None,
) -> Report:
    """Read and validate files and folders (see :func:`collect_files`) against the round."""
    files = collect_files(paths)
    problems: dict[Path, str] = {}
    received = received_times(files, problems)
    subs = read_all(files, rnd, progress, workers)
    apply_received(subs, received, problems)
    with _gc_paused():
        return validate_submissions(subs, rnd)


def validate_submissions(subs: list[Submission], rnd: Round) -> Report:
    periods = tuple(p.id for p in rnd.periods)
    forms = available_forms()
    for form_id in sorted({f for s in subs for f in s.forms}):
        group = [s for s in subs if s.readable and form_id in s.forms]
        if not group or form_id not in forms:
            continue
        if forms[form_id].kind == "schedule":
            _validate_schedules(group, rnd, form_id)
        else:
            _validate_indicators(group, form_id, periods, rnd)
    copies = _mark_duplicates(subs)
    _mark_late(subs, rnd, copies)
    for s in subs:
        s.findings.sort(key=lambda f: (f.severity != ERROR, f.form or "", _cell_order(f.cell), f.code))
    return Report(rnd, subs)


def _cell_order(cell: str | None) -> tuple[int, str]:
    if not cell:
        return (0, "")
    digits = "".join(ch for ch in cell if ch.isdigit())
    return (int(digits or 0), cell)


def _failure_cases(schema, df: pd.DataFrame) -> pd.DataFrame:
    try:
        schema.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        broken = [c for c in exc.failure_cases["failure_case"] if isinstance(c, Exception)]
        if broken:  # a check that crashed would otherwise pass silently
            raise RuntimeError(f"a validation check failed to run: {broken[0]!r}") from exc
        return exc.failure_cases
    return pd.DataFrame(columns=["schema_context", "column", "check", "index"])


def _failed_rows(failures: pd.DataFrame) -> list[tuple[int, str]]:
    """(row, check) of the failure cases, once each, in order. A row-level check over a frame reports one case
    per column of each failing row (hundreds for an indicator form): drop those repeats before looping."""
    if failures.empty:
        return []
    pairs = pd.DataFrame({"index": failures["index"], "check": failures["check"].astype(str)})
    pairs = pairs.dropna(subset=["index"]).drop_duplicates()
    return [(int(i), c) for i, c in zip(pairs["index"], pairs["check"])]


def _validate_indicators(group: list[Submission], form_id: str, periods: tuple[str, ...], rnd: Round) -> None:
    form = available_forms()[form_id]
    cells = input_cells(form, periods)
    compiled = indicator_schema(form_id, periods)
    matrix = np.full((len(group), len(compiled.columns)), np.nan)
    position = {(cells[k].indicator, cells[k].field, cells[k].period): i for i, k in enumerate(compiled.columns)}
    for r, s in enumerate(group):
        row = matrix[r]
        for v in s.values:
            if v.value is not None and v.form == form_id:
                i = position.get((v.indicator, v.field, v.period))
                if i is not None:
                    row[i] = v.value

    lookups: dict[int, dict[str, Value]] = {}

    def lookup(idx: int) -> dict[str, Value]:  # column -> figure, built only for the few rows that fail a check
        if idx not in lookups:
            lookups[idx] = {
                column_key(v.indicator, v.field, v.period): v for v in group[idx].values if v.form == form_id
            }
        return lookups[idx]

    df = pd.DataFrame(matrix, columns=list(compiled.columns))
    df["_row"] = np.arange(len(group))
    failures = _failure_cases(compiled.schema, df)
    period_label = {p.id: p.label for p in rnd.periods}
    for idx, check in _failed_rows(failures):
        sub, by_key = group[idx], lookup(idx)
        row = dict(zip(compiled.columns, matrix[idx]))
        if check.startswith("rule:"):
            for rule in compiled.failing_rules(check, row):
                sub.findings.append(_rule_finding(rule, form, by_key, period_label))
            continue
        for column in compiled.failing_columns(check, row):
            v = by_key.get(column)
            if v is None:  # the figure is absent from the file's cell map: nothing to point at
                c = cells[column]
                v = Value(form_id, form.sheet, c.address, c.indicator, c.field, c.period, None, None, "missing")
            if v.status == "invalid":  # already reported when it was read
                continue
            ind = form.indicator(v.indicator)
            where = dict(
                form=form_id, sheet=v.sheet, cell=v.cell, indicator=v.indicator, field=v.field, period=v.period
            )
            what = f"“{ind.label}” – {form.field_labels[v.field]}, {period_label[v.period]}"
            if check == "required":
                sub.findings.append(
                    Finding(
                        "missing-value",
                        f"Ô {v.cell} (trang {v.sheet}) còn trống: {what}. Hãy nhập số liệu; nếu bằng 0 thì nhập 0.",
                        **where,
                    )
                )
            elif check in ("min", "max"):
                sub.findings.append(
                    Finding(
                        "out-of-range",
                        f"Ô {v.cell} (trang {v.sheet}) có giá trị {_fmt(v.value)} không hợp lệ: {what} phải là số "
                        "không âm. Hãy kiểm tra lại.",
                        value=v.value,
                        expected="≥ 0",
                        **where,
                    )
                )
            elif check == "integer":
                sub.findings.append(
                    Finding(
                        "not-integer",
                        f"Ô {v.cell} (trang {v.sheet}): {what} phải là số nguyên, đang là {_fmt(v.value)}.",
                        value=v.value,
                        **where,
                    )
                )


def _rule_finding(rule, form, by_key, period_label) -> Finding:
    def side(terms):
        vals = [by_key.get(column_key(t.indicator, t.field, rule.period)) for t in terms]
        total = sum(v.value for v in vals if v is not None and v.value is not None)
        return total, [v.cell for v in vals if v is not None]

    left, lcells = side(rule.left)
    right, rcells = side(rule.right)
    anchor = form.indicator(rule.anchor)
    right_ind = form.indicator(rule.right[0].indicator)
    text = rule.message.format(
        left=_fmt(left),
        right=_fmt(right),
        label=anchor.label,
        right_label=right_ind.label,
        period=period_label[rule.period],
    )
    cells = lcells + rcells
    first = by_key.get(column_key(rule.left[0].indicator, rule.left[0].field, rule.period))
    sheet = first.sheet if first else form.sheet
    return Finding(
        "rule-violation",
        f"{text} (ô {', '.join(cells)}, trang {sheet})",
        severity=rule.severity,
        form=form.id,
        sheet=sheet,
        cell=lcells[0] if lcells else None,
        indicator=rule.anchor,
        field=rule.left[0].field,
        period=rule.period,
        value=left,
        expected=f"{rule.op} {_fmt(right)}",
        cells=cells,
    )


def _validate_schedules(group: list[Submission], rnd: Round, form_id: str) -> None:
    form = available_forms()[form_id]
    rules = rules_for(form_id, tuple(p.id for p in rnd.periods))
    records, where = [], []
    for i, s in enumerate(group):
        rows = [r for r in s.schedule if r.form == form_id]
        if len([r for r in rows if r.used]) < rules.min_rows:
            s.findings.append(
                Finding(
                    "missing-value", f"{rules.min_rows_message} (trang {form.sheet})", form=form_id, sheet=form.sheet
                )
            )
        for r in rows:
            rec = {k: (None if _blank(r.values.get(k)) else r.values.get(k)) for k in rules.columns}
            if not r.used and all(v is None for v in rec.values()):
                continue  # a row left empty (most of the template's): every check passes on it
            rec.update(unit_code=s.unit_code, used=r.used, _file=i)
            records.append(rec)
            where.append((s, r))
    if not records:
        return
    df = pd.DataFrame(records)
    failures = _failure_cases(schedule_schema(rnd, form_id), df)
    window = f"{rnd.inspection.start:%d/%m/%Y} – {rnd.inspection.end:%d/%m/%Y}"
    for idx, check in _failed_rows(failures):
        s, row = where[idx]
        code, _, kind = check.partition(":")
        if kind:
            col = form.column(code)
            value = row.values.get(code)
            cell = row.cells.get(code)
            con = rules.columns[code]
            loc = dict(form=form_id, sheet=row.sheet, cell=cell, indicator=code, value=_show(value))
            if kind == "within" and value is not None and not isinstance(value, dt.date):
                continue  # not a date at all: the reader said so (not-a-date)
            if kind == "required":
                msg = rules.required_message.format(label=col.label, row=row.row)
                s.findings.append(Finding("missing-value", f"{msg} (ô {cell})", **loc))
            else:
                unit = rnd.unit(s.unit_code) if s.unit_code else None
                msg = con.message.format(
                    value=_show(value),
                    unit=unit.name if unit else "đơn vị",
                    window=window,
                    sessions=", ".join(rnd.inspection.sessions),
                )
                code_ = "out-of-range" if kind == "within" else "rule-violation"
                s.findings.append(Finding(code_, f"Ô {cell} (trang {row.sheet}): {msg}", **loc))
        else:
            u = next(u for u in rules.unique if u.id == check)
            values = {c: _show(row.values.get(c)) for c in u.columns}
            cells = [row.cells[c] for c in u.columns]
            s.findings.append(
                Finding(
                    "rule-violation",
                    f"{u.message.format(**values)} (ô {', '.join(cells)}, trang {row.sheet})",
                    severity=u.severity,
                    form=form_id,
                    sheet=row.sheet,
                    cell=cells[0],
                    indicator=u.id,
                    cells=cells,
                    value=" – ".join(values.values()),
                )
            )


def _blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _show(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.strftime("%d/%m/%Y")
    return "" if value is None else str(value)


def _mark_late(subs: list[Submission], rnd: Round, copies: set[Path] = frozenset()) -> None:
    """A late file says so (``copies``: later copies of an identical file, received when their first copy was)."""
    for s in subs:
        if s.modified and s.readable and s.modified.date() > rnd.deadline and s.path not in copies:
            if s.superseded_by:
                outcome = "Tệp này không được dùng (đơn vị đã gửi tệp khác thay thế)."
            elif s.valid:
                outcome = "Số liệu vẫn được tổng hợp; đơn vị được ghi nhận là nộp muộn."
            else:
                outcome = "Đơn vị được ghi nhận là nộp muộn."
            s.findings.append(
                Finding(
                    "late-submission",
                    f"Tệp {s.name} nhận lúc {s.modified:%H:%M ngày %d/%m/%Y}, sau hạn nộp {rnd.deadline:%d/%m/%Y}. "
                    + outcome,
                    value=s.modified.isoformat(timespec="minutes"),
                    expected=rnd.deadline.isoformat(),
                )
            )


def _other_round(s: Submission) -> bool:
    return any(f.code == "round-mismatch" for f in s.findings)


def _mark_duplicates(subs: list[Submission]) -> set[Path]:
    """Several files of one unit: the latest counts, the others are superseded (and say so).

    Byte-identical copies (the same file saved or downloaded twice, equally valid) are one submission, received when
    its first copy was: the later copies take no part in choosing, are not late, and point at the file that counts.
    A file of another round is never a resubmission of this one: it is set aside for the unit's file of this round,
    whenever it came. Returns the paths of the later copies.
    """
    copies: dict[Path, Submission] = {}  # a later copy -> its first copy
    by_unit: dict[str, list[Submission]] = {}
    first_copy: dict[tuple[str, str, bool], Submission] = {}
    other_round: list[Submission] = []
    for s in sorted(subs, key=lambda s: (s.modified or dt.datetime.min, s.name)):
        if not (s.readable and s.unit_code):
            continue
        # the same bytes under a name that makes them valid (a wrong unit code in the first name) are not a copy
        key = (s.unit_code, s.sha256, s.valid)
        first = first_copy.get(key)
        if first is not None:
            copies[s.path] = first
            s.superseded_by = str(first.path)
            s.findings.append(
                Finding(
                    "duplicate-submission",
                    f"Tệp {s.name} giống hệt tệp {first.name} (cùng nội dung) nên chỉ được tính một lần, theo lần "
                    f"nhận đầu tiên ({_when(first)}).",
                    severity=WARNING,
                    value=s.name,
                    expected=first.name,
                )
            )
            continue
        first_copy[key] = s
        if _other_round(s):
            other_round.append(s)
        else:
            by_unit.setdefault(s.unit_code, []).append(s)
    for code, group in by_unit.items():
        if len(group) < 2:
            continue
        # The latest file counts (a unit resends to correct); among equally recent ones, the valid one.
        group.sort(key=lambda s: (s.modified or dt.datetime.min, s.valid, s.name))
        winner = group[-1]
        for s in group[:-1]:
            s.superseded_by = str(winner.path)
            s.findings.append(
                Finding(
                    "duplicate-submission",
                    f"Đơn vị {s.unit_name or code} đã gửi {len(group)} tệp. Tệp {s.name} không được dùng: tệp "
                    f"{winner.name} được dùng vì nhận sau ({_when(winner)} so với {_when(s)}).",
                    severity=WARNING,
                    value=s.name,
                    expected=winner.name,
                )
            )
        others = ", ".join(s.name for s in group[:-1])
        winner.findings.append(
            Finding(
                "duplicate-submission",
                f"Đơn vị {winner.unit_name or code} đã gửi {len(group)} tệp; tệp {winner.name} là tệp nhận sau cùng "
                f"({_when(winner)}) nên được dùng, thay cho: {others}.",
                severity=WARNING,
                value=winner.name,
            )
        )
    for s in other_round:  # set aside for the unit's file of this round, when it sent one
        group = by_unit.get(s.unit_code)
        if group:
            winner = group[-1]
            s.superseded_by = str(winner.path)
            s.findings.append(
                Finding(
                    "duplicate-submission",
                    f"Tệp {s.name} là biểu mẫu của đợt báo cáo khác nên không được dùng; tệp {winner.name} của "
                    f"{s.unit_name or s.unit_code} được dùng.",
                    severity=WARNING,
                    value=s.name,
                    expected=winner.name,
                )
            )
    by_path = {str(s.path): s for s in subs}
    for path, first in copies.items():  # a copy of a file that was set aside points at the file that counts
        if first.superseded_by:
            by_path[str(path)].superseded_by = first.superseded_by
    return set(copies)


def _when(s: Submission) -> str:
    return f"{s.modified:%H:%M %d/%m/%Y}" if s.modified else "không rõ thời gian"


__all__ = ["Report", "collect_files", "validate_paths", "validate_submissions", "read_submission", "ERROR"]
