"""The province's summary workbook: a :class:`~toolkit.consolidate.Consolidation` written with XlsxWriter.

Every figure is a stored value (no formula needs recalculating before a reader sees a number); every text that
came from a return is written as text, never as a formula or a link. The file is written atomically and is the
same byte for byte when written again from the same consolidation.

Sheets: ``Tổng hợp <form>`` (the province's totals in the form's own layout), ``Theo đơn vị`` (indicator × unit),
``PL01 Lịch kiểm tra`` (the merged schedule, conflicts flagged), ``Tình hình nộp`` (who sent what, when),
``Lỗi và cảnh báo`` (every finding), ``Dữ liệu`` (the tidy table, an Excel table for pivot tables) and
``Biểu đồ`` (native charts of a few headline indicators by unit).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import zipfile
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import xlsxwriter
import xlsxwriter.utility
import xlsxwriter.workbook

from .consolidate import Consolidation, FormTotals, TidyTable, _why_excluded
from .findings import CATALOG, ERROR
from .forms import HEADER_ROW, Form, Indicator, available_forms
from .fsutil import atomic_file
from .read import Value
from .render import (
    FIXED_TIME,
    FONT,
    NA,
    _indicator_plan,
    _page_setup,
    _Sheet,
    _Styles,
    _write_header,
    _write_signature,
    close_workbook,
    fmt_date,
    form_title,
    new_workbook,
    periods_label,
    plan_line,
    write_indicator_headings,
    write_indicator_rows,
)
from .round import Round
from .rules import rules_for

STATUS_SHEET = "Tình hình nộp"
BY_UNIT_SHEET = "Theo đơn vị"
SCHEDULE_SHEET = "PL01 Lịch kiểm tra"
FINDINGS_SHEET = "Lỗi và cảnh báo"
DATA_SHEET = "Dữ liệu"
CHART_SHEET = "Biểu đồ"
DATA_TABLE = "DuLieu"

MISSING_FILL = "#F4B6B6"  # red: a unit that sent nothing
INVALID_FILL = "#F8CBAD"  # orange: a return with errors (its figures are not in the totals)
LATE_FILL = "#FFEB9C"  # yellow: received after the deadline
CONFLICT_FILL = "#F8CBAD"  # a schedule row that clashes with another or falls outside the window

STATE_LABELS = {
    "missing": "Chưa nộp",
    "invalid": "Có lỗi – chưa tổng hợp",
    "late": "Nộp muộn – đã tổng hợp",
    "ok": "Đúng hạn – đã tổng hợp",
    "not-owed": "Không phải nộp",
}
STATE_FILLS = {"missing": MISSING_FILL, "invalid": INVALID_FILL, "late": LATE_FILL}
SEVERITY_LABELS = {"error": "Lỗi", "warning": "Cảnh báo"}

# Indicators charted by unit on the chart sheet (indicator code, field), when the round has them.
HEADLINES: tuple[tuple[str, str], ...] = (("BG13R", "total"), ("TE07", "total"), ("TE09R", "total"))

DATA_COLUMNS: tuple[tuple[str, float], ...] = (
    ("Mã đơn vị", 10),
    ("Đơn vị", 24),
    ("Biểu", 7),
    ("Mã chỉ tiêu", 11),
    ("Chỉ tiêu", 48),
    ("Trường", 9),
    ("Kỳ", 12),
    ("Giá trị", 12),
    ("Tệp nguồn", 26),
    ("SHA-256", 20),
    ("Trang", 8),
    ("Ô", 7),
)


def round1(value: float) -> float:
    """A rate as shown: one decimal, halves rounded away from zero (as Excel displays them)."""
    return float(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def summary_sheet_name(form: Form) -> str:
    return f"Tổng hợp {form.id}"


def included_line(rnd: Round, codes: list[str]) -> str:
    """The line under a title that names exactly the units whose figures are in the sheet."""
    names = [_unit_name(rnd, c) for c in codes]
    if not names:
        return "Số liệu tổng hợp từ 0 đơn vị: chưa có đơn vị nào nộp số liệu hợp lệ."
    return f"Số liệu tổng hợp từ {len(names)} đơn vị: {', '.join(names)}."


def excluded_line(
    rnd: Round, excluded: dict[str, str], complete: str = "Đã tổng hợp đủ các đơn vị phải nộp biểu này."
) -> str:
    """The units owing the form whose figures are not in the sheet, and why."""
    if not excluded:
        return complete
    parts = [f"{_unit_name(rnd, c)} ({why})" for c, why in excluded.items()]
    return f"Chưa tổng hợp {len(parts)} đơn vị: {'; '.join(parts)}."


_UNIT_NAMES: tuple[Round, dict[str, str]] | None = None  # the last round's code -> name


def _unit_name(rnd: Round, code: str) -> str:
    """The unit's name, else its code. Looked up in a table of the round's names rather than with Round.unit (a
    linear search): a commune round names its thousands of units several times over."""
    global _UNIT_NAMES
    cached = _UNIT_NAMES
    if cached is None or cached[0] is not rnd:
        names: dict[str, str] = {}
        for unit in rnd.units:
            names.setdefault(unit.code, unit.name)  # the first unit of a code, as Round.unit finds it
        cached = _UNIT_NAMES = (rnd, names)
    name = cached[1].get(str(code))
    return code if name is None else name


# -------------------------------------------------------------------------------------------------- styles


class _SummaryStyles(_Styles):
    """The templates' styles plus cell formats made on demand (cached, so the file stays the same each run)."""

    BASE = {"font_name": FONT, "font_size": 12, "valign": "vcenter", "text_wrap": True}

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        super().__init__(wb)
        self._wb = wb
        self._cache: dict[tuple, object] = {}
        self.sheet_title = self.fmt(border=0, bold=True, font_size=14, text_wrap=False)
        self.sheet_note = self.fmt(border=0, italic=True, text_wrap=False)
        self.line = self.fmt(border=0, align="left", italic=True)
        self.block_title = self.fmt(border=0, bold=True, font_size=13, text_wrap=False)

    def fmt(self, **props) -> object:
        props = {**self.BASE, "border": 1, **props}
        if not props["border"]:
            del props["border"]
        key = tuple(sorted(props.items()))
        if key not in self._cache:
            self._cache[key] = self._wb.add_format(props)
        return self._cache[key]

    def value(self, kind: str, **props) -> object:
        num = {"count": "#,##0", "money": "#,##0.00", "rate": "0.0"}[kind]
        return self.fmt(align="right", num_format=num, italic=kind == "rate", **props)


