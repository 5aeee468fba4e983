"""A returned workbook -> a Submission: unit, round, forms, every input value with its cell, file facts.

Values are read with python-calamine (fast, reads .xlsx/.xlsm/.xls/.ods and never runs macros). For .xlsx and
.xlsm the sheet XML is also scanned (streamed, after the safety checks) for what calamine does not give:
formulas in input cells and the font of text cells (TCVN3/VNI detection).
"""

from __future__ import annotations

import datetime as dt
import html
import io
import operator
import posixpath
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import python_calamine

from .findings import ERROR, WARNING, Finding
from .forms import HEADER_ROW, Form, InputCell, available_forms
from .normalize import READING_VN, convert_by_font, detect_legacy_font, normalise_text, parse_number_text
from .render import GUIDE_SHEET, LIST_SHEET, META_SHEET, parse_cell_map
from .round import Round
from .safety import SafetyResult, inspect_workbook, read_member
from .text import fold as _fold_text
from .text import fold_place as _fold_place_text

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}

# Labels, headings and place names repeat in every file of a round: fold each distinct text once per process.
fold = lru_cache(maxsize=1 << 16, typed=True)(_fold_text)
fold_place = lru_cache(maxsize=1 << 16, typed=True)(_fold_place_text)
_CELL_RE = re.compile(r"^([A-Z]+)(\d+)$")


def col_letter(col: int) -> str:
    """1-based column number -> letters."""
    out = ""
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


def split_cell(address: str) -> tuple[int, int]:
    """“D15” -> (row 15, column 4), both 1-based."""
    m = _CELL_RE.match(address)
    if not m:
        raise ValueError(address)
    col = 0
    for ch in m.group(1):
        col = col * 26 + ord(ch) - 64
    return int(m.group(2)), col


@dataclass(slots=True)
class Value:
    """One input figure of an indicator form as read from the return (slots: a round holds some 100,000)."""

    form: str
    sheet: str
    cell: str
    indicator: str
    field: str
    period: str
    value: float | None  # the number used; None when blank or unusable
    raw: Any = None
    status: str = "ok"  # ok | missing | invalid


_value_tuple = operator.attrgetter(*Value.__slots__)


@dataclass
class ScheduleRow:
    form: str
    sheet: str
    row: int  # Excel row number
    values: dict[str, Any]
    cells: dict[str, str]

    @property
    def used(self) -> bool:
        return any(self.values.get(k) not in (None, "") for k in ("commune", "date"))


