"""The deadline job: validate an inbox, consolidate, write the summary, record the registry.

Library functions behind ``baocao consolidate`` and ``baocao demo`` (the CLI only parses and renders).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .annotate import write_annotated
from .consolidate import Consolidation, consolidate
from .registry import Registry, default_registry_path, flag_large_changes
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


def consolidate_inbox(
    inbox: str | Path,
    rnd: Round,
    summary_path: str | Path,
    registry_path: str | Path | None = None,
    annotate_dir: str | Path | None = None,
    progress=None,
) -> ConsolidationRun:
    """Validate every file of the inbox, consolidate the usable ones, write the summary, record the registry.

    The summary is written before the registry records the run, so a summary that cannot be written leaves
    the registry as it was. Raises OutputError when an output cannot be written. (Writing the summary in a
    thread while the registry records was measured: no faster, both are Python-bound.)
    """
    inbox, summary_path = Path(inbox), Path(summary_path)
    check_writable_file(summary_path)
    registry_path = Path(registry_path) if registry_path else default_registry_path(inbox)
    if not registry_path.parent.is_dir() or not os.access(registry_path.parent, os.W_OK):
        raise OutputError(
            f"Không ghi được sổ theo dõi {registry_path}: thư mục không tồn tại hoặc không có quyền "
            "ghi. Hãy dùng --registry để chọn nơi khác."
        )
    report = validate_paths([inbox], rnd, progress=progress)
    with Registry.open(registry_path) as registry:
        flag_large_changes(report, rnd, registry)
        cons = consolidate(report, rnd)
        try:
            write_summary(cons, summary_path)
        except OSError as exc:
            raise OutputError(
                f"Không ghi được tệp tổng hợp {summary_path}: {exc.strerror or exc}. "
                "Hãy đóng tệp nếu đang mở trong Excel, hoặc chọn đường dẫn khác."
            ) from exc
        except OverflowError as exc:  # a table longer than an Excel sheet
            raise OutputError(
                f"Không ghi được tệp tổng hợp {summary_path}: {exc}. Hãy tổng hợp theo từng nhóm đơn vị (mỗi nhóm "
                "một hộp thư và một đợt báo cáo riêng)."
            ) from exc
        registry.record(report, rnd)
    annotated = []
    if annotate_dir:
        for sub in report.submissions:
            if sub.findings:
                annotated.append(write_annotated(sub, annotate_dir))
    return ConsolidationRun(report, cons, summary_path, registry_path, annotated)


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