def _lines(text: str, width_chars: float) -> int:
    return max(1, -(-len(text) // max(1, int(width_chars))))


def _line(ws, st: _SummaryStyles, row: int, last_col: int, text: str, width_chars: float, style=None) -> None:
    """A merged text line across the sheet, tall enough for its text."""
    ws.merge_range(row, 0, row, last_col, "", style or st.line)
    ws.write_string(row, 0, text, style or st.line)
    ws.set_row(row, 17 * _lines(text, width_chars * 1.15))


def _fit_row(ws, row: int, cells: list[tuple[str, float]]) -> None:
    """Make a row tall enough for its longest wrapped text ((text, column width) pairs)."""
    lines = max((_lines(text, width) for text, width in cells if text), default=1)
    if lines > 1:
        ws.set_row(row, 16.5 * lines)


def _working_page(ws, heading_row: int | None = None) -> None:
    """Print setup of a working sheet: A4 landscape, one page wide."""
    ws.set_landscape()
    ws.set_paper(9)
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.fit_to_pages(1, 0)
    if heading_row is not None:
        ws.repeat_rows(heading_row)
    ws.set_footer('&C&"Times New Roman"&10Trang &P/&N')


def _title(ws, st: _SummaryStyles, rnd: Round, title: str, note: str = "") -> int:
    """Title rows of a working sheet (not a form); returns the first free row."""
    ws.write_string(0, 0, title, st.sheet_title)
    ws.write_string(1, 0, f"{rnd.title} {plan_line(rnd)}", st.sheet_note)
    if note:
        ws.write_string(2, 0, note, st.sheet_note)
        return 4
    return 3


def _head_row(ws, st: _SummaryStyles, row: int, headings: list[tuple[str, float]]) -> None:
    for c, (text, width) in enumerate(headings):
        ws.write_string(row, c, text, st.head)
        ws.set_column(c, c, width)


# ------------------------------------------------------------------------------------ rows as ready XML


class _BulkSheet(_Sheet):
    """A worksheet some of whose rows are handed over as ready ``<row>`` XML (:meth:`bulk_row`); XlsxWriter writes
    its own rows around them, in row order.

    The summary's big tables (the tidy data table, some 100,000 rows of a dozen cells at province scale, and the
    indicator × unit matrix, a few hundred rows by as many units) would otherwise cost several microseconds a cell
    to store through ``write_*`` and as many again to write out: most of the summary's time. Their texts still go
    through the workbook's shared string table (:class:`_Cells`), so the file holds what XlsxWriter itself would
    write, cell for cell.
    """

    # runs of consecutive rows: [first row, number of rows, their XML (a list, or a function making it at close)]
    _bulk: list[list] | None = None

    def bulk_row(self, row: int, xml: str, last_col: int) -> None:
        """Row ``row`` (0-based) as a ``<row>`` element spanning columns 0..``last_col``; XlsxWriter holds no cell
        or setting of that row. Rows are handed over in ascending order."""
        runs = self._bulk
        if runs and isinstance(runs[-1][2], list) and runs[-1][0] + runs[-1][1] == row < self.xls_rowmax:
            runs[-1][2].append(xml)
            runs[-1][1] += 1
            self.dim_rowmax = max(self.dim_rowmax, row)
            if last_col > self.dim_colmax:
                self._check_dimensions(row, last_col)
            return
        self._add_run(row, 1, [xml], last_col)

    def bulk_rows(self, first: int, count: int, last_col: int, rows: Callable[[], Iterable[str]]) -> None:
        """Rows ``first``..``first + count - 1`` as ``<row>`` elements that ``rows()`` yields when the sheet is
        stored: while :func:`write_summary` stores the workbook they go straight into the sheet's zip entry, a few
        thousand at a time (:class:`_SummaryZipFile`), so the XML of a big table is never held in memory; otherwise
        (a plain ``close()``) into XlsxWriter's buffer of the sheet. Anything ``rows`` puts in the shared string
        table must already be there."""
        self._add_run(first, count, rows, last_col)

    def _add_run(self, first: int, count: int, source, last_col: int) -> None:
        if first + count > self.xls_rowmax:  # Excel would refuse the file (XlsxWriter drops such cells)
            raise OverflowError(f"{first + count} dòng, quá số dòng tối đa của một trang Excel ({self.xls_rowmax})")
        if self._bulk is None:
            self._bulk = []
        runs = self._bulk
        assert not runs or first >= runs[-1][0] + runs[-1][1], "rows in ascending order"
        runs.append([first, count, source])
        self._check_dimensions(first, 0)
        self._check_dimensions(first + count - 1, last_col)

    def _write_rows(self) -> None:
        runs = self._bulk
        if not runs:
            super()._write_rows()
            return
        first, last = self.dim_rowmin, self.dim_rowmax
        start = first
        write = self.fh.write
        try:
            for row, count, source in runs:
                assert not any(self.table.get(r) or r in self.row_info for r in range(row, row + count)), row
                if row > start:  # XlsxWriter's own rows before this run
                    self.dim_rowmin, self.dim_rowmax = start, row - 1
                    super()._write_rows()
                streams = getattr(_PACKAGE, "streams", None)
                if callable(source) and streams is not None:  # made while the zip entry is written
                    marker = f"{_STREAM_MARK}{len(streams)}\x00"
                    streams[marker.encode("ascii")] = (source, count)
                    write(marker)
                else:
                    written = 0
                    for xml in source() if callable(source) else source:
                        write(xml)
                        written += 1
                    assert written == count, (row, count, written)
                start = row + count
            if start <= last:
                self.dim_rowmin, self.dim_rowmax = start, last
                super()._write_rows()
        finally:
            self.dim_rowmin, self.dim_rowmax = first, last


_STR_MAX = 32767  # UTF-16 units of text Excel keeps in a cell (XlsxWriter truncates to it)


def _excel_text(text: str) -> str:
    if len(text) > _STR_MAX // 2 and len(text.encode("utf-16-le")) > 2 * _STR_MAX:
        return text.encode("utf-16-le")[: 2 * _STR_MAX].decode("utf-16-le", "ignore")
    return text


class _Cells:
    """Cell XML for :class:`_BulkSheet` rows, as XlsxWriter writes it: a text is an index into the workbook's
    shared string table (each distinct text looked up once), a number is written ``%.16G``, a blank cell carries
    only its style."""

    def __init__(self, ws: _BulkSheet) -> None:
        self.sst = ws.str_table
        self.index: dict[str, int] = {}
        self.extra = 0  # string cells not yet counted by the table (it counts each distinct text once)

    def si(self, text: str) -> int:
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = self.sst._get_shared_string_index(_excel_text(text))
        return i

    def text(self, ref: str, xf: int, text: str) -> str:
        self.extra += 1
        return f'<c r="{ref}" s="{xf}" t="s"><v>{self.si(text)}</v></c>'

    @staticmethod
    def number(ref: str, xf: int | None, value: float | None) -> str:
        if value is None:
            return f'<c r="{ref}" s="{xf}"/>' if xf is not None else ""
        return (
            f'<c r="{ref}" s="{xf}"><v>{value:.16G}</v></c>'
            if xf is not None
            else f'<c r="{ref}"><v>{value:.16G}</v></c>'
        )

    def done(self) -> None:
        """Count every string cell in the table's total, as ``write_string`` would have."""
        self.sst.count += self.extra - len(self.index)
        self.extra = len(self.index)


def _row_open(n: int, height: float | None = None) -> str:
    """``<row>`` of Excel row ``n``, with a custom height in points given as ``set_row`` would store it."""
    if height is None:
        return f'<row r="{n}">'
    return f'<row r="{n}" ht="{int(height * 4.0 / 3.0 + 0.5) * 0.75:.16g}" customHeight="1">'


# ------------------------------------------------------------------------------------ province totals


def _write_totals_sheet(wb, st: _SummaryStyles, cons: Consolidation, ft: FormTotals) -> None:
    rnd, form = cons.round, ft.form
    periods = tuple(p.id for p in rnd.periods)
    layout = form.layout(periods)
    last = layout.check_col - 2  # 0-based column of the last figure (the template's check column is dropped)
    ws = wb.add_worksheet(summary_sheet_name(form), worksheet_class=_Sheet)
    widths = [6, 56, 10] + [11] * (last - 2)
    for c, w in enumerate(widths):
        ws.set_column(c, c, w)
    _write_header(
        ws,
        st,
        rnd,
        None,
        form,
        last,
        f"Số liệu toàn {_province_kind(rnd)} {rnd.province_name} – kỳ báo cáo: {periods_label(rnd)}",
        unit_line=included_line(rnd, ft.units),
        title=f"TỔNG HỢP {form_title(form, rnd)}",
    )
    ws.set_row(8, 17 * _lines(included_line(rnd, ft.units), sum(widths) * 1.1))
    _line(ws, st, 9, last, excluded_line(rnd, ft.excluded), sum(widths))

    h = write_indicator_headings(ws, st, rnd, form, layout)
    for col, mark in enumerate(["A", "B", "C"] + [f"({i})" for i in range(1, last - 1)]):
        ws.write_string(h + 2, col, mark, st.numbering)

    where = {col - 1: key for key, col in layout.col_of.items()}  # 0-based column -> (period, field)
    rules = rules_for(form.id, periods)
    value_cells, _, _ = _indicator_plan(rules, layout, tuple((p.id, p.label) for p in rnd.periods))

    def values(r: int, ind) -> None:
        for c, kind, _formula in value_cells[ind.code]:
            period, fld = where[c]
            if kind == "rate":
                _number(ws, r, c, ft.rates.get((ind.code, period)), st.value("rate"), rate=True)
            elif kind in ("count", "money"):
                _number(ws, r, c, ft.totals.get((ind.code, fld, period)), st.value(kind), total=True)
            elif kind == "na":
                ws.write_string(r, c, NA, st.na)
            else:
                ws.write_blank(r, c, None, st.blank)

    write_indicator_rows(ws, st, form, layout, last, values)
    _write_signature(ws, st, rnd, layout.last_row + 1, last, place=rnd.place, signer="THỦ TRƯỞNG CƠ QUAN")
    _page_setup(ws, layout.first_row, (HEADER_ROW - 1, HEADER_ROW + 1), 3)


CENTRAL_CITIES = {"01", "31", "46", "48", "79", "92"}
"""GSO codes of the centrally-run cities (Hà Nội, Hải Phòng, Huế, Đà Nẵng, TP Hồ Chí Minh, Cần Thơ): “thành phố”,
not “tỉnh”."""


def _province_kind(rnd: Round) -> str:
    return "thành phố" if str(rnd.province_code).zfill(2) in CENTRAL_CITIES else "tỉnh"


def _number(ws, r: int, c: int, value: float | None, style, rate: bool = False, total: bool = False) -> None:
    """A stored number: a rate to one decimal; a total cleared of float noise (to 10⁻⁶, one đồng of a triệu)."""
    if value is None:
        ws.write_blank(r, c, None, style)
    else:
        ws.write_number(r, c, _shown(value, rate, total), style)


def _shown(value: float | None, rate: bool = False, total: bool = False) -> float | None:
    """The number stored for a figure (see :func:`_number`)."""
    if value is None:
        return None
    return round1(value) if rate else (round(value, 6) if total else value)


def _text(ws, r: int, c: int, value: str | None, style) -> None:
    """Text as text, never a formula or a link; an empty text is an empty cell."""
    if value:
        ws.write_string(r, c, value, style)
    else:
        ws.write_blank(r, c, None, style)


# ----------------------------------------------------------------------------------- indicator × unit


def _figure_rows(form: Form, periods: tuple[str, ...]):
    """(indicator, field, period) rows of the by-unit matrix: every input figure and every rate."""
    for ind in form.indicators:
        if not (ind.is_input or ind.is_rate):
            continue
        for period in periods:
            for fld in ("total",) if ind.is_rate else ind.fields:
                yield ind, fld, period


def _write_by_unit(wb, st: _SummaryStyles, cons: Consolidation) -> None:
    rnd = cons.round
    ws = wb.add_worksheet(BY_UNIT_SHEET, worksheet_class=_BulkSheet)
    cells = _Cells(ws)
    letters: list[str] = []
    periods = tuple(p.id for p in rnd.periods)
    period_label = {p.id: p.label for p in rnd.periods}
    fixed = [("Mã", 9), ("STT", 5), ("Chỉ tiêu", 50), ("Đơn vị tính", 10), ("Kỳ", 12), ("Chia theo", 9)]
    for c, (_, w) in enumerate(fixed):
        ws.set_column(c, c, w)
    width = max([len(ft.units) for ft in cons.forms.values()] + [0])
    ws.set_column(len(fixed), len(fixed) + width, 13)
    r = _title(ws, st, rnd, "SỐ LIỆU THEO ĐƠN VỊ", "Mỗi cột là một đơn vị đã được tổng hợp; cột cuối là toàn tỉnh.")
    blocks: list[tuple[int, int]] = []  # per form: its first row, its heading row
    for ft in cons.forms.values():
        form = ft.form
        last = len(fixed) + len(ft.units)
        ws.write_string(r, 0, f"{form.annex_label} – {form_title(form, rnd)}", st.block_title)
        _line(ws, st, r + 1, last, included_line(rnd, ft.units), 100)
        _line(ws, st, r + 2, last, excluded_line(rnd, ft.excluded), 100)
        h = r + 3
        blocks.append((r, h))
        for c, (text, _) in enumerate(fixed):
            ws.merge_range(h, c, h + 1, c, text, st.head)
        for i, code in enumerate(ft.units):
            ws.write_string(h, len(fixed) + i, _unit_name(rnd, code), st.head)
            ws.write_string(h + 1, len(fixed) + i, code, st.numbering)
        ws.merge_range(h, last, h + 1, last, "Toàn tỉnh", st.head)
        _fit_row(ws, h, [(_unit_name(rnd, code), 12) for code in ft.units])
        r = h + 2
        while len(letters) <= last:
            letters.append(xlsxwriter.utility.xl_col_to_name(len(letters)))
        stt, unitcol = st.stt._get_xf_index(), st.unitcol._get_xf_index()
        unit_cols = letters[len(fixed) : last]
        unit_figures = [ft.by_unit.get(code, {}) for code in ft.units]
        unit_rates = [ft.unit_rates.get(code, {}) for code in ft.units]
        for ind, fld, period in _figure_rows(form, periods):
            # Written as ready XML (see _BulkSheet): what write_string/write_number/set_row would store.
            n = r + 1
            lines = _lines(ind.label, fixed[2][1] - 4 * ind.depth - 2)
            label_xf = (st.label_indent if ind.depth else st.label)._get_xf_index()
            row = [
                _row_open(n, 16.5 * lines if lines > 1 else None),
                cells.text(f"A{n}", stt, ind.code),
                cells.text(f"B{n}", stt, ind.stt),
                cells.text(f"C{n}", label_xf, ind.label),
                cells.text(f"D{n}", unitcol, ind.unit),
                cells.text(f"E{n}", unitcol, period_label[period]),
                cells.text(f"F{n}", unitcol, "Tỷ lệ" if ind.is_rate else form.field_labels[fld]),
            ]
            kind = _kind(ind)
            if ft.units:  # (no format is made for a row without units)
                xf = st.value(kind)._get_xf_index()
                if ind.is_rate:
                    key = (ind.code, period)
                    values = [_shown(m.get(key), rate=True) for m in unit_rates]
                else:
                    key = (ind.code, fld, period)
                    values = [m.get(key) for m in unit_figures]
                # cells.number() for each unit, inlined: a row of a few hundred units, a few hundred rows
                ns = str(n)
                row.extend(
                    f'<c r="{col}{ns}" s="{xf}"/>' if v is None else f'<c r="{col}{ns}" s="{xf}"><v>{v:.16G}</v></c>'
                    for col, v in zip(unit_cols, values)
                )
            total = ft.rates.get((ind.code, period)) if ind.is_rate else ft.totals.get((ind.code, fld, period))
            total_xf = st.value(kind, bold=True)._get_xf_index()
            row.append(cells.number(f"{letters[last]}{n}", total_xf, _shown(total, rate=ind.is_rate, total=True)))
            row.append("</row>")
            ws.bulk_row(r, "".join(row), last)
            r += 1
        r += 2
    cells.done()
    ws.freeze_panes(0, 3)
    _working_page(ws)
    # Printed, each form's matrix starts a page; with one form, its units' names head every page (Excel repeats
    # one range of rows: several forms' headings name different units)
    ws.set_h_pagebreaks([first for first, _ in blocks[1:]])
    if len(blocks) == 1:
        ws.repeat_rows(blocks[0][1], blocks[0][1] + 1)


def _kind(ind: Indicator) -> str:
    return "rate" if ind.is_rate else ("money" if ind.value == "money" else "count")


# ------------------------------------------------------------------------------------------- schedule


def _write_schedule(wb, st: _SummaryStyles, cons: Consolidation, form: Form | None) -> None:
    rnd = cons.round
    ws = wb.add_worksheet(SCHEDULE_SHEET, worksheet_class=_Sheet)
    headings = [
        ("TT", 6),
        ("Đơn vị", 22),
        ("Xã/phường/thị trấn", 26),
        ("Ngày", 12),
        ("Buổi", 9),
        ("Người đầu mối", 22),
        ("Số điện thoại", 14),
        ("Ghi chú", 26),
        ("Cảnh báo", 44),
    ]
    last = len(headings) - 1
    width = sum(w for _, w in headings)
    owed = [u for u in rnd.units if form is not None and form.id in u.forms]
    order = {u.code: i for i, u in enumerate(rnd.units)}
    included = sorted({e.unit_code for e in cons.schedule}, key=lambda c: (order.get(c, len(order)), c))
    counted = {e.unit_code for e in cons.schedule if e.counted}
    with_errors = [c for c in included if c not in counted]
    files = {status.unit.code: status.files for status in cons.status}
    missing = {u.code: _why_excluded(cons.report, u, files.get(u.code, [])) for u in owed if u.code not in included}
    window = f"{fmt_date(rnd.inspection.start)} – {fmt_date(rnd.inspection.end)}"
    lead = f"Lịch tổng hợp từ {len(included)} đơn vị" + (
        ": " + ", ".join(_unit_name(rnd, c) for c in included) + "." if included else "."
    )
    if with_errors:
        lead += (
            f" Lịch của {', '.join(_unit_name(rnd, c) for c in with_errors)} lấy từ tệp còn lỗi (tô màu, xem cột "
            "Cảnh báo)."
        )
    if form is not None:
        _write_header(ws, st, rnd, None, form, last, f"Thời gian kiểm tra: {window}", unit_line=lead)
    else:
        ws.write_string(4, 0, "LỊCH KIỂM TRA", st.title)
        ws.write_string(8, 0, lead, st.unit)
    ws.set_row(8, 17 * _lines(lead, width * 1.1))
    _line(ws, st, 9, last, excluded_line(rnd, missing, "Đã có lịch của đủ các đơn vị phải nộp."), width)
    h = HEADER_ROW - 1
    for c, (text, w) in enumerate(headings):
        ws.write_string(h, c, text, st.head)
        ws.write_string(h + 1, c, f"({c + 1})", st.numbering)
        ws.set_column(c, c, w)
    entries = sorted(cons.schedule, key=lambda e: e.date or dt.date.max)  # stable: keeps session/unit order
    r = h + 2
    for i, e in enumerate(entries, start=1):
        fill = {"bg_color": CONFLICT_FILL} if e.conflicts else {}
        text = st.fmt(align="left", **fill)
        center = st.fmt(align="center", **fill)
        ws.write_number(r, 0, i, center)
        _text(ws, r, 1, e.unit_name, text)
        _text(ws, r, 2, e.commune, text)
        if e.date:
            ws.write_datetime(
                r, 3, dt.datetime.combine(e.date, dt.time()), st.fmt(align="center", num_format="dd/mm/yyyy", **fill)
            )
        else:
            ws.write_blank(r, 3, None, center)
        _text(ws, r, 4, e.session, center)
        _text(ws, r, 5, e.focal_person, text)
        _text(ws, r, 6, e.phone, st.fmt(align="center", num_format="@", **fill))
        _text(ws, r, 7, e.notes, text)
        _text(ws, r, 8, "; ".join(e.conflicts), st.fmt(align="left", font_color="#9C0006", **fill))
        texts = (e.unit_name, e.commune, e.session, e.focal_person, e.phone, e.notes, "; ".join(e.conflicts))
        _fit_row(ws, r, [(t, headings[c][1] - 1) for c, t in enumerate(texts, start=1)])
        r += 1
    flagged = sum(1 for e in entries if e.conflicts)
    note = (
        f"Có {flagged} buổi cần xem lại (tô màu, xem cột Cảnh báo)."
        if flagged
        else "Không có buổi nào trùng lịch hay ngoài thời gian kiểm tra."
    )
    if rnd.inspection.hours:
        note += f" {rnd.inspection.hours}."
    ws.write_string(r + 1, 0, note, st.note)
    _page_setup(ws, HEADER_ROW + 2, (HEADER_ROW - 1, HEADER_ROW), 3)


# --------------------------------------------------------------------------------------------- status


def _write_status(wb, st: _SummaryStyles, cons: Consolidation) -> None:
    rnd = cons.round
    ws = wb.add_worksheet(STATUS_SHEET, worksheet_class=_Sheet)
    owing = [s for s in cons.status if s.state != "not-owed"]
    counts = {k: sum(1 for s in cons.status if s.state == k) for k in STATE_LABELS}
    note = (
        f"Hạn nộp: {fmt_date(rnd.deadline)}. {len(owing)} đơn vị phải nộp: {counts['ok']} đúng hạn, "
        f"{counts['late']} muộn, {counts['invalid']} có lỗi, {counts['missing']} chưa nộp."
    )
    r = _title(ws, st, rnd, "TÌNH HÌNH NỘP BÁO CÁO", note)
    headings = [
        ("Mã đơn vị", 10),
        ("Tên đơn vị", 26),
        ("Biểu phải nộp", 16),
        ("Tệp nhận được", 34),
        ("Thời điểm nhận", 17),
        ("Đúng hạn/muộn", 15),
        ("Hợp lệ", 9),
        ("Số lỗi", 8),
        ("Số cảnh báo", 11),
        ("Tình trạng", 24),
    ]
    _head_row(ws, st, r, headings)
    ws.freeze_panes(r + 1, 2)
    first = r
    for s in cons.status:
        r += 1
        state = s.state
        fill = {"bg_color": STATE_FILLS[state]} if state in STATE_FILLS else {}
        if state == "not-owed":
            fill = {"font_color": "#808080"}
        text = st.fmt(align="left", **fill)
        center = st.fmt(align="center", **fill)
        _text(ws, r, 0, s.unit.code, center)
        _text(ws, r, 1, s.unit.name, text)
        _text(ws, r, 2, ", ".join(sorted(s.forms_owed)) if s.forms_owed else "không phải nộp", text)
        _text(ws, r, 3, _files_text(s), text)
        if s.received:
            ws.write_datetime(r, 4, s.received, st.fmt(align="center", num_format="dd/mm/yyyy hh:mm", **fill))
        else:
            ws.write_blank(r, 4, None, center)
        _text(ws, r, 5, _timeliness(s.received, rnd.deadline), center)
        _text(ws, r, 6, "" if s.valid is None else ("Có" if s.valid else "Không"), center)
        if s.submission is None:
            ws.write_blank(r, 7, None, center)
            ws.write_blank(r, 8, None, center)
        else:
            ws.write_number(r, 7, s.errors, center)
            ws.write_number(r, 8, s.warnings, center)
        _text(ws, r, 9, STATE_LABELS[state], text)
        _fit_row(ws, r, [(s.unit.name, headings[1][1] - 1), (_files_text(s), headings[3][1] - 1)])
    ws.autofilter(first, 0, r, len(headings) - 1)
    _working_page(ws, first)


def _files_text(s) -> str:
    if not s.files:
        return ""
    if len(s.files) == 1:
        return s.files[0].name
    used = s.submission.name if s.submission else ""
    return "; ".join(f.name + (" (dùng)" if f.name == used else " (không dùng)") for f in s.files)


def _timeliness(received: dt.datetime | None, deadline: dt.date) -> str:
    if received is None:
        return ""
    late = (received.date() - deadline).days
    return "Đúng hạn" if late <= 0 else f"Muộn {late} ngày"


# ------------------------------------------------------------------------------------------- findings


def _write_findings(wb, st: _SummaryStyles, cons: Consolidation) -> None:
    rnd = cons.round
    ws = wb.add_worksheet(FINDINGS_SHEET, worksheet_class=_Sheet)
    errors = sum(1 for _, f in cons.findings if f.severity == ERROR)
    note = f"{errors} lỗi, {len(cons.findings) - errors} cảnh báo trong {len(cons.report.submissions)} tệp."
    r = _title(ws, st, rnd, "LỖI VÀ CẢNH BÁO", note)
    headings = [
        ("Tệp", 30),
        ("Đơn vị", 24),
        ("Mức độ", 10),
        ("Loại", 24),
        ("Trang", 9),
        ("Ô", 9),
        ("Nội dung", 90),
        ("Mã", 20),  # the stable code (README, --json): for filtering and for support
    ]
    _head_row(ws, st, r, headings)
    ws.freeze_panes(r + 1, 0)
    first = r
    for sub, f in cons.findings:
        r += 1
        text = st.fmt(align="left")
        _text(ws, r, 0, sub.name, text)
        unit = rnd.unit(sub.unit_code) if sub.unit_code else None
        _text(ws, r, 1, unit.name if unit else (sub.unit_name or ""), text)
        sev = st.fmt(
            align="center", bold=f.severity == ERROR, font_color="#C00000" if f.severity == ERROR else "#7F6000"
        )
        _text(ws, r, 2, SEVERITY_LABELS.get(f.severity, f.severity), sev)
        kind = CATALOG.get(f.code, (None, f.code))[1]
        _text(ws, r, 3, kind, text)
        _text(ws, r, 4, f.sheet or "", st.fmt(align="center"))
        _text(ws, r, 5, f.cell or "", st.fmt(align="center"))
        _text(ws, r, 6, f.message, text)
        _text(ws, r, 7, f.code, text)
        _fit_row(ws, r, [(sub.name, headings[0][1] - 1), (kind, headings[3][1] - 1), (f.message, headings[6][1] - 2)])
    ws.autofilter(first, 0, max(r, first + 1), len(headings) - 1)
    _working_page(ws, first)


# ----------------------------------------------------------------------------------------------- data


_COLUMN_LETTERS = [xlsxwriter.utility.xl_col_to_name(c) for c in range(len(DATA_COLUMNS))]


def _tidy_rows(ws: _BulkSheet, tidy: TidyTable, text_xf: int, number_xf: dict[str, int]) -> None:
    """The tidy table's body (sheet row 2 on) as rows of ``ws`` made when it is written (:meth:`bulk_rows`).

    Texts go through the shared string table (:class:`_Cells`), an empty text is a blank cell in the text style,
    a figure is a number in its indicator's format. A return's texts and a figure's texts are looked up once each,
    here, so that the table is complete before the workbook is stored.
    """
    forms = available_forms()
    cells = _Cells(ws)
    si = cells.si
    x = text_xf

    # A row's XML is its row number joined with pieces fixed by its return and its figure (each cell's end and the
    # next one's start, up to its reference's row): ``str(n).join(pieces)`` writes a row five times faster than
    # formatting its two dozen numbers. The pieces are made once per return and per figure.
    def piece(i: int, next_col: str) -> str:
        return f'" s="{x}" t="s"><v>{i}</v></c><c r="{next_col}'

    field_labels: dict[tuple[str, str, str], tuple[str, int]] = {}  # (form, indicator, field) -> label, number xf

    def figure(form_id: str, v: Value) -> tuple:
        """(7 text indices (None: empty text), number xf, how many texts, the row's pieces or None)."""
        lkey = (form_id, v.indicator, v.field)
        if lkey not in field_labels:
            form = forms.get(form_id)
            ind = form.indicator(v.indicator) if form else None
            field_labels[lkey] = (
                form.field_labels.get(v.field, v.field) if form else v.field,
                number_xf["money" if ind is not None and ind.value == "money" else "count"],
            )
        label, num_xf = field_labels[lkey]
        texts = (
            form_id,
            v.indicator,
            tidy.labels.get((form_id, v.indicator), ""),
            label,
            tidy.period_labels.get(v.period, v.period),
            v.sheet,
            v.cell,
        )
        f = tuple(si(t) if t else None for t in texts)
        pieces = None
        if None not in f:
            pieces = (
                tuple(piece(i, col) for i, col in zip(f[:5], "DEFGH")),
                f'" s="{num_xf}"><v>',
                (piece(f[5], "L"), f'" s="{x}" t="s"><v>{f[6]}</v></c></row>'),
            )
        return (*f, num_xf, sum(i is not None for i in f), pieces)

    figures: dict[tuple, tuple] = {}  # (form, indicator, field, period, sheet, cell) -> figure()
    # per block: its values, the unit's text indices, the unit's pieces (None: an empty text), each value's figure()
    plan: list[tuple[list[Value], tuple, tuple | None, list[tuple]]] = []
    strings = 0  # string cells of the table (the shared string table counts every one)
    for b in tidy.blocks:
        u = tuple(si(t) if t else None for t in (b.unit_code, b.unit_name, b.source_file, b.sha256))
        u_pieces = None
        if None not in u:
            u_pieces = ((piece(u[0], "B"), piece(u[1], "C")), (piece(u[2], "J"), piece(u[3], "K")))
        refs = []
        texts = 0
        form_id = b.form
        for v in b.values:
            key = (form_id, v.indicator, v.field, v.period, v.sheet, v.cell)
            f = figures.get(key)
            if f is None:
                f = figures[key] = figure(form_id, v)
            refs.append(f)
            texts += f[8]
        strings += texts + len(refs) * sum(i is not None for i in u)
        plan.append((b.values, u, u_pieces, refs))
    cells.extra += strings
    cells.done()

    def rows() -> Iterable[str]:
        head, first = '<row r="', '" spans="1:12"><c r="A'
        n = 2
        for values, u, up, refs in plan:
            for v, f in zip(values, refs):
                fp = f[9]
                if up is None or fp is None:
                    yield _tidy_row_cells(n, x, u, f, v.value)
                else:
                    yield str(n).join(
                        (head, first, *up[0], *fp[0], f'{fp[1]}{v.value:.16G}</v></c><c r="I', *up[1], *fp[2])
                    )
                n += 1

    ws.bulk_rows(1, len(tidy), len(DATA_COLUMNS) - 1, rows)


def _tidy_row_cells(n: int, x: int, u: tuple, f: tuple, value: float) -> str:
    """A tidy row with some empty texts (blank cells in the text style), cell by cell."""
    strings = (u[0], u[1], f[0], f[1], f[2], f[3], f[4], None, u[2], u[3], f[5], f[6])
    cells = [f'<row r="{n}" spans="1:12">']
    for c, i in enumerate(strings):
        ref = f"{_COLUMN_LETTERS[c]}{n}"
        if c == 7:
            cells.append(f'<c r="{ref}" s="{f[7]}"><v>{value:.16G}</v></c>')
        elif i is None:
            cells.append(f'<c r="{ref}" s="{x}"/>')
        else:
            cells.append(f'<c r="{ref}" s="{x}" t="s"><v>{i}</v></c>')
    cells.append("</row>")
    return "".join(cells)


def _write_data(wb, st: _SummaryStyles, cons: Consolidation) -> None:
    ws = wb.add_worksheet(DATA_SHEET, worksheet_class=_BulkSheet)
    n = len(cons.tidy)
    last_col = len(DATA_COLUMNS) - 1
    # The table is declared over its heading and first row, then stretched over all rows: XlsxWriter's check that
    # a new table overlaps no other table or merged range records every cell of it (1.2 million at province
    # scale: a second and some 200 MB), and this sheet holds nothing else.
    ws.add_table(
        0,
        0,
        1,
        last_col,
        {
            "name": DATA_TABLE,
            "style": "Table Style Medium 2",
            "columns": [{"header": h} for h, _ in DATA_COLUMNS],
        },
    )
    table = ws.tables[-1]
    whole = xlsxwriter.utility.xl_range(0, 0, max(n, 1), last_col)
    assert table["range"] == table["a_range"] == table["autofilter"] == xlsxwriter.utility.xl_range(0, 0, 1, last_col)
    table["range"] = table["a_range"] = table["autofilter"] = whole
    for c, (_, w) in enumerate(DATA_COLUMNS):
        ws.set_column(c, c, w)
    number = {
        k: wb.add_format({"font_name": FONT, "num_format": v}) for k, v in (("count", "#,##0"), ("money", "#,##0.00"))
    }
    if n:
        _tidy_rows(ws, cons.tidy, st.plain._get_xf_index(), {k: f._get_xf_index() for k, f in number.items()})
    ws.freeze_panes(1, 0)
    _working_page(ws, 0)


# --------------------------------------------------------------------------------------------- charts


def _headline_values(cons: Consolidation, code: str, fld: str):
    """(indicator, [(unit, {period: value})]) for one headline indicator, units in round order."""
    indicator, per_unit = None, {}
    for ft in cons.forms.values():
        try:
            ind = ft.form.indicator(code)
        except KeyError:
            continue
        indicator = indicator or ind
        for unit_code in ft.units:
            if ind.is_rate:
                values = {p: ft.unit_rates.get(unit_code, {}).get((code, p)) for p in _periods(cons.round)}
            else:
                values = {p: ft.by_unit.get(unit_code, {}).get((code, fld, p)) for p in _periods(cons.round)}
            per_unit.setdefault(unit_code, values)
    units = [(u, per_unit[u.code]) for u in cons.round.units if u.code in per_unit]
    return indicator, units


def _periods(rnd: Round) -> tuple[str, ...]:
    return tuple(p.id for p in rnd.periods)


def _write_charts(wb, st: _SummaryStyles, cons: Consolidation) -> int:
    rnd = cons.round
    ws = wb.add_worksheet(CHART_SHEET, worksheet_class=_Sheet)
    r = _title(ws, st, rnd, "BIỂU ĐỒ MỘT SỐ CHỈ TIÊU THEO ĐƠN VỊ", "Mỗi biểu đồ vẽ từ bảng số liệu bên trái nó.")
    ws.set_column(0, 0, 20)
    ws.set_column(1, len(rnd.periods), 12)
    charts = 0
    breaks: list[int] = []  # each chart after the first starts a printed page
    font = {"name": FONT, "size": 10}
    for code, fld in HEADLINES:
        ind, units = _headline_values(cons, code, fld)
        if ind is None or not units:
            continue
        if charts:
            breaks.append(r)
        unit_text = "%" if ind.is_rate else ind.unit
        title = f"{ind.label} theo đơn vị ({unit_text})"
        ws.write_string(r, 0, title, st.block_title)
        h = r + 1
        ws.write_string(h, 0, "Đơn vị", st.head)
        for j, period in enumerate(rnd.periods, start=1):
            ws.write_string(h, j, period.label, st.head)
        style = st.value(_kind(ind))
        for i, (unit, values) in enumerate(units, start=1):
            ws.write_string(h + i, 0, unit.short_name, st.label)
            for j, period in enumerate(rnd.periods, start=1):
                _number(ws, h + i, j, values[period.id], style, rate=ind.is_rate)
        first, last = h + 1, h + len(units)
        chart = wb.add_chart({"type": "column"})
        for j, _period in enumerate(rnd.periods, start=1):
            chart.add_series(
                {
                    "name": [CHART_SHEET, h, j],
                    "categories": [CHART_SHEET, first, 0, last, 0],
                    "values": [CHART_SHEET, first, j, last, j],
                }
            )
        chart.set_title({"name": title, "name_font": {"name": FONT, "size": 12, "bold": True}})
        chart.set_x_axis({"num_font": font})
        chart.set_y_axis(
            {"name": unit_text, "name_font": font, "num_font": font, "num_format": "0" if ind.is_rate else "#,##0"}
        )
        chart.set_legend({"position": "bottom", "font": font})
        chart.set_size({"width": 760, "height": 360})
        ws.insert_chart(h, len(rnd.periods) + 2, chart)  # below its title, which runs on to the right
        charts += 1
        r += max(len(units) + 4, 21)
    if not charts:
        ws.write_string(r, 0, "Chưa có số liệu hợp lệ để vẽ biểu đồ.", st.sheet_note)
    ws.set_h_pagebreaks(breaks)
    _working_page(ws)
    return charts


# ------------------------------------------------------------------------------------------- workbook


class _FastZipInfo(zipfile.ZipInfo):
    """A zip entry deflated at level 1: for the summary's tens of megabytes of sheet XML, a quarter of the time of
    zlib's default level 6 for a file some 25% bigger (5.5 MB instead of 4.4 MB for 700 districts)."""

    __slots__ = ()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._compresslevel = 1


_STREAM_MARK = "\x00baocao-rows:"  # NUL never occurs in XlsxWriter's XML: a placeholder for streamed bulk rows
_PACKAGE = threading.local()
"""While :func:`write_summary` stores a workbook, in its thread: ``streams``, placeholder -> (rows, count) of the
bulk rows still to be made (a workbook closed at the same time in another thread writes its rows as usual)."""

_STREAM_BATCH = 4096  # rows joined, encoded and deflated at a time


class _SummaryZipFile(zipfile.ZipFile):
    """XlsxWriter's zip file while the summary is stored: a part holding placeholders of bulk rows
    (:meth:`_BulkSheet.bulk_rows`) is written as a stream, the rows made, encoded and deflated a batch at a time.
    The entry is the same, byte for byte, as if the whole part had been written at once (``writestr`` itself
    writes through :meth:`open`; deflate does not depend on how its input is cut)."""

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        streams = getattr(_PACKAGE, "streams", None)
        if not streams or not isinstance(data, bytes) or _STREAM_MARK[0].encode() not in data:
            return super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)
        assert isinstance(zinfo_or_arcname, zipfile.ZipInfo) and compress_type is None and compresslevel is None
        # a summary sheet stays far below the 2 GiB of a zip entry without ZIP64 (Excel's rows cap it near 1 GB)
        with self.open(zinfo_or_arcname, mode="w") as dest:
            pieces = data.split(b"\x00")
            dest.write(pieces[0])
            for name, text in zip(pieces[1::2], pieces[2::2]):
                rows, count = streams.pop(b"\x00" + name + b"\x00")
                written = 0
                batch: list[str] = []
                for xml in rows():
                    batch.append(xml)
                    if len(batch) == _STREAM_BATCH:
                        dest.write("".join(batch).encode("utf-8"))
                        written += len(batch)
                        batch.clear()
                dest.write("".join(batch).encode("utf-8"))
                written += len(batch)
                assert written == count, (zinfo_or_arcname.filename, count, written)
                dest.write(text)


_PACKAGING_LOCK = threading.Lock()


@contextlib.contextmanager
def _packaging():
    """While the summary is stored: XlsxWriter's zip entries (``xlsxwriter.workbook.ZipInfo``) deflated at level 1
    and its zip file (``xlsxwriter.workbook.ZipFile``) the streaming :class:`_SummaryZipFile`; XlsxWriter has no
    option for either. Should a later XlsxWriter no longer use these names, the summary is simply deflated at the
    default level, its bulk rows held in memory before they are zipped."""
    with _PACKAGING_LOCK:
        module = xlsxwriter.workbook
        saved = {name: getattr(module, name, None) for name in ("ZipInfo", "ZipFile")}
        streaming = saved["ZipFile"] is zipfile.ZipFile
        module.ZipInfo = _FastZipInfo
        if streaming:
            module.ZipFile = _SummaryZipFile
            _PACKAGE.streams = {}
        try:
            yield
            assert not getattr(_PACKAGE, "streams", None), "every placeholder of bulk rows was streamed"
        finally:
            _PACKAGE.streams = None
            for name, value in saved.items():
                if value is None:
                    if hasattr(module, name):
                        delattr(module, name)
                else:
                    setattr(module, name, value)


def write_summary(cons: Consolidation, path: str | Path, temp_prefix: str = ".tmp-") -> Path:
    """Write the provincial summary workbook atomically (temporary file in the same folder, then rename).

    Raises an :class:`OSError` subclass when the folder does not exist or cannot be written; no temporary file
    is left behind on any failure.
    """
    path = Path(path)
    rnd = cons.round
    with atomic_file(path, suffix=".xlsx", prefix=temp_prefix) as tmp:
        wb = new_workbook(tmp)
        wb.set_properties(
            {
                "title": f"Tổng hợp – {rnd.title}",
                "author": rnd.issuer,
                "created": FIXED_TIME,
                "comments": "Tổng hợp do baocao tạo",
            }
        )
        wb.set_custom_property("baocao:round_id", rnd.id)
        wb.set_custom_property("baocao:kind", "summary")
        st = _SummaryStyles(wb)
        for ft in cons.forms.values():
            _write_totals_sheet(wb, st, cons, ft)
        _write_by_unit(wb, st, cons)
        forms = available_forms()
        schedules = [forms[f] for f in sorted(rnd.expected_forms()) if f in forms and forms[f].kind == "schedule"]
        if schedules or cons.schedule:
            _write_schedule(wb, st, cons, schedules[0] if schedules else None)
        _write_status(wb, st, cons)
        _write_findings(wb, st, cons)
        _write_data(wb, st, cons)
        _write_charts(wb, st, cons)
        for ws in wb.worksheets():
            # unit codes, communes' codes and phone numbers are text on purpose: no green "number stored as text"
            # triangle in Excel on each of them
            ws.ignore_errors({"number_stored_as_text": "A1:XFD1048576"})
        wb.worksheets()[0].activate()
        with _packaging():
            close_workbook(wb, path)
    return path


__all__ = ["write_summary", "included_line", "excluded_line", "round1", "summary_sheet_name"]