@dataclass
class Submission:
    path: Path
    size: int = 0
    sha256: str = ""
    modified: dt.datetime | None = None
    format: str | None = None
    unit_code: str | None = None
    unit_name: str | None = None
    round_id: str | None = None
    forms: dict[str, int | None] = field(default_factory=dict)  # form id -> version found (None: by labels)
    recognised_by: str | None = None  # metadata | labels
    values: list[Value] = field(default_factory=list)
    schedule: list[ScheduleRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    readable: bool = True
    superseded_by: str | None = None  # path of the file that counts instead (duplicates)

    @property
    def name(self) -> str:
        return self.path.name

    def __getstate__(self) -> dict:
        # Submissions cross process boundaries when many files are read in parallel: send each figure as a
        # plain tuple (several times faster to pickle than hundreds of small objects).
        state = dict(self.__dict__)
        state["values"] = list(map(_value_tuple, self.values))
        return state

    def __setstate__(self, state: dict) -> None:
        state["values"] = [Value(*t) for t in state["values"]]
        self.__dict__.update(state)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def valid(self) -> bool:
        return self.readable and not self.errors and self.unit_code is not None


# ------------------------------------------------------------------------------------------ xlsx scan


@dataclass
class SheetScan:
    formulas: dict[str, str] = field(default_factory=dict)
    fonts: dict[str, str] = field(default_factory=dict)  # cell -> font name, for text cells only
    escaped: bool = False  # formulas still XML-escaped (the regular-expression pass)


_C_TAG = f"{{{NS['m']}}}c"
_F_TAG = f"{{{NS['m']}}}f"


class _ScanTarget:
    """ElementTree parser target for :func:`_scan_xlsx`: reads ``<c>`` cells as they stream by, building no tree.

    For each cell (on its end tag, in document order): the text of its first ``<f>`` child, as ``Element.text``
    (the character data up to that child's own first child; ``""`` when empty), and for a text cell
    (``t`` = s / inlineStr / str) the font of its style. Much faster than ``iterparse`` + ``find``.
    """

    def __init__(self, scan: SheetScan, xf_font: list[int], fonts: list[str]) -> None:
        self.scan, self.xf_font, self.fonts = scan, xf_font, fonts
        self.depth = 0
        self.cells: list[list] = []  # open <c> elements: [depth, attributes, text parts of the first <f> or None]
        self.collect: list[str] | None = None  # where character data goes (the open <f>'s text), if anywhere

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.depth += 1
        self.collect = None
        if tag == _C_TAG:
            self.cells.append([self.depth, attrib, None])
        elif tag == _F_TAG and self.cells:
            cell = self.cells[-1]
            if cell[0] == self.depth - 1 and cell[2] is None:
                cell[2] = self.collect = []

    def data(self, data: str) -> None:
        if self.collect is not None:
            self.collect.append(data)

    def end(self, tag: str) -> None:
        self.collect = None
        if tag == _C_TAG and self.cells and self.cells[-1][0] == self.depth:
            _, attrib, formula = self.cells.pop()
            ref = attrib.get("r", "")
            if formula is not None:
                self.scan.formulas[ref] = "".join(formula)
            if attrib.get("t") in ("s", "inlineStr", "str"):
                s_idx = int(attrib.get("s", 0))
                if s_idx < len(self.xf_font) and self.xf_font[s_idx] < len(self.fonts):
                    self.scan.fonts[ref] = self.fonts[self.xf_font[s_idx]]
        self.depth -= 1


_F_OPEN = re.compile(rb"<f[\s/>]")
_REF_ATTR = re.compile(rb'\br\s*=\s*"([A-Z]{1,3}[0-9]{1,7})"')
_TAG_END = frozenset(b" \t\r\n>")


def _formula_cells(xml: bytes) -> dict[str, str]:
    """Cell reference -> formula text (still XML-escaped), for every cell whose first child is ``<f>``.

    Found from the ``<f>`` elements, the rarer tag, back to their ``<c>``: a sheet has far fewer formulas than
    cells, so this is several times faster than matching every cell. Linear in the size of the sheet whatever it
    holds: a search back never goes past the previous ``<f>`` (a cell holds one formula), and searches forward
    that failed once are not repeated.
    """
    refs: list[bytes] = []
    texts: list[bytes] = []
    end = xml.rfind(b"</sheetData>")  # cells end there; data validations and conditional formats follow
    lo = 0  # where the previous <f> was: this one's cell starts after it
    closing = True  # whether a "</f>" may still come
    for m in _F_OPEN.finditer(xml, 0, end if end >= 0 else len(xml)):
        f = m.start()
        floor, lo = lo, f + 2
        c = xml.rfind(b"<c", floor, f)
        while c >= 0 and xml[c + 2] not in _TAG_END:  # <col>, <cfRule>...: not a cell
            c = xml.rfind(b"<c", floor, c)
        if c < 0:
            continue
        gt = xml.find(b">", c, f)
        if gt < 0 or xml[gt - 1] == 0x2F or xml[gt + 1 : f].strip():  # <c .../>, or <f> is not its first child
            continue
        ref = _REF_ATTR.search(xml, c + 2, gt)
        if ref is None:
            continue
        f_end = xml.find(b">", f)
        if f_end < 0:
            break  # no tag ends after this one: malformed, and so is every later <f>
        if xml[f_end - 1] == 0x2F:  # <f .../>: a shared formula's other cells
            text = b""
        else:
            close = xml.find(b"</f>", f_end) if closing else -1
            closing = close >= 0
            text = xml[f_end + 1 : close] if close >= 0 else b""
        refs.append(ref.group(1))
        texts.append(text)
    if not refs:
        return {}
    cells = b"\n".join(refs).decode("ascii").split("\n")
    joined = b"\x00".join(texts)
    if joined.count(b"\x00") == len(texts) - 1:  # decoded in one go (a sheet has hundreds of formulas)
        return dict(zip(cells, joined.decode("utf-8", "replace").split("\x00")))
    return {cell: text.decode("utf-8", "replace") for cell, text in zip(cells, texts)}  # a NUL in a formula


# Any attribute value that could name a TCVN3 (".Vn…") or VNI ("VNI-…") font: only then are the styles parsed.
_LEGACY_FONT_HINT = re.compile(rb"""["']\s*(?:\.[vV][nN]|[vV][nN][iI][-_ ])""")


def _scan_xlsx(
    path: Path, sheet_names: set[str], data: bytes | None = None, members: dict[str, zipfile.ZipInfo] | None = None
) -> dict[str, SheetScan]:
    """Formulas and text-cell fonts of the named sheets (xlsx/xlsm only; the file passed the safety checks).

    ``data`` and ``members``: the file's bytes and zip directory, when the safety gate already read them; the
    parts are then inflated straight from those bytes (:func:`toolkit.safety.read_member`)."""
    if data is not None and members:
        return _scan_parts(sheet_names, set(members), lambda name: read_member(data, members[name]))
    with zipfile.ZipFile(path) as z:
        return _scan_parts(sheet_names, set(z.namelist()), z.read)


def _scan_parts(sheet_names: set[str], names: set[str], read: Callable[[str], bytes]) -> dict[str, SheetScan]:
    out: dict[str, SheetScan] = {}
    wb = ET.fromstring(read("xl/workbook.xml"))
    rels_path = "xl/_rels/workbook.xml.rels"
    targets: dict[str, str] = {}
    if rels_path in names:
        for rel in ET.fromstring(read(rels_path)):
            target = rel.get("Target", "")
            target = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
            targets[rel.get("Id", "")] = target
    rid_attr = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    sheet_parts = {}
    for s in wb.iter(f"{{{NS['m']}}}sheet"):
        if s.get("name") in sheet_names:
            sheet_parts[s.get("name")] = targets.get(s.get(rid_attr, ""))
    # Fonts matter only for TCVN3/VNI text; when no such font is in the styles, a pass for formula cells over the
    # (already size-checked) sheet XML is enough, and several times faster than parsing it.
    fonts: list[str] = []
    xf_font: list[int] = []
    styles_xml = read("xl/styles.xml") if "xl/styles.xml" in names else b""
    if _LEGACY_FONT_HINT.search(styles_xml):
        styles = ET.fromstring(styles_xml)
        font_el = styles.find("m:fonts", NS)
        if font_el is not None:
            for f in font_el.findall("m:font", NS):
                n = f.find("m:name", NS)
                fonts.append(n.get("val", "") if n is not None else "")
        xfs = styles.find("m:cellXfs", NS)
        if xfs is not None:
            xf_font = [int(x.get("fontId", 0)) for x in xfs.findall("m:xf", NS)]
    need_fonts = any(detect_legacy_font(f) for f in fonts)
    for sheet, part in sheet_parts.items():
        scan = SheetScan()
        if not part or part not in names:
            continue
        xml = read(part)
        if need_fonts:
            parser = ET.XMLParser(target=_ScanTarget(scan, xf_font, fonts))
            parser.feed(xml)
            parser.close()
        else:
            scan.formulas = _formula_cells(xml)
            scan.escaped = True
        out[sheet] = scan
    return out


# ---------------------------------------------------------------------------------------- the reader


class _Grid:
    """A sheet's values as a 1-based grid."""

    def __init__(self, rows: list[list[Any]]) -> None:
        self.rows = rows

    def get(self, row: int, col: int) -> Any:
        if row >= 1 and col >= 1:
            try:
                v = self.rows[row - 1][col - 1]
            except IndexError:
                return None
            return None if v == "" else v
        return None

    def text(self, row: int, col: int) -> str:
        v = self.get(row, col)
        return "" if v is None else str(v)


def _read_metadata(wb) -> dict[str, Any]:
    sheet = wb.get_sheet_by_name(META_SHEET)
    meta: dict[str, Any] = {"cells": {}}
    for row in sheet.to_python():
        if len(row) < 2 or not isinstance(row[0], str):
            continue
        key, value = row[0], row[1]
        if key.startswith("cells:"):
            meta["cells"][key[6:]] = parse_cell_map(str(value))
        elif key:
            meta[key] = "" if value is None else str(value)
    forms = {}
    for item in str(meta.get("forms", "")).split(","):
        form_id, _, version = item.partition("@")
        if form_id:
            forms[form_id] = int(version) if version.isdigit() else None
    meta["form_versions"] = forms
    return meta


def _annex_of(grid: _Grid) -> str | None:
    for r in range(1, 12):
        for c in range(1, 12):
            m = re.match(r"^phu luc (so )?0?(\d+)$", fold(grid.text(r, c)))
            if m:
                return m.group(2).zfill(2)
    return None


def _guess_form(grid: _Grid, sheet_name: str, forms: dict[str, Form]) -> Form | None:
    """Recognise a form from visible labels only: the sheet name, the annex number, indicator labels."""
    for form in forms.values():
        if fold(sheet_name) == fold(form.sheet):
            return form
    annex = _annex_of(grid)
    if annex:
        for form in forms.values():
            if form.annex == annex:
                return form
    labels = {fold(grid.text(r, c)) for r in range(1, len(grid.rows) + 1) for c in (1, 2, 3)}
    best, score = None, 0
    for form in forms.values():
        keys = {fold(i.label) for i in form.indicators} | {fold(c.label) for c in form.columns}
        hit = len(keys & labels)
        if hit > score and hit >= max(3, len(keys) // 3):
            best, score = form, hit
    return best


def _locate_rows(grid: _Grid, form: Form, expected: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    """Where each indicator's row is, found by its label in column B (in order: labels may repeat)."""
    # The common case, decided without folding every row: each label on its expected row, in order.
    last = 0
    for ind in form.indicators:
        exp = expected.get(ind.code)
        if exp is None or exp <= last or fold(grid.text(exp, 2)) != fold(ind.label):
            break
        last = exp
    else:
        return {ind.code: expected[ind.code] for ind in form.indicators}, []
    found: dict[str, int] = {}
    moved: list[str] = []
    labels = [fold(grid.text(r, 2)) for r in range(1, len(grid.rows) + 1)]
    cursor = 0
    for ind in form.indicators:
        key = fold(ind.label)
        exp = expected.get(ind.code)
        if exp is not None and exp - 1 < len(labels) and labels[exp - 1] == key and exp - 1 >= cursor:
            found[ind.code] = exp
            cursor = exp
            continue
        try:
            idx = labels.index(key, cursor)
        except ValueError:
            if exp is not None:
                found[ind.code] = exp  # label changed or gone: read where it should be, and say so
                moved.append(f"không thấy dòng “{ind.label}” (dự kiến ở dòng {exp})")
            continue
        found[ind.code] = idx + 1
        cursor = idx + 1
        if exp is not None and idx + 1 != exp:
            moved.append(f"dòng “{ind.label}” chuyển từ dòng {exp} sang dòng {idx + 1}")
    return found, moved


_PERIOD_HEADING = re.compile(r"^(nam \d{4}|quy [ivx]+/\d{4}|\d{1,2}? ?thang.*\d{4})$")


def _headings_in_place(grid: _Grid, form: Form, rnd: Round, expected: dict[tuple[str, str], int]) -> bool:
    """Whether every (period, field) heading is where the template put it: the period's label above its first
    column (row HEADER_ROW), each field's label under it (the next row)."""
    first: dict[str, int] = {}
    for (period, fld), col in expected.items():
        if fold(grid.text(HEADER_ROW + 1, col)) != fold(form.field_labels.get(fld, "\x00")):
            return False
        first[period] = min(first.get(period, col), col)
    labels = {p.id: fold(p.label) for p in rnd.periods}
    return all(p in labels and fold(grid.text(HEADER_ROW, col)) == labels[p] for p, col in first.items())


def _other_periods(grid: _Grid, rnd: Round) -> list[str]:
    """Headings that name a period (“Năm 2023”, “Quý I/2024”…) other than this round's."""
    ours = {fold(p.label) for p in rnd.periods}
    out = []
    for r in range(max(1, HEADER_ROW - 4), HEADER_ROW + 4):
        for text in grid.rows[r - 1] if r <= len(grid.rows) else ():
            if text and isinstance(text, str):
                key = fold(text)
                if key not in ours and _PERIOD_HEADING.match(key):
                    out.append(text)
    return out


def _locate_columns(grid: _Grid, form: Form, rnd: Round, expected: dict[tuple[str, str], int]):
    """Where each (period, field) column is, found by the period and field headings."""
    if expected and _headings_in_place(grid, form, rnd, expected):  # the common case
        return dict(expected), [], _other_periods(grid, rnd)
    found: dict[tuple[str, str], int] = {}
    moved: list[str] = []
    unknown_periods: list[str] = []
    period_keys = {fold(p.label): p for p in rnd.periods}
    field_keys = {fold(lbl): f for f, lbl in form.field_labels.items()}
    heading_rows = range(max(1, HEADER_ROW - 4), HEADER_ROW + 4)
    heading_at: dict[str, int] = {}  # period id -> the column of its heading
    field_row = HEADER_ROW + 1  # the row of the field headings (Tổng số, Nam, Nữ), where the periods' were found
    for r in heading_rows:
        width = len(grid.rows[r - 1]) if r <= len(grid.rows) else 0
        starts = []  # (column, period or None) of each period heading in the row, left to right
        for c in range(1, width + 1):
            text = grid.text(r, c)
            if not text:
                continue
            key = fold(text)
            period = period_keys.get(key)
            if period is None and _PERIOD_HEADING.match(key):
                unknown_periods.append(text)
            if period is not None or _PERIOD_HEADING.match(key):
                starts.append((c, period))
        for i, (c, period) in enumerate(starts):
            if period is None:
                continue
            heading_at.setdefault(period.id, c)
            field_row = r + 1
            # a period's fields are under it, up to the next period's heading (a deleted column must not make
            # a field of the next period look like this one's)
            end = starts[i + 1][0] if i + 1 < len(starts) else c + 6
            for cc in range(c, min(end, c + 6)):
                fld = field_keys.get(fold(grid.text(r + 1, cc)))
                if fld and (period.id, fld) not in found:
                    found[(period.id, fld)] = cc
    if heading_at:
        # A period whose heading is gone (its first column, holding the merged heading, deleted): its fields are
        # the field headings between the previous period's last column and the next period's heading.
        order = [p.id for p in rnd.periods]
        for i, pid in enumerate(order):
            if pid in heading_at:
                continue
            before = [col for (p, _), col in found.items() if p in order[:i]]
            after = [heading_at[p] for p in order[i + 1 :] if p in heading_at]
            mine = [col for (p, _), col in expected.items() if p == pid]
            lo = max(before) + 1 if before else min(mine, default=1)
            hi = min(after) if after else lo + 6
            for cc in range(lo, min(hi, lo + 6)):
                fld = field_keys.get(fold(grid.text(field_row, cc)))
                if fld and (pid, fld) not in found:
                    found[(pid, fld)] = cc
    claimed = set(found.values())
    for key, col in expected.items():
        if key not in found:
            # Heading changed: read where it should be, and say so. Gone (its place holds another column, found by
            # its heading, or another heading such as the check column's): 0, nothing is read from it (see
            # _read_indicator_form).
            there, above = fold(grid.text(field_row, col)), fold(grid.text(field_row - 1, col))
            gone = (
                col in claimed
                or bool(there and there != fold(form.field_labels[key[1]]))
                or bool(above and above not in period_keys)  # a heading over two rows, e.g. “Kiểm tra”
            )
            found[key] = 0 if gone else col
            if not gone:
                period = next(p.label for p in rnd.periods if p.id == key[0])
                moved.append(
                    f"không thấy cột “{form.field_labels[key[1]]} – {period}” (dự kiến ở cột {col_letter(col)})"
                )
        elif found[key] != col:
            period = next(p.label for p in rnd.periods if p.id == key[0])
            moved.append(
                f"cột “{form.field_labels[key[1]]} – {period}” chuyển từ cột {col_letter(col)} sang cột {col_letter(found[key])}"
            )
    return found, moved, unknown_periods


_INDICATORS: dict[int, tuple[Form, dict]] = {}


def _indicator(form: Form, code: str):
    """``form.indicator(code)`` through a per-form index (``Form.indicator`` scans a rebuilt list every call)."""
    entry = _INDICATORS.get(id(form))
    if entry is None or entry[0] is not form:
        index: dict = {}
        for ind in form.indicators:
            index.setdefault(ind.code, ind)  # the first one wins, as in Form.indicator
        entry = _INDICATORS[id(form)] = (form, index)
    return entry[1][code]


def _number(
    sub: Submission, cell: InputCell, address: str, sheet: str, raw: Any, scan: SheetScan | None, form: Form
) -> Value:
    ind = _indicator(form, cell.indicator)
    where = dict(form=form.id, sheet=sheet, cell=address, indicator=ind.code, field=cell.field, period=cell.period)
    value = Value(form.id, sheet, address, ind.code, cell.field, cell.period, None, raw)
    formula = scan.formulas.get(address) if scan else None
    if formula is not None and scan.escaped:
        formula = html.unescape(formula)
    if formula is not None:
        cached = raw not in (None, "")
        sub.findings.append(
            Finding(
                "formula-in-input",
                f"Ô {address} (trang {sheet}) chứa công thức “={formula}” thay vì số liệu. "
                + (
                    "Đã dùng kết quả đã lưu của công thức; hãy thay bằng số liệu nhập tay."
                    if cached
                    else "Công thức không có kết quả đã lưu nên không đọc được số liệu; hãy nhập số liệu trực tiếp."
                ),
                severity=WARNING if cached else ERROR,
                value=f"={formula}",
                **where,
            )
        )
        if not cached:
            value.status = "invalid"
            return value
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        value.status = "missing"
        return value
    if isinstance(raw, bool) or isinstance(raw, (dt.date, dt.datetime, dt.time, dt.timedelta)):
        sub.findings.append(
            Finding(
                "not-a-number",
                f"Ô {address} (trang {sheet}) chứa “{raw}”, không phải là số. Hãy nhập số liệu bằng số.",
                value=str(raw),
                **where,
            )
        )
        value.status = "invalid"
        return value
    if isinstance(raw, str):
        text, _ = normalise_text(raw)
        reading = parse_number_text(text)
        if reading.kind == "integer" or (
            reading.kind in ("decimal",)
            and len(reading.readings) <= 1
            and reading.value is not None
            and ind.value == "money"
        ):
            sub.findings.append(
                Finding(
                    "number-as-text",
                    f"Ô {address} (trang {sheet}) chứa số “{text}” được gõ dạng chữ; đã đọc là {_fmt(reading.value)}. "
                    "Hãy định dạng ô là số và nhập lại để tránh nhầm lẫn.",
                    value=text,
                    expected=reading.value,
                    **where,
                )
            )
            raw = reading.value
        elif reading.kind == "not-number" or reading.value is None and not reading.readings:
            sub.findings.append(
                Finding(
                    "not-a-number",
                    f"Ô {address} (trang {sheet}) chứa “{text}”, không phải là số. "
                    "Hãy nhập số liệu bằng số (nếu bằng 0 thì nhập 0, nếu chưa có thì để trống).",
                    value=text,
                    **where,
                )
            )
            value.status = "invalid"
            return value
        else:
            if len(reading.readings) > 1:
                options = " hoặc ".join(_reading_text(text, label, v) for label, v in reading.readings)
                how = f"có thể là {options}"
            else:
                options = "; ".join(f"{label}: {_fmt(v)}" for label, v in reading.readings)
                how = f"không phải số nguyên ({options})"
            sub.findings.append(
                Finding(
                    "not-a-number",
                    f"Ô {address} (trang {sheet}) chứa “{text}” dạng chữ, {how}. "
                    "Hãy nhập lại bằng số, không dùng dấu chấm hay dấu phẩy phân cách hàng nghìn.",
                    value=text,
                    expected=options,
                    **where,
                )
            )
            value.status = "invalid"
            return value
    number = float(raw)
    if ind.value == "count" and number != int(number):
        sub.findings.append(
            Finding(
                "not-integer",
                f"Ô {address} (trang {sheet}): “{ind.label}” là số {ind.unit}, phải là số nguyên, nhưng đang là "
                f"{_fmt_exact(number)}. Hãy kiểm tra lại.",
                value=number,
                **where,
            )
        )
        value.status = "invalid"
        return value
    value.value = number
    return value


def _reading_text(text: str, label: str, value: float) -> str:
    """One reading of an ambiguous number typed as text, said with the role it gives the separator in the text:
    "18975 (nếu dấu chấm phân cách hàng nghìn)", "18,975 (nếu dấu chấm là dấu thập phân)"."""
    sep = "dấu chấm" if "." in text else "dấu phẩy"
    groups = (sep == "dấu chấm") == (label == READING_VN)
    role = "phân cách hàng nghìn" if groups else "là dấu thập phân"
    shown = str(int(value)) if float(value).is_integer() else f"{value}".replace(".", ",")
    return f"{shown} (nếu {sep} {role})"


def _fmt_exact(v: float) -> str:
    """A number as stored, every digit shown (14.0000000001 is not “14”), with the Vietnamese decimal comma."""
    text = _fmt(v)
    if float(text.replace(".", "").replace(",", ".")) == v:
        return text
    return repr(float(v)).replace(".", ",")


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int):
        return f"{v:,}".replace(",", ".")
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".").replace(",", "§").replace(".", ",").replace("§", ".")
    return str(v)


def _text_value(
    sub: Submission, raw: Any, address: str, sheet: str, form: Form, code: str, scan: SheetScan | None
) -> Any:
    if raw is None:
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    font = scan.fonts.get(address) if scan else None
    legacy = detect_legacy_font(font)
    if legacy:
        converted = convert_by_font(text, font) or text
        if converted != text:
            sub.findings.append(
                Finding(
                    "legacy-encoding",
                    f"Ô {address} (trang {sheet}) được gõ bằng phông {scan.fonts[address]} ({legacy.upper()}); đã chuyển "
                    f"“{text}” thành “{converted}”. Hãy dùng phông Unicode (Times New Roman) cho lần sau.",
                    form=form.id,
                    sheet=sheet,
                    cell=address,
                    indicator=code,
                    value=text,
                    expected=converted,
                )
            )
            text = converted
    text, _ = normalise_text(text)
    return text


@lru_cache(maxsize=64)
def _cells_from_map(form: Form, periods: tuple[str, ...], meta_map: tuple) -> list[InputCell]:
    """The file says where its figures are (an older template version may differ from today's layout)."""
    by_key = {(c.indicator, c.field, c.period): c for c in form.layout(periods).inputs}
    cells = []
    for code, fld, period, address in meta_map:
        if (code, fld, period) in by_key:
            row, col = split_cell(address)
            cells.append(InputCell(form.id, code, fld, period, row, col, by_key[(code, fld, period)].kind))
    return cells


def _read_indicator_form(
    sub: Submission, form: Form, grid: _Grid, sheet: str, rnd: Round, meta: dict, scan: SheetScan | None
) -> None:
    periods = tuple(p.id for p in rnd.periods)
    layout = form.layout(periods)
    meta_map = meta.get("cells", {}).get(form.id) if meta else None
    cells = _cells_from_map(form, periods, meta_map) if meta_map else list(layout.inputs)
    expected_rows = {}
    for c in cells:
        expected_rows.setdefault(c.indicator, c.row)
    expected_cols = {(c.period, c.field): c.col for c in cells}
    rows, moved_rows = _locate_rows(
        grid,
        form,
        expected_rows | {i.code: layout.row_of[i.code] for i in form.indicators if i.code not in expected_rows},
    )
    cols, moved_cols, unknown_periods = _locate_columns(grid, form, rnd, expected_cols)
    moved = moved_rows + moved_cols
    if unknown_periods and not any(fold(p.label) in {fold(u) for u in unknown_periods} for p in rnd.periods):
        sub.findings.append(
            Finding(
                "round-mismatch",
                f"Trang {sheet} báo cáo kỳ “{', '.join(dict.fromkeys(unknown_periods))}”, không phải kỳ của đợt này "
                f"({', '.join(p.label for p in rnd.periods)}). Hãy dùng đúng biểu mẫu của đợt báo cáo này.",
                form=form.id,
                sheet=sheet,
            )
        )
    if moved:
        sub.findings.append(
            Finding(
                "structure-changed",
                f"Cấu trúc trang {sheet} đã bị thay đổi: {'; '.join(moved[:6])}"
                + (f" (và {len(moved) - 6} thay đổi khác)" if len(moved) > 6 else "")
                + ". Số liệu vẫn được đọc theo tên chỉ tiêu; hãy dùng biểu mẫu gốc, không chèn, xóa hay di chuyển dòng, cột.",
                form=form.id,
                sheet=sheet,
            )
        )
    gone = list(dict.fromkeys((c.period, c.field) for c in cells if cols.get((c.period, c.field)) == 0))
    if gone:
        labels = {p.id: p.label for p in rnd.periods}
        names = ", ".join(f"“{form.field_labels[fld]} – {labels.get(per, per)}”" for per, fld in gone)
        sub.findings.append(
            Finding(
                "structure-changed",
                f"Trang {sheet} không còn cột {names} (có thể đã bị xóa) nên không đọc được số liệu của "
                f"{'cột' if len(gone) == 1 else 'các cột'} này. Hãy dùng biểu mẫu gốc, không xóa cột, rồi gửi lại.",
                severity=ERROR,
                form=form.id,
                sheet=sheet,
            )
        )
    formulas = scan.formulas if scan else {}
    values, grid_rows, form_id = sub.values, grid.rows, form.id
    for c in cells:
        row = rows.get(c.indicator, c.row)
        col = cols.get((c.period, c.field), c.col)
        if col == 0:  # the column is gone: said once above
            values.append(Value(form_id, sheet, c.address, c.indicator, c.field, c.period, None, None, "invalid"))
            continue
        address = c.address if (row == c.row and col == c.col) else f"{col_letter(col)}{row}"
        try:
            raw = grid_rows[row - 1][col - 1] if row >= 1 and col >= 1 else None
        except IndexError:
            raw = None
        if type(raw) is float and address not in formulas and (c.kind != "count" or raw.is_integer()):
            # the common case: a number typed into an input cell
            values.append(Value(form_id, sheet, address, c.indicator, c.field, c.period, raw, raw))
            continue
        values.append(_number(sub, c, address, sheet, None if raw == "" else raw, scan, form))


def _read_schedule_form(sub: Submission, form: Form, grid: _Grid, sheet: str, scan: SheetScan | None) -> None:
    layout = form.layout(())
    cols = {col.code: layout.col_of[(col.code, "")] for col in form.columns}
    # Headings may have moved: find them in the heading row by label.
    heading = {fold(grid.text(HEADER_ROW, c)): c for c in range(1, 20)}
    moved = []
    for col in form.columns:
        at = heading.get(fold(col.label))
        if at and at != cols[col.code]:
            moved.append(f"cột “{col.label}” chuyển từ cột {col_letter(cols[col.code])} sang cột {col_letter(at)}")
            cols[col.code] = at
    if moved:
        sub.findings.append(
            Finding(
                "structure-changed",
                f"Cấu trúc trang {sheet} đã bị thay đổi: {'; '.join(moved)}. "
                "Số liệu vẫn được đọc theo tên cột; hãy dùng biểu mẫu gốc.",
                form=form.id,
                sheet=sheet,
            )
        )
    row = layout.first_row
    limit = layout.first_row + 200
    while row < limit:
        values: dict[str, Any] = {}
        cells: dict[str, str] = {}
        for col in form.columns:
            if col.type == "seq":
                continue
            address = f"{col_letter(cols[col.code])}{row}"
            cells[col.code] = address
            raw = grid.get(row, cols[col.code])
            formula = scan.formulas.get(address) if scan else None
            if formula is not None:
                _schedule_formula(sub, form, sheet, address, col.code, formula, raw, scan)
            if col.type == "date":
                values[col.code] = _date_value(sub, form, sheet, address, col.code, raw)
            else:
                values[col.code] = _text_value(sub, raw, address, sheet, form, col.code, scan)
        seq = grid.get(row, cols.get("tt", 1))
        is_row = isinstance(seq, (int, float)) or any(v not in (None, "") for v in values.values())
        if not is_row:
            break
        # the footnote line below the table is not a schedule row
        if not isinstance(seq, (int, float)) and fold(str(values.get("commune") or "")).startswith(
            "thoi gian lam viec"
        ):
            break
        sub.schedule.append(ScheduleRow(form.id, sheet, row, values, cells))
        row += 1


_DATE_TEXT = (
    (re.compile(r"^(?:ngày\s*)?(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4})$", re.IGNORECASE), (3, 2, 1)),
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), (1, 2, 3)),
)


