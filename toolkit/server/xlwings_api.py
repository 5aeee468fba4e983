"""The “Kiểm tra báo cáo” button inside Excel, on xlwings' remote interpreter (xlwings Server protocol).

The Office.js add-in in ``officejs/`` loads xlwings' own JavaScript client (shipped by the ``xlwings-server``
package, served here under ``/xlwings/static/``). Its ``runPython`` posts the open workbook as xlwings' book
payload (book name, active sheet, selection, names, and for every sheet — hidden ones included — its values
from A1 to the last used cell: blanks as ``""``, dates as ISO strings). This router:

1. opens the payload with ``xw.Book(json=payload)`` (xlwings' remote engine) and reads every sheet's values
   through it, so dates and blanks are converted by xlwings itself;
2. writes those values at their addresses into a temporary .xlsx named like the workbook and validates it
   with :func:`toolkit.validate.validate_paths` — the same reader and rules as ``baocao validate``;
3. answers with ``book.json()``: xlwings actions that colour every finding cell (errors red, warnings
   yellow) after returning the input cells to their input shading, replace the sheet “Kết quả kiểm tra”
   with the list of findings, and show an alert with the count.

The remote engine is part of xlwings PRO: it needs ``XLWINGS_LICENSE_KEY`` (``noncommercial`` under the
PolyForm Noncommercial License 1.0.0, which a government institution may use; otherwise a paid key).

Routes (the app includes the router at prefix ``/xlwings``; xlwings' client expects exactly that path):

- ``POST /xlwings/check`` and ``POST /xlwings/custom-scripts-call/kiem_tra_bao_cao`` — the check;
- ``GET /xlwings/custom-scripts-meta.json`` — the scripts xlwings' client may call;
- ``GET /xlwings/alert`` — the dialog page of ``book.app.alert`` (xlwings' own template);
- ``GET /xlwings/static/{path}`` — xlwings' Office.js client (from the installed ``xlwings-server``);
- ``GET /xlwings/addin/{name}`` — the add-in's manifest, pages, script and icons.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fastapi
import xlsxwriter
from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from xlsxwriter.exceptions import XlsxWriterException

from ..annotate import RESULT_SHEET, SEVERITY_LABEL
from ..findings import CATALOG, ERROR, WARNING, Finding
from ..forms import available_forms
from ..read import Submission, split_cell
from ..render import INPUT_FILL
from ..round import Round, load_round
from ..validate import validate_paths

router = fastapi.APIRouter()

SCRIPT_NAME = "kiem_tra_bao_cao"  # what the add-in's runPython({scriptName}) calls
ALERT_TITLE = "Kiểm tra báo cáo"
FILLS = {ERROR: "#FFC7CE", WARNING: "#FFEB9C"}
HEADER_FILL = "#D9E1F2"
# Facts about receiving a file, not about its content: the workbook has not been sent yet.
RECEIPT_CODES = {"late-submission", "duplicate-submission"}
# Column widths of the findings sheet, in points (what Office.js measures column widths in).
RESULT_WIDTHS = (36, 60, 120, 60, 48, 620)
RESULT_HEADERS = ["STT", "Mức độ", "Loại", "Trang", "Ô", "Nội dung"]
MAX_PAYLOAD = 8 * 1024 * 1024  # bytes of JSON; the app's upload limit does not cover /xlwings
TOO_LARGE = "Sổ làm việc gửi lên quá lớn để kiểm tra (quá 8 MB dữ liệu). Hãy dùng đúng biểu mẫu Sở gửi."
LICENSE_HELP = (
    "Máy chủ chưa có khóa bản quyền xlwings: đặt biến môi trường XLWINGS_LICENSE_KEY=noncommercial "
    "(PolyForm Noncommercial 1.0.0, dùng cho cơ quan nhà nước) hoặc khóa thương mại, rồi khởi động lại máy chủ. "
    "(xlwings remote engine: no valid XLWINGS_LICENSE_KEY.)"
)

ADDIN_DIR = Path(__file__).resolve().parent / "officejs"
ADDIN_TYPES = {
    ".xml": "application/xml",
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
}
# Placeholders in the add-in files, filled in when they are served.
SERVER_TOKEN = "__SERVER__"  # manifest.xml: https://host[/app path]/xlwings
ORIGIN_TOKEN = "__ORIGIN__"  # manifest.xml: https://host (its AppDomain)
APP_PATH_TOKEN = "__APP_PATH__"  # pages: the app's path prefix, for xlwings' client config
VERSION_TOKEN = "__XLWINGS_VERSION__"

# xlwings' remote engine keeps its books in one process-wide App whose “active book” receives App-level
# actions (alerts, macros): build and act on one book at a time.
_ENGINE_LOCK = threading.Lock()


# ------------------------------------------------------------------------------------------- licence


def remote_engine_ready() -> None:
    """Make sure xlwings' remote engine is registered; raise HTTP 503 (Vietnamese) without a licence key.

    xlwings registers the engine when it is first imported, and only if a licence key is found then; a key
    set later (a server configured after start-up, tests that set the variable) registers it here.
    """
    import xlwings as xw

    if "remote" in xw.engines.engines_by_name:
        return
    try:
        from xlwings.pro import _xlremote  # importing xlwings.pro validates the key
    except (ImportError, xw.LicenseError) as exc:
        raise HTTPException(status_code=503, detail=LICENSE_HELP) from exc
    xw.engines.add(xw.main.Engine(impl=_xlremote.engine))


# ------------------------------------------------------------------------------------ payload -> .xlsx


@dataclass
class SheetValues:
    name: str
    rows: list[list[Any]]  # as xlwings converts them: None for blanks, datetime for dates


def _book(payload: dict[str, Any]):
    import xlwings as xw

    return xw.Book(json=payload)


def check_payload_shape(payload: Any) -> None:
    """The request must be xlwings' book payload; anything else is a 400 with a plain reason."""
    problem = None
    if not isinstance(payload, dict):
        problem = "nội dung gửi lên không phải là một đối tượng JSON"
    elif not isinstance(payload.get("book"), dict) or not isinstance(payload["book"].get("name"), str):
        problem = "thiếu thông tin sổ làm việc (book.name)"
    elif not isinstance(payload.get("sheets"), list) or not payload["sheets"]:
        problem = "thiếu danh sách trang tính (sheets)"
    elif any(not isinstance(s, dict) or not isinstance(s.get("name"), str) for s in payload["sheets"]):
        problem = "một trang tính thiếu tên"
    elif any(
        not isinstance(s.get("values", [[]]), list) or not all(isinstance(r, list) for r in s.get("values", [[]]))
        for s in payload["sheets"]
    ):
        problem = "giá trị của một trang tính không phải là bảng"
    if problem:
        raise HTTPException(
            status_code=400,
            detail=f"Yêu cầu không đúng định dạng của xlwings: {problem}. Hãy dùng nút “Kiểm tra báo cáo” của phần bổ trợ.",
        )
    payload.setdefault("client", "Office.js")
    payload.setdefault("version", "")
    payload.setdefault("names", [])
    payload["book"].setdefault("active_sheet_index", 0)
    for sheet in payload["sheets"]:
        sheet.setdefault("values", [[]])
        sheet.setdefault("tables", [])
        sheet.setdefault("pictures", [])


