"""The deadline job: validate an inbox, consolidate, write the summary, record the registry.

Library functions behind ``baocao consolidate`` and ``baocao demo`` (the CLI only parses and renders).
"""

from __future__ import annotations

import errno
import gc
import multiprocessing
import os
import pickle
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .annotate import write_annotated_copies
from .consolidate import Consolidation, consolidate
from .fsutil import in_use, os_reason
from .parallel import can_fork
from .registry import Registry, StatusRow, default_registry_path, flag_large_changes, status
from .resources import examples_dir
from .round import Round, load_round
from .summary import write_summary
from .validate import Report, validate_paths


class OutputError(Exception):
    """An output cannot be written (Vietnamese message, exit code 2)."""


@dataclass
class ConsolidationRun:
    report: Report
    consolidation: Consolidation
    summary: Path
    registry: Path
    annotated: list[Path] = field(default_factory=list)
    status: list[StatusRow] = field(default_factory=list)  # who is in, from the registry just recorded


def check_writable_file(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists() and path.is_dir():
        raise OutputError(f"Không ghi được tệp tổng hợp {path}: đây là một thư mục. Hãy chọn tên tệp .xlsx.")
    if not folder.is_dir():
        raise OutputError(
            f"Không ghi được tệp tổng hợp {path}: thư mục {folder} không tồn tại. Hãy tạo thư mục "
            "hoặc chọn đường dẫn khác."
        )
    if not os.access(folder, os.W_OK):
        raise OutputError(
            f"Không ghi được tệp tổng hợp {path}: không có quyền ghi vào thư mục {folder}. Hãy chọn thư mục khác."
        )


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies anywhere under it (links resolved)."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def check_outputs_outside_inbox(inbox: Path, summary_path: Path, annotate_dir: str | Path | None = None) -> None:
    """Refuse outputs that would overwrite a return, or be read as returns on the next run; the summary is an .xlsx
    (so it never overwrites the round file, or anything else a user meant to keep under another extension)."""
    if summary_path.suffix.lower() != ".xlsx":
        raise OutputError(
            f"Không ghi được tệp tổng hợp {summary_path}: bảng tổng hợp là sổ tính Excel nên tên tệp phải có đuôi "
            ".xlsx. Hãy đặt tên dạng TONG_HOP.xlsx."
        )
    if inside(summary_path, inbox):
        raise OutputError(
            f"Không ghi tệp tổng hợp {summary_path} vào trong hộp thư {inbox}: tệp có thể đè lên tệp đơn vị gửi về, "
            "và lần chạy sau sẽ bị đọc như một tệp gửi về. Hãy chọn một thư mục ngoài hộp thư."
        )
    if annotate_dir is not None and inside(annotate_dir, inbox):
        raise OutputError(
            f"Không ghi bản sao có chú thích vào {annotate_dir}: thư mục này nằm trong hộp thư {inbox}, lần chạy sau "
            "các bản sao sẽ bị đọc như tệp gửi về. Hãy chọn một thư mục ngoài hộp thư (--annotate)."
        )


def consolidate_inbox(
    inbox: str | Path,
    rnd: Round,
    summary_path: str | Path,
    registry_path: str | Path | None = None,
    annotate_dir: str | Path | None = None,
    progress=None,
    parallel: bool | None = None,
) -> ConsolidationRun:
    """Validate every file of the inbox, consolidate the usable ones, write the summary, record the registry.

    The registry commits the run only once the summary is written, so a summary that cannot be written leaves
    the registry as it was. Raises OutputError when an output cannot be written.

    ``parallel``: write the summary in a forked process while this one records the registry (both are bound by
    the interpreter, so a thread would not help). ``None`` (the default) does so for inboxes of
    :data:`PARALLEL_MIN_FILES` files or more, where fork is safe (see :func:`toolkit.parallel.can_fork`); otherwise the summary
    is written first, then the registry records.
    """
    inbox, summary_path = Path(inbox), Path(summary_path)
    check_outputs_outside_inbox(inbox, summary_path, annotate_dir)
    check_writable_file(summary_path)
    registry_path = Path(registry_path) if registry_path else default_registry_path(inbox)
    if not registry_path.parent.is_dir() or not os.access(registry_path.parent, os.W_OK):
        raise OutputError(
            f"Không ghi được sổ theo dõi {registry_path}: thư mục không tồn tại hoặc không có quyền "
            "ghi. Hãy dùng --registry để chọn nơi khác."
        )
    if annotate_dir is not None:  # before any work: a folder that cannot be made is said at once
        try:
            Path(annotate_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"Không tạo được thư mục bản sao có chú thích {annotate_dir}: {os_reason(exc)}. "
                "Hãy chọn thư mục khác (--annotate)."
            ) from exc
    report = validate_paths([inbox], rnd, progress=progress)
    if parallel is None:
        parallel = len(report.submissions) >= PARALLEL_MIN_FILES
    with Registry.open(registry_path) as registry:
        flag_large_changes(report, rnd, registry)
        cons = consolidate(report, rnd)
        write_and_record(cons, summary_path, registry, parallel=parallel and can_fork())
        # read through this connection: a read-only one opened afterwards would leave SQLite's -wal and -shm
        # files beside the registry (only the last writing connection removes them when it closes)
        rows = status(rnd, registry)
    annotated = []
    if annotate_dir:
        try:
            annotated = write_annotated_copies([s for s in report.submissions if s.findings], annotate_dir)
        except OSError as exc:
            raise OutputError(
                f"Đã ghi bảng tổng hợp {summary_path} và sổ theo dõi, nhưng không ghi được bản sao có chú thích vào "
                f"{annotate_dir}: {os_reason(exc)}. Hãy chọn thư mục khác (--annotate) rồi chạy lại."
            ) from exc
    return ConsolidationRun(report, cons, summary_path, registry_path, annotated, rows)


PARALLEL_MIN_FILES = 40
"""From this many files on, :func:`consolidate_inbox` writes the summary in a forked process while it records
the registry (at 700 returns each takes a second or two; for a handful of files a fork costs more than it saves)."""


def write_and_record(cons: Consolidation, summary_path: Path, registry: Registry, parallel: bool = False) -> None:
    """Write the summary of ``cons`` and record its report in ``registry``; the registry commits only once the
    summary is written. With ``parallel``, the summary is written by a forked child while this process records."""
    writer = None
    if parallel:
        try:
            writer = _SummaryProcess(cons, summary_path)
        except OSError:  # no process to be had (a limit, memory): the summary is written here, as for few files
            writer = None
    if writer is None:
        _write_summary(cons, summary_path)
        registry.record(cons.report, cons.round)
        return
    try:
        registry.record(cons.report, cons.round, before_commit=writer.result)
    finally:
        writer.close()


def _write_summary(cons: Consolidation, summary_path: Path, temp_prefix: str = ".tmp-") -> None:
    try:
        write_summary(cons, summary_path, temp_prefix=temp_prefix)
    except OSError as exc:
        advice = (
            "Hãy đóng tệp nếu đang mở trong Excel, hoặc chọn đường dẫn khác."
            if in_use(exc) or exc.errno in (errno.EACCES, errno.EPERM)
            else "Hãy chọn thư mục khác."
        )
        raise OutputError(f"Không ghi được tệp tổng hợp {summary_path}: {os_reason(exc)}. {advice}") from exc
    except OverflowError as exc:  # a table longer than an Excel sheet
        raise OutputError(
            f"Không ghi được tệp tổng hợp {summary_path}: {exc}. Hãy tổng hợp theo từng nhóm đơn vị (mỗi nhóm "
            "một hộp thư và một đợt báo cáo riêng)."
        ) from exc


class _SummaryProcess:
    """The summary written by a forked child (it inherits the consolidation, nothing is pickled but the outcome).

    :meth:`result` waits for it and raises what it raised (:class:`OutputError` when the file cannot be written);
    :meth:`close` waits for it to end, whatever happened here meanwhile.
    """

    def __init__(self, cons: Consolidation, summary_path: Path) -> None:
        self.path = summary_path
        ctx = multiprocessing.get_context("fork")
        self._outcome, sender = ctx.Pipe(duplex=False)
        try:
            self._process = ctx.Process(target=_summary_child, args=(cons, summary_path, sender), daemon=True)
            self._process.start()
        except BaseException:
            self._outcome.close()
            raise
        finally:
            sender.close()  # the child holds the only sending end: its end (even a crash) is an end of file here
        self._done: tuple[BaseException | None] | None = None

    def result(self) -> None:
        if self._done is None:
            try:
                error = self._outcome.recv()
            except EOFError:
                self._process.join()
                # killed before it could clean up (out of memory, say): its half-written temporary file goes here
                for stray in self.path.parent.glob(f"{_child_temp_prefix(self._process.pid)}*"):
                    stray.unlink(missing_ok=True)
                error = OutputError(
                    f"Không ghi được tệp tổng hợp {self.path}: tiến trình ghi tệp dừng đột ngột (mã "
                    f"{self._process.exitcode}), có thể do thiếu bộ nhớ. Hãy chạy lại; nếu vẫn lỗi, hãy báo cho "
                    "người quản trị."
                )
            self._done = (error,)
        error = self._done[0]
        if error is not None:
            raise error

    def close(self) -> None:
        try:
            if self._done is None:
                try:
                    self.result()
                except BaseException:  # noqa: BLE001 - an error is already on its way up from here
                    pass
            self._process.join()
        finally:
            self._outcome.close()


def _summary_child(cons: Consolidation, summary_path: Path, outcome) -> None:
    """In the forked child: write the summary, send back None or the exception."""
    gc.freeze()  # what the parent built is read, never freed: keep the collector (and copy-on-write) off it
    try:
        _write_summary(cons, summary_path, temp_prefix=_child_temp_prefix(os.getpid()))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        if not isinstance(exc, (OutputError, KeyboardInterrupt)):  # a bug: its traceback goes along, as a note
            exc.add_note("".join(traceback.format_exception(exc)).rstrip())
        try:
            pickle.loads(pickle.dumps(exc))  # what the parent will unpickle
        except Exception:  # noqa: BLE001 - an exception that does not survive pickling goes back as text
            exc = RuntimeError("".join(traceback.format_exception(exc)))
        outcome.send(exc)
    else:
        outcome.send(None)
    finally:
        outcome.close()


def _child_temp_prefix(pid: int | None) -> str:
    """The prefix of the temporary file a summary child writes (its pid: the parent removes it if the child dies)."""
    return f".tmp-{pid}-"


def demo_paths(out: str | Path) -> dict[str, Path]:
    out = Path(out)
    return {
        "round": examples_dir() / "bac-giang-2024" / "round.yaml",
        "inbox": examples_dir() / "bac-giang-2024" / "inbox",
        "summary": out / "tong-hop-bac-giang-2024.xlsx",
        "registry": out / "registry.sqlite",
        "annotated": out / "kiem-tra",
        "templates": out / "bieu-mau",
    }


def run_demo(out: str | Path) -> ConsolidationRun:
    """The whole cycle on the shipped example round: templates, validation, annotated copies, summary."""
    from .render import write_templates

    paths = demo_paths(out)
    Path(out).mkdir(parents=True, exist_ok=True)
    rnd = load_round(paths["round"])
    write_templates(rnd, paths["templates"])
    return consolidate_inbox(paths["inbox"], rnd, paths["summary"], paths["registry"], paths["annotated"])