def parse_date_text(text: str) -> dt.date | None:
    """A date typed as text as people write it in Vietnam: ``13/06/2024``, ``13/6/2024``, ``13-06-2024``,
    ``13.06.2024``, ``ngày 13/6/2024``, or ISO ``2024-06-13``; None for anything else (or a day that does not
    exist)."""
    text = text.strip()
    for pattern, (y, m, d) in _DATE_TEXT:
        match = pattern.match(text)
        if match:
            try:
                return dt.date(int(match.group(y)), int(match.group(m)), int(match.group(d)))
            except ValueError:
                return None
    return None


def _date_value(sub: Submission, form: Form, sheet: str, address: str, code: str, raw: Any) -> Any:
    """A schedule date: a date cell as is; a date typed as text read with a warning; anything else an error."""
    if isinstance(raw, dt.datetime):
        return raw.date()
    if raw is None or isinstance(raw, dt.date) or (isinstance(raw, str) and not raw.strip()):
        return raw
    where = dict(form=form.id, sheet=sheet, cell=address, indicator=code)
    text = raw.strip() if isinstance(raw, str) else _fmt(raw)
    day = parse_date_text(raw) if isinstance(raw, str) else None
    if day is not None:
        sub.findings.append(
            Finding(
                "date-as-text",
                f"Ô {address} (trang {sheet}) chứa ngày “{text}” được gõ dạng chữ; đã đọc là ngày {day:%d/%m/%Y}. "
                "Hãy chọn ngày trong ô (ô định dạng ngày) để tránh nhầm lẫn.",
                severity=WARNING,
                value=text,
                expected=day.isoformat(),
                **where,
            )
        )
        return day
    sub.findings.append(
        Finding(
            "not-a-date",
            f"Ô {address} (trang {sheet}) chứa “{text}”, không phải là ngày. Hãy nhập ngày dạng ngày/tháng/năm, "
            "ví dụ 20/05/2024.",
            value=text,
            **where,
        )
    )
    return text