def read_sheets(book) -> list[SheetValues]:
    """Every sheet's values, converted by xlwings (``""`` -> None, ISO date strings -> datetime)."""
    out = []
    for sheet in book.sheets:
        if sheet.name == RESULT_SHEET:  # our own output of an earlier check
            continue
        raw = sheet.api.get("values") or [[]]
        nrows, ncols = len(raw), max((len(r) for r in raw), default=0)
        if nrows == 0 or ncols == 0:
            out.append(SheetValues(sheet.name, []))
            continue
        rows = sheet.range((1, 1), (nrows, ncols)).options(ndim=2).value
        out.append(SheetValues(sheet.name, rows))
    return out


def workbook_file_name(name: str) -> str:
    """The temporary file's name: the workbook's own (it names the unit and appears in messages), as .xlsx."""
    base = re.split(r"[\\/]", name or "")[-1].strip()
    stem = Path(base).stem if Path(base).suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods", ".xlsb") else base
    stem = re.sub(r'[<>:"|?*\x00-\x1f]', "_", stem).strip(" .") or "bao-cao"
    return f"{stem[:120]}.xlsx"


def write_values_workbook(sheets: list[SheetValues], path: Path) -> Path:
    """The workbook's values at their addresses, one sheet per sheet (hidden ones too), as .xlsx."""
    wb = xlsxwriter.Workbook(
        str(path),
        {
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "nan_inf_to_errors": True,
        },
    )
    date_format = wb.add_format({"num_format": "dd/mm/yyyy"})
    for sheet in sheets:
        ws = wb.add_worksheet(sheet.name)
        for r, row in enumerate(sheet.rows):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, bool):
                    ws.write_boolean(r, c, value)
                elif isinstance(value, (int, float)):
                    ws.write_number(r, c, value)
                elif isinstance(value, dt.datetime):
                    ws.write_datetime(r, c, value, date_format)
                elif isinstance(value, dt.date):
                    ws.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date_format)
                else:
                    ws.write_string(r, c, str(value))
    if not sheets:
        wb.add_worksheet()
    wb.close()
    return path


