"""Annotated copy of a returned workbook: every finding's cell coloured and commented, plus a findings sheet.

The returned file itself is never modified: the copy is written to a temporary file and renamed into place.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import openpyxl
import python_calamine
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils.cell import coordinate_from_string
from openpyxl.worksheet.hyperlink import Hyperlink

from .findings import CATALOG, ERROR
from .fsutil import atomic_file
from .parallel import can_fork
from .read import Submission

RESULT_SHEET = "Kết quả kiểm tra"
FILLS = {"error": PatternFill("solid", fgColor="FFC7CE"), "warning": PatternFill("solid", fgColor="FFEB9C")}
SEVERITY_LABEL = {"error": "Lỗi", "warning": "Cảnh báo"}
FONT = "Times New Roman"


def annotated_name(sub: Submission) -> str:
    return f"{sub.path.stem}_kiem-tra.xlsx"


def _open_copy(sub: Submission):
    """The workbook to annotate: the file itself for .xlsx/.xlsm, a values-only copy for .xls/.ods."""
    if sub.format in ("xlsx", "xlsm") and sub.readable:
        try:
            return openpyxl.load_workbook(sub.path, keep_vba=sub.format == "xlsm", rich_text=False)
        except Exception:  # noqa: BLE001 - fall back to a values copy
            pass
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    if sub.readable:
        try:
            src = python_calamine.CalamineWorkbook.from_path(str(sub.path))
            for name in src.sheet_names:
                ws = wb.create_sheet(name[:31])
                for r, row in enumerate(src.get_sheet_by_name(name).to_python(skip_empty_area=False), start=1):
                    for c, v in enumerate(row, start=1):
                        if v not in ("", None):
                            cell = ws.cell(r, c)
                            cell.value = v
                            if isinstance(v, str) and v.startswith("="):
                                cell.data_type = "s"
            src.close()
        except Exception:  # noqa: BLE001
            pass
    return wb


def write_annotated(sub: Submission, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wb = _open_copy(sub)
    for finding in sub.findings:
        if not finding.sheet or finding.sheet not in wb.sheetnames:
            continue
        ws = wb[finding.sheet]
        for address in finding.cells or ([finding.cell] if finding.cell else []):
            try:
                coordinate_from_string(address)
            except ValueError:
                continue
            cell = ws[address]
            if type(cell).__name__ == "MergedCell":
                continue
            current = cell.fill
            if finding.severity == ERROR or not (current and current.fgColor and current.fgColor.rgb == "00FFC7CE"):
                cell.fill = FILLS[finding.severity]
            text = f"{SEVERITY_LABEL[finding.severity]}: {finding.message}"
            if cell.comment is not None and text not in cell.comment.text:
                text = cell.comment.text + "\n\n" + text
            comment = Comment(text[:30000], "baocao")
            comment.width, comment.height = 320, 160
            cell.comment = comment
    if RESULT_SHEET in wb.sheetnames:
        del wb[RESULT_SHEET]
    ws = wb.create_sheet(RESULT_SHEET, 0)
    _write_results(ws, sub)
    wb.active = 0
    for sheet in wb.worksheets[1:]:
        sheet.sheet_view.tabSelected = False
    target = out_dir / annotated_name(sub)
    with atomic_file(target, suffix=".xlsx") as tmp:
        wb.save(tmp)
    return target


PARALLEL_MIN_COPIES = 8
"""From this many copies on, :func:`write_annotated_copies` writes them in parallel processes (openpyxl takes a
tenth of a second or more per workbook: minutes for a province's inbox on one core)."""


def write_annotated_copies(subs: Sequence[Submission], out_dir: str | Path, workers: int | None = None) -> list[Path]:
    """:func:`write_annotated` for each submission, in order; many copies are written in parallel processes (one
    per CPU) on Linux when this process runs a single thread (forking with other threads running is unsafe), one
    after the other otherwise. Raises the first :class:`OSError` met, as the loop would."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(subs) < PARALLEL_MIN_COPIES or not can_fork():
        return [write_annotated(sub, out_dir) for sub in subs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(1, len(subs) // (workers * 4))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(write_annotated, subs, [out_dir] * len(subs), chunksize=chunk))


def _write_results(ws, sub: Submission) -> None:
    bold = Font(name=FONT, bold=True)
    plain = Font(name=FONT)
    link = Font(name=FONT, color="0563C1", underline="single")
    ws["A1"] = f"KẾT QUẢ KIỂM TRA TỆP {sub.name}"
    ws["A1"].font = Font(name=FONT, bold=True, size=14)
    errors, warnings = len(sub.errors), len(sub.warnings)
    ws["A2"] = (
        f"Đơn vị: {sub.unit_name or 'không xác định'}"
        + (f" (mã {sub.unit_code})" if sub.unit_code else "")
        + f". {errors} lỗi, {warnings} cảnh báo."
        + (" Hãy sửa các ô tô đỏ rồi gửi lại tệp gốc." if errors else " Tệp hợp lệ.")
    )
    ws["A2"].font = plain
    headers = ["STT", "Mức độ", "Loại", "Trang", "Ô", "Nội dung"]
    for col, head in enumerate(headers, start=1):
        c = ws.cell(4, col, head)
        c.font = bold
        c.fill = PatternFill("solid", fgColor="D9E1F2")
    for i, f in enumerate(sub.findings, start=1):
        r = 4 + i
        values = [
            i,
            SEVERITY_LABEL[f.severity],
            CATALOG.get(f.code, (None, f.code))[1],
            f.sheet or "",
            f.cell or "",
            f.message,
        ]
        for col, v in enumerate(values, start=1):
            c = ws.cell(r, col)
            c.value = v
            c.data_type = "n" if isinstance(v, int) else "s"  # text from a return stays text
            c.font = plain
            c.alignment = Alignment(wrap_text=col in (3, 6), vertical="top")
        ws.cell(r, 2).fill = FILLS[f.severity]
        if f.sheet and f.cell and f.sheet in ws.parent.sheetnames:
            c = ws.cell(r, 5)
            # an in-workbook link (``location``): a "#…" target is an external link to the file itself,
            # which LibreOffice resolves by the file's path
            c.hyperlink = Hyperlink(ref=c.coordinate, location=f"'{f.sheet}'!{f.cell}")
            c.font = link
    for col, width in zip("ABCDEF", (6, 10, 26, 12, 8, 100)):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A5"