def _schedule_formula(
    sub: Submission, form: Form, sheet: str, address: str, code: str, formula: str, raw: Any, scan: SheetScan
) -> None:
    """A formula typed into a schedule cell: its saved result is used (a blank when it has none), and said."""
    if scan.escaped:
        formula = html.unescape(formula)
    if raw in (None, ""):
        outcome = "Công thức không có kết quả đã lưu nên ô được coi là trống"
    else:
        shown = raw.strftime("%d/%m/%Y") if isinstance(raw, dt.datetime) else _fmt(raw)
        outcome = f"Đã dùng kết quả đã lưu của công thức (“{shown}”)"
    sub.findings.append(
        Finding(
            "formula-in-input",
            f"Ô {address} (trang {sheet}) chứa công thức “={formula}” thay vì nội dung nhập tay. {outcome}; hãy gõ "
            "trực tiếp nội dung vào ô.",
            severity=WARNING,
            form=form.id,
            sheet=sheet,
            cell=address,
            indicator=code,
            value=f"={formula}",
        )
    )


def _unit_from_labels(grids: list[_Grid], rnd: Round) -> str | None:
    for grid in grids:
        for r in range(1, 12):
            for c in range(1, 4):
                text = grid.text(r, c)
                if fold(text).startswith("don vi bao cao"):
                    m = re.search(r"\(mã\s*(\d+)\)", text)
                    if m:
                        return m.group(1)
                    name = fold_place(text.split(":", 1)[-1])
                    for unit in rnd.units:
                        if fold_place(unit.name) == name or fold_place(unit.short_name) == name:
                            return unit.code
    return None