def validate_sheets(book_name: str, sheets: list[SheetValues], rnd: Round) -> Submission:
    """Validate the workbook's values with the library, as ``baocao validate`` validates a returned file."""
    with tempfile.TemporaryDirectory(prefix="baocao-xlwings-") as tmp:
        try:
            path = write_values_workbook(sheets, Path(tmp) / workbook_file_name(book_name))
        except XlsxWriterException as exc:  # e.g. a sheet name Excel itself would refuse
            raise HTTPException(status_code=400, detail=f"Sổ làm việc gửi lên không hợp lệ: {exc}") from exc
        report = validate_paths([path], rnd, workers=1)
    sub = report.submissions[0]
    sub.findings = [f for f in sub.findings if f.code not in RECEIPT_CODES]
    return sub


# ---------------------------------------------------------------------------------------- the actions


def rectangles(cells: set[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """Cover (row, col) cells with few rectangles (first row, first col, last row, last col): runs along each
    row, then runs of the same columns stacked over consecutive rows. One xlwings action per rectangle."""
    runs: dict[tuple[int, int], list[int]] = {}  # (first col, last col) -> rows
    by_row: dict[int, list[int]] = {}
    for r, c in cells:
        by_row.setdefault(r, []).append(c)
    for r in sorted(by_row):
        cols = sorted(by_row[r])
        start = prev = cols[0]
        for c in cols[1:] + [None]:
            if c is not None and c == prev + 1:
                prev = c
                continue
            runs.setdefault((start, prev), []).append(r)
            if c is not None:
                start = prev = c
    out = []
    for (c0, c1), rows in runs.items():
        first = last = rows[0]
        for r in rows[1:] + [None]:
            if r is not None and r == last + 1:
                last = r
                continue
            out.append((first, c0, last, c1))
            if r is not None:
                first = last = r
    return sorted(out)


def input_cells(sub: Submission) -> dict[str, set[tuple[int, int]]]:
    """Sheet -> the input cells of every form in the workbook, where the reader found them."""
    out: dict[str, set[tuple[int, int]]] = {}
    for v in sub.values:  # every input figure of an indicator form, at its actual cell
        out.setdefault(v.sheet, set()).add(split_cell(v.cell))
    forms = available_forms()
    schedule_sheets = {r.form: r.sheet for r in sub.schedule}
    for form_id in sub.forms:
        form = forms.get(form_id)
        if form is None or form.kind != "schedule":
            continue
        sheet = schedule_sheets.get(form_id, form.sheet)
        for c in form.layout(()).inputs:
            out.setdefault(sheet, set()).add((c.row, c.col))
    return out


def finding_cells(findings: list[Finding]) -> dict[str, dict[tuple[int, int], str]]:
    """Sheet -> cell -> fill colour; a cell with an error and a warning is coloured as an error."""
    out: dict[str, dict[tuple[int, int], str]] = {}
    for f in findings:
        if not f.sheet:
            continue
        for address in f.cells or ([f.cell] if f.cell else []):
            try:
                cell = split_cell(address)
            except ValueError:
                continue
            cells = out.setdefault(f.sheet, {})
            if cells.get(cell) != FILLS[ERROR]:
                cells[cell] = FILLS[f.severity]
    return out


def alert_text(errors: int, warnings: int) -> str:
    see = f"Xem trang “{RESULT_SHEET}”."
    if errors and warnings:
        return f"Có {errors} lỗi và {warnings} cảnh báo. {see}"
    if errors:
        return f"Có {errors} lỗi. {see}"
    if warnings:
        return f"Không có lỗi, có {warnings} cảnh báo. {see}"
    return "Không có lỗi. Báo cáo đã sẵn sàng để gửi."


def result_rows(sub: Submission, book_name: str) -> list[list[Any]]:
    """The findings sheet, laid out like the annotated copy's (``baocao validate --annotate``)."""
    errors, warnings = len(sub.errors), len(sub.warnings)
    unit = (sub.unit_name or "không xác định") + (f" (mã {sub.unit_code})" if sub.unit_code else "")
    rows: list[list[Any]] = [
        [f"KẾT QUẢ KIỂM TRA TỆP {book_name}", "", "", "", "", ""],
        [f"Đơn vị: {unit}. {alert_text(errors, warnings)}", "", "", "", "", ""],
        ["", "", "", "", "", ""],
        list(RESULT_HEADERS),
    ]
    for i, f in enumerate(sub.findings, start=1):
        kind = CATALOG.get(f.code, (None, f.code))[1]
        rows.append([i, SEVERITY_LABEL[f.severity], kind, f.sheet or "", ", ".join(f.cells), f.message])
    return rows


def apply_actions(book, sub: Submission, rnd: Round) -> None:
    """Queue xlwings actions on ``book``: colours, the findings sheet, the alert."""
    names = [s.name for s in book.sheets]
    colours = finding_cells(sub.findings)
    inputs = input_cells(sub)
    password = rnd.password or ""
    for name in names:
        if name not in inputs and name not in colours:
            continue
        sheet = book.sheets[name]
        # Template sheets are protected, and a protected sheet's fill cannot be changed: the add-in's
        # JavaScript callbacks (registered with xlwings.registerCallback) lift the protection for the
        # colouring and put it back.
        book.app.macro("baocaoUnprotect")(name, password)
        for r0, c0, r1, c1 in rectangles(inputs.get(name, set())):
            sheet.range((r0, c0), (r1, c1)).color = INPUT_FILL  # a fixed cell returns to the input shading
        by_colour: dict[str, set[tuple[int, int]]] = {}
        for cell, colour in colours.get(name, {}).items():
            by_colour.setdefault(colour, set()).add(cell)
        for colour in (FILLS[WARNING], FILLS[ERROR]):
            for r0, c0, r1, c1 in rectangles(by_colour.get(colour, set())):
                sheet.range((r0, c0), (r1, c1)).color = colour
        book.app.macro("baocaoProtect")(name, password)

    if RESULT_SHEET in names:
        book.sheets[RESULT_SHEET].delete()
    result = book.sheets.add(RESULT_SHEET, before=book.sheets[0])
    rows = result_rows(sub, book.name)
    result["A1"].value = rows
    result.range((4, 1), (4, len(RESULT_HEADERS))).color = HEADER_FILL
    for i, f in enumerate(sub.findings, start=5):
        result.range((i, 2)).color = FILLS[f.severity]
    for col, width in enumerate(RESULT_WIDTHS, start=1):
        result.range((1, col)).column_width = width
    if sub.findings:
        result.range((5, len(RESULT_HEADERS)), (4 + len(sub.findings), len(RESULT_HEADERS))).wrap_text = True
        result.activate()
    errors, warnings = len(sub.errors), len(sub.warnings)
    book.app.alert(alert_text(errors, warnings), title=ALERT_TITLE, buttons="ok", mode="critical" if errors else "info")


def run_check(payload: dict[str, Any], rnd: Round) -> dict[str, Any]:
    """xlwings book payload -> xlwings actions (``book.json()``)."""
    check_payload_shape(payload)
    remote_engine_ready()
    with _ENGINE_LOCK:
        book = _book(payload)
        try:
            name = book.name
            sheets = read_sheets(book)
        finally:
            book.close()
    sub = validate_sheets(name, sheets, rnd)  # the slow part runs outside the lock
    with _ENGINE_LOCK:
        book = _book(payload)  # opening makes it the engine's active book, which alerts and macros go to
        try:
            apply_actions(book, sub, rnd)
            return book.json()
        finally:
            book.close()


# ------------------------------------------------------------------------------------------------ routes


@cache
def _default_round() -> Round:
    return load_round()


def current_round(request: Request) -> Round:
    rnd = getattr(request.app.state, "round", None)
    return rnd if rnd is not None else _default_round()


async def read_payload(request: Request) -> Any:
    """The request's JSON body, refused past MAX_PAYLOAD bytes (a template's payload is a few hundred KB)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_PAYLOAD:
        raise HTTPException(status_code=413, detail=TOO_LARGE)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_PAYLOAD:
            raise HTTPException(status_code=413, detail=TOO_LARGE)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail="Nội dung gửi lên không phải JSON hợp lệ.") from exc


@router.post("/check")
async def check(request: Request) -> dict[str, Any]:
    """The check: xlwings' book payload in, xlwings actions out."""
    payload = await read_payload(request)
    return await run_in_threadpool(run_check, payload, current_round(request))


@router.post("/custom-scripts-call/{script_name}")
async def custom_scripts_call(script_name: str, request: Request) -> dict[str, Any]:
    """What xlwings' Office.js client calls for ``xlwings.runPython({scriptName})``."""
    if script_name != SCRIPT_NAME:
        raise HTTPException(status_code=404, detail=f"Không có chức năng “{script_name}” trên máy chủ này.")
    payload = await read_payload(request)
    return await run_in_threadpool(run_check, payload, current_round(request))


@router.get("/custom-scripts-meta.json")
@router.get("/custom-scripts-meta")
def custom_scripts_meta() -> list[dict[str, Any]]:
    """The scripts xlwings' client may call (it reads this when it loads)."""
    return [
        {
            "function_name": SCRIPT_NAME,
            "name": ALERT_TITLE,
            "required_roles": None,
            "include": "",
            "exclude": "",
            "button": None,
            "show_taskpane": None,
            "lazy": False,
        }
    ]


@cache
def _alert_template():
    import jinja2
    import xlwings

    html = (Path(xlwings.__file__).parent / "html" / "xlwings-alert.html").read_text(encoding="utf-8-sig")
    return jinja2.Environment(autoescape=True).from_string(html)


@router.get("/alert", response_class=HTMLResponse)
def alert(prompt: str = "", title: str = "", buttons: str = "ok", mode: str = "", callback: str = "") -> str:
    """The dialog xlwings' client opens for ``book.app.alert`` (xlwings' own page)."""
    return _alert_template().render(prompt=prompt, title=title, buttons=buttons, mode=mode, callback=callback)


def client_dir() -> Path | None:
    """xlwings' Office.js client (``static/js`` of the installed ``xlwings-server`` package), found without
    importing that package (its import reads server settings)."""
    spec = importlib.util.find_spec("xlwings_server")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "static" / "js"
    return folder if folder.is_dir() else None


@router.get("/static/{path:path}")
def static(path: str) -> FileResponse:
    """xlwings' Office.js client, from the installed ``xlwings-server`` package."""
    root = client_dir()
    if root is None:
        raise HTTPException(
            status_code=404,
            detail="Chưa cài gói xlwings-server (phần JavaScript của xlwings cho Office.js): pip install 'baocao[server]'.",
        )
    target = (root / path).resolve()
    if target.suffix != ".js" or not target.is_file() or not target.is_relative_to(root.resolve()):
        raise HTTPException(status_code=404, detail="Không có tệp này.")
    return FileResponse(target, media_type="text/javascript; charset=utf-8")


def _router_prefix(request: Request) -> str:
    """The path this router answers under (``/xlwings``, or ``/app/xlwings`` when the app is mounted lower)."""
    path = request.url.path
    return path[: path.rfind("/addin/")] if "/addin/" in path else "/xlwings"


def _xlwings_base(request: Request) -> str:
    """``https://host[/app path]/xlwings``: where this router answers, as the add-in must reach it.

    The host comes from the round's ``server_url`` when it is set (the address units are told; behind a
    reverse proxy the request may arrive as plain HTTP), else from the request.
    """
    prefix = _router_prefix(request)
    rnd = current_round(request)
    if rnd.server_url:
        parts = urlsplit(rnd.server_url)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}{prefix}"
    return f"{request.url.scheme}://{request.url.netloc}{prefix}"


@router.get("/addin/{name}")
def addin(name: str, request: Request) -> Response:
    """The add-in's files: manifest (with this server's address), pages, script, icons."""
    target = ADDIN_DIR / name
    if "/" in name or "\\" in name or name.startswith(".") or not target.is_file() or target.suffix not in ADDIN_TYPES:
        raise HTTPException(status_code=404, detail="Không có tệp này.")
    media = ADDIN_TYPES[target.suffix]
    if target.suffix == ".png":
        return FileResponse(target, media_type=media)
    import xlwings

    prefix = _router_prefix(request)
    app_path = prefix[: -len("/xlwings")] if prefix.endswith("/xlwings") else ""
    base = _xlwings_base(request)
    parts = urlsplit(base)
    text = (
        target.read_text(encoding="utf-8")
        .replace(SERVER_TOKEN, base)
        .replace(ORIGIN_TOKEN, f"{parts.scheme}://{parts.netloc}")
        .replace(APP_PATH_TOKEN, json.dumps(app_path)[1:-1])
        .replace(VERSION_TOKEN, xlwings.__version__)
    )
    headers = {"Content-Disposition": 'attachment; filename="baocao-manifest.xml"'} if name == "manifest.xml" else None
    return Response(text, media_type=media, headers=headers)