def read_submission(path: str | Path, rnd: Round, safety: SafetyResult | None = None) -> Submission:
    """Read one returned workbook. Never raises for a bad workbook: problems become findings.

    ``safety``: the file's :func:`~toolkit.safety.inspect_workbook` result when the caller already has it
    (``keep_data=True``: the bytes are then not read again)."""
    path = Path(path)
    if safety is None:
        safety = inspect_workbook(path, keep_data=True)
    sub = Submission(path=path, size=safety.size, sha256=safety.sha256, modified=safety.modified, format=safety.format)
    if safety.finding is not None:
        sub.readable = False
        sub.findings.append(safety.finding)
        return sub
    try:
        _read_workbook(sub, rnd, safety.data, safety.members)
    except python_calamine.PasswordError:
        sub.readable = False
        sub.findings.append(
            Finding(
                "file-encrypted",
                f"Tệp {path.name} có mật khẩu nên không đọc được. Hãy gỡ mật "
                "khẩu (Tệp → Thông tin → Bảo vệ sổ làm việc) rồi gửi lại.",
            )
        )
    except Exception as exc:  # noqa: BLE001 - a broken workbook is a finding, never a traceback
        sub.readable = False
        sub.values.clear()
        sub.schedule.clear()
        sub.findings.append(
            Finding(
                "file-unreadable",
                f"Không đọc được tệp {path.name}: tệp bị hỏng hoặc không "
                f"phải bảng tính Excel ({type(exc).__name__}). Hãy mở tệp bằng Excel, lưu lại "
                "dạng .xlsx rồi gửi lại.",
                value=str(exc)[:200],
            )
        )
    return sub


def _read_workbook(
    sub: Submission, rnd: Round, data: bytes | None = None, members: dict[str, zipfile.ZipInfo] | None = None
) -> None:
    forms = available_forms()
    if data is not None:  # the bytes the safety gate read and hashed: what is read is what was checked
        wb = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    else:
        wb = python_calamine.CalamineWorkbook.from_path(str(sub.path))
    try:
        names = wb.sheet_names
        meta = _read_metadata(wb) if META_SHEET in names else {}
        form_sheets: dict[str, str] = {}
        grids: dict[str, _Grid] = {}

        def grid_of(name: str) -> _Grid:
            if name not in grids:
                grids[name] = _Grid(wb.get_sheet_by_name(name).to_python(skip_empty_area=False))
            return grids[name]

        if meta.get("form_versions"):
            sub.recognised_by = "metadata"
            sub.forms = dict(meta["form_versions"])
            for form_id in list(sub.forms):
                form = forms.get(form_id)
                if form is None:
                    continue
                if form.sheet in names:
                    form_sheets[form_id] = form.sheet
                else:  # the sheet was renamed: find it by its annex number / labels
                    for name in names:
                        if name not in (META_SHEET, LIST_SHEET, GUIDE_SHEET) and _guess_form(
                            grid_of(name), name, {form_id: form}
                        ):
                            form_sheets[form_id] = name
                            break
                    else:  # the sheet was deleted: the file does not hold this form (a missing form, said below)
                        del sub.forms[form_id]
        else:
            for name in names:
                if name in (META_SHEET, LIST_SHEET) or fold(name) == fold(GUIDE_SHEET):
                    continue
                form = _guess_form(grid_of(name), name, forms)
                if form and form.id not in form_sheets:
                    form_sheets[form.id] = name
                    sub.forms[form.id] = None
            if form_sheets:
                sub.recognised_by = "labels"
                sub.findings.append(
                    Finding(
                        "metadata-missing",
                        f"Tệp {sub.name} không còn trang nhận dạng của biểu mẫu (có thể số liệu đã được dán sang tệp khác "
                        f"hoặc trang bị xóa); biểu được nhận ra theo tên chỉ tiêu: {', '.join(sorted(form_sheets))}. "
                        "Lần sau hãy điền trực tiếp vào biểu mẫu Sở gửi.",
                    )
                )
        if not form_sheets:
            sub.findings.append(
                Finding(
                    "unknown-template",
                    f"Tệp {sub.name} không phải biểu mẫu của đợt báo cáo này: không có trang nhận dạng và không thấy "
                    "trang nào giống Phụ lục 01, 02 hay 03. Hãy điền vào biểu mẫu Sở gửi rồi gửi lại.",
                )
            )
            return

        scans: dict[str, SheetScan] = {}
        if sub.format in ("xlsx", "xlsm"):
            scans = _scan_xlsx(sub.path, set(form_sheets.values()), data, members)

        # Which unit, which round.
        _identify(sub, rnd, meta, [grid_of(s) for s in form_sheets.values()])

        for form_id, sheet in sorted(form_sheets.items()):
            if form_id not in sub.forms:
                continue
            form = forms[form_id]
            found_version = sub.forms.get(form_id)
            if found_version is not None and found_version < form.version:
                sub.findings.append(
                    Finding(
                        "template-outdated",
                        f"Trang {sheet} dùng biểu {form.annex_label} phiên bản {found_version}, cũ hơn phiên bản hiện hành "
                        f"({form.version}). Số liệu vẫn được đọc theo mã chỉ tiêu; lần sau hãy dùng biểu mẫu mới.",
                        form=form_id,
                        sheet=sheet,
                    )
                )
            grid = grid_of(sheet)
            if form.kind == "schedule":
                _read_schedule_form(sub, form, grid, sheet, scans.get(sheet))
            else:
                _read_indicator_form(sub, form, grid, sheet, rnd, meta, scans.get(sheet))
    finally:
        wb.close()


def _identify(sub: Submission, rnd: Round, meta: dict, grids: list[_Grid]) -> None:
    meta_code = meta.get("unit_code") or None
    m = re.match(r"^(\d{3,5})(?:[_\-\s.]|$)", sub.path.stem)
    name_code = m.group(1) if m else None
    label_code = _unit_from_labels(grids, rnd)
    if name_code and (meta_code or label_code) and rnd.unit(name_code) is None:
        name_code = None  # "2024_bao-cao.xlsx": a year or a number in the name, not a unit's code
    candidates = {
        k: v
        for k, v in (("trang nhận dạng", meta_code), ("tên tệp", name_code), ("dòng “Đơn vị báo cáo”", label_code))
        if v
    }
    code = meta_code or label_code or name_code
    sub.unit_code = code
    unit = rnd.unit(code) if code else None
    sub.unit_name = unit.name if unit else (meta.get("unit_name") or None)
    if meta.get("round_id") and meta["round_id"] != rnd.id:
        sub.findings.append(
            Finding(
                "round-mismatch",
                f"Tệp {sub.name} là biểu mẫu của đợt “{meta['round_id']}”, không phải đợt “{rnd.id}” ({rnd.title}). "
                "Hãy điền số liệu vào biểu mẫu của đợt này rồi gửi lại.",
                value=meta["round_id"],
                expected=rnd.id,
            )
        )
    if code is None:
        sub.findings.append(
            Finding(
                "unit-mismatch",
                f"Không xác định được tệp {sub.name} của đơn vị nào (không có trang nhận dạng, tên tệp không bắt đầu bằng "
                "mã đơn vị). Hãy dùng biểu mẫu Sở gửi cho đơn vị mình, hoặc đặt tên tệp theo dạng <mã đơn vị>_<tên>.xlsx.",
            )
        )
        return
    if len(set(candidates.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in candidates.items())
        sub.findings.append(
            Finding(
                "unit-mismatch",
                f"Tệp {sub.name} ghi các mã đơn vị khác nhau ({detail}). Hãy kiểm tra đã dùng đúng biểu mẫu của đơn vị "
                "mình chưa rồi gửi lại.",
                value=detail,
                expected=code,
            )
        )
    if unit is None:
        sub.findings.append(
            Finding(
                "unit-mismatch",
                f"Mã đơn vị {code} của tệp {sub.name} không có trong danh sách đơn vị của đợt báo cáo. Hãy dùng biểu mẫu "
                "Sở gửi cho đơn vị mình.",
                value=code,
            )
        )
        return
    owed = set(unit.forms)
    present = set(sub.forms)
    for form_id in sorted(owed - present):
        sub.findings.append(
            Finding(
                "missing-form",
                f"Tệp {sub.name} của {unit.name} thiếu {available_forms()[form_id].annex_label} ({form_id}). "
                "Hãy bổ sung và gửi lại.",
                form=form_id,
            )
        )
    for form_id in sorted(present - owed):
        sub.findings.append(
            Finding(
                "unexpected-form",
                f"{unit.name} không phải nộp {form_id} trong đợt này; trang đó được bỏ qua.",
                form=form_id,
            )
        )
        sub.forms.pop(form_id, None)
