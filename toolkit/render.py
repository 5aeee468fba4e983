"""Form definitions + unit -> the unit's template workbook.

Written with XlsxWriter (a write-only library, several times faster than openpyxl for this; see
``benchmarks/``). Everything a staff member sees comes from ``workbook_templates/`` (layout) and
``schemas/`` (live checks); nothing about a form is written by hand here.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import xlsxwriter
import xlsxwriter.exceptions
import xlsxwriter.worksheet
from xlsxwriter.utility import xl_cell_to_rowcol, xl_col_to_name, xl_rowcol_to_cell

from . import __version__
from .forms import FIELDS, HEADER_ROW, Form, Layout, available_forms
from .fsutil import atomic_file
from .round import Round, Unit
from .rules import CrossRule, FormRules, rules_for

META_SHEET = "_baocao"
LIST_SHEET = "DanhMuc"
GUIDE_SHEET = "Hướng dẫn"
META_FORMAT = "baocao-template/1"
NA = "x"  # a field the indicator does not ask for
FONT = "Times New Roman"
INPUT_FILL = "#FFF2CC"
ERROR_FILL = "#F4B6B6"
FIXED_TIME = dt.datetime(2000, 1, 1)
CHECK_HEADING = "Kiểm tra"  # heading of the live-check column of every form sheet
LABEL_CHARS = 60  # characters of a label that fit on one line of column B


def fmt_date(value: dt.date) -> str:
    return value.strftime("%d/%m/%Y")


def plan_line(rnd: Round) -> str:
    d = rnd.plan_date
    return f"(Kèm theo Kế hoạch số {rnd.plan_number} ngày {d.day}/{d.month}/{d.year} của {rnd.issuer})"


def periods_label(rnd: Round) -> str:
    labels = [p.label for p in rnd.periods]
    text = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " và " + labels[-1]
    return text[0].upper() + text[1:] if text else text


def form_title(form: Form, rnd: Round) -> str:
    return form.title.format(year=rnd.plan_date.year).upper()


def excel_date(value: dt.date) -> int:
    return (value - dt.date(1899, 12, 30)).days


# ----------------------------------------------------------------------------------- live-check formulas


@cache
def rule_condition(rule: CrossRule, layout: Layout, absolute: bool = False) -> str:
    """Excel formula (no leading “=”) that is TRUE when the rule fails, following its missing strategy.

    ``absolute`` writes $D$15-style references. A conditional format that colours several cells evaluates
    relative references once per cell, shifted from the range's anchor, so its rule must use absolute ones.
    """

    def cells(terms):
        out = [layout.cell(t.indicator, t.field, rule.period) for t in terms]
        return [xl_rowcol_to_cell(*xl_cell_to_rowcol(a), True, True) for a in out] if absolute else out

    left, right = cells(rule.left), cells(rule.right)
    compare = f"SUM({','.join(left)}){_EXCEL_OP[rule.op]}SUM({','.join(right)})"
    everything = ",".join(left + right)
    if rule.missing == "never_skip":
        return f"NOT({compare})"
    if rule.missing == "skip_if_all_missing":
        return f"AND(COUNT({everything})>0,NOT({compare}))"
    return f"AND(COUNT({everything})={len(left) + len(right)},NOT({compare}))"


_EXCEL_OP = {"<=": "<=", ">=": ">=", "==": "=", "<": "<", ">": ">", "!=": "<>"}


def _excel_text(text: str) -> str:
    """A string literal for a formula (Excel caps literals at 255 characters)."""
    return '"' + text[:250].replace('"', '""') + '"'


@dataclass(frozen=True)
class ScheduleChecks:
    """Per-row live checks of a schedule form: (column codes involved, short text, condition)."""

    items: tuple[tuple[tuple[str, ...], str, str], ...]


def schedule_conditions(rules: FormRules, layout: Layout, row: int, list_rows: dict[str, str], rnd: Round):
    form = layout.form

    def ref(code: str, absolute_col: bool = True) -> str:
        col = xl_col_to_name(layout.col_of[(code, "")] - 1)
        return f"${col}{row}" if absolute_col else f"{col}{row}"

    used = "OR(" + ",".join(f'{ref(c)}<>""' for c in ("commune", "date")) + ")"
    out: list[tuple[tuple[str, ...], str, str]] = []
    for code, con in rules.columns.items():
        cell = ref(code)
        label = form.column(code).label
        if con.required:
            out.append(((code,), rules.required_short.format(label=label), f'AND({used},{cell}="")'))
        if con.in_list:
            rng = list_rows[con.in_list]
            out.append(((code,), con.short, f'AND({cell}<>"",COUNTIF({rng},{cell})=0)'))
        if con.within == "inspection_window":
            lo, hi = excel_date(rnd.inspection.start), excel_date(rnd.inspection.end)
            out.append(((code,), con.invalid_short, f'AND({cell}<>"",NOT(ISNUMBER({cell})))'))
            out.append(((code,), con.short, f"AND(ISNUMBER({cell}),OR({cell}<{lo},{cell}>{hi}))"))
        if con.digits:
            conds = [f"LEN({cell})<>{con.digits}", f"NOT(ISNUMBER(-{cell}))"]
            if con.leading_zero:
                conds.append(f'LEFT({cell},1)<>"0"')
            out.append(((code,), con.short, f'AND({cell}<>"",OR({",".join(conds)}))'))
    first, last = layout.first_row, layout.last_row
    for u in rules.unique:
        parts = []
        for code in u.columns:
            col = xl_col_to_name(layout.col_of[(code, "")] - 1)
            parts.append(f"${col}${first}:${col}${last},{ref(code)}")
        filled = ",".join(f'{ref(c)}<>""' for c in u.columns)
        out.append((u.columns, u.short, f"AND({filled},COUNTIFS({','.join(parts)})>1)"))
    return out


# ---------------------------------------------------------------------------------------------- writer

_FORMULA_CACHE: dict[tuple[str, bool, bool], str] = {}


class _Sheet(xlsxwriter.worksheet.Worksheet):
    """A worksheet that prepares each distinct formula once per process.

    Every unit's template carries the same few hundred live-check formulas; XlsxWriter would run ~120
    regular expressions over each of them for every file (most of the time per file, see benchmarks/).
    """

    def _prepare_formula(self, formula, expand_future_functions=False):
        key = (formula, expand_future_functions, self.use_future_functions)
        prepared = _FORMULA_CACHE.get(key)
        if prepared is None:
            if len(_FORMULA_CACHE) > 50_000:
                _FORMULA_CACHE.clear()
            prepared = _FORMULA_CACHE[key] = super()._prepare_formula(formula, expand_future_functions)
        return prepared


class _Styles:
    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        base = {"font_name": FONT, "font_size": 12, "valign": "vcenter", "text_wrap": True}

        def f(**kw):
            return wb.add_format({**base, **kw})

        border = {"border": 1}
        self.body_left = f(align="center", font_size=12)
        self.body_left_bold = f(align="center", bold=True, font_size=12, bottom=1)
        self.national = f(align="center", bold=True, font_size=12)
        self.motto = f(align="center", bold=True, font_size=13, bottom=1)
        self.annex = f(align="center", bold=True, font_size=13)
        self.title = f(align="center", bold=True, font_size=13)
        self.subtitle = f(align="center", bold=True, font_size=12)
        self.italic = f(align="center", italic=True, font_size=12)
        self.unit = f(align="left", bold=True, font_size=12)
        self.note = f(align="left", italic=True, font_size=11, text_wrap=False)
        self.head = f(align="center", bold=True, bg_color="#D9E1F2", **border)
        self.numbering = f(align="center", italic=True, font_size=10, **border)
        self.section = f(align="left", bold=True, **border)
        self.section_c = f(align="center", bold=True, **border)
        self.stt = f(align="center", **border)
        self.stt_bold = f(align="center", bold=True, **border)
        self.label = f(align="left", **border)
        self.label_bold = f(align="left", bold=True, **border)
        self.label_indent = f(align="left", indent=2, italic=True, **border)
        self.unitcol = f(align="center", **border)
        self.na = f(align="center", font_color="#808080", bg_color="#F2F2F2", **border)
        self.blank = f(bg_color="#F2F2F2", **border)
        self.count = f(align="right", num_format="#,##0", bg_color=INPUT_FILL, locked=False, **border)
        self.money = f(align="right", num_format="#,##0.00", bg_color=INPUT_FILL, locked=False, **border)
        self.rate = f(align="right", num_format="0.0", italic=True, **border)
        self.check = f(align="left", font_color="#C00000", font_size=11, **border)
        self.input_text = f(align="left", bg_color=INPUT_FILL, locked=False, num_format="@", **border)
        self.input_date = f(align="center", bg_color=INPUT_FILL, locked=False, num_format="dd/mm/yyyy", **border)
        self.input_center = f(align="center", bg_color=INPUT_FILL, locked=False, **border)
        self.error = wb.add_format({"bg_color": ERROR_FILL, "font_color": "#9C0006"})
        self.sign_head = f(align="center", bold=True)
        self.sign_note = f(align="center", italic=True, font_size=11)
        self.guide_title = f(bold=True, font_size=14, text_wrap=False)
        self.guide = f(align="left", valign="top")
        self.guide_bold = f(align="left", bold=True)
        self.plain = wb.add_format({"font_name": FONT})


def _write_header(
    ws,
    st: _Styles,
    rnd: Round,
    unit: Unit | None,
    form: Form,
    last_col: int,
    subtitle: str,
    unit_line: str = "",
    title: str | None = None,
) -> None:
    """The NĐ 30/2020 heading of a form sheet (rows 1–9); ``unit_line`` replaces the “Đơn vị báo cáo” line,
    ``title`` the form's own title (the province's summary of it)."""
    split = 2 if form.kind == "indicators" else 2  # issuing body over A..C, national motto over the rest
    body = list(rnd.issuing_body) + [""] * (2 - len(rnd.issuing_body))
    ws.merge_range(0, 0, 0, split, body[0], st.body_left)
    ws.merge_range(1, 0, 1, split, body[1] if len(rnd.issuing_body) > 1 else "", st.body_left_bold)
    for extra, line in enumerate(rnd.issuing_body[2:], start=2):
        ws.merge_range(extra, 0, extra, split, line, st.body_left_bold)
    ws.merge_range(0, split + 1, 0, last_col, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", st.national)
    ws.merge_range(1, split + 1, 1, last_col, "Độc lập - Tự do - Hạnh phúc", st.motto)
    ws.merge_range(4, 0, 4, last_col, form.annex_label, st.annex)
    ws.merge_range(5, 0, 5, last_col, title or form_title(form, rnd), st.title)
    ws.merge_range(6, 0, 6, last_col, subtitle, st.subtitle)
    ws.merge_range(7, 0, 7, last_col, plan_line(rnd), st.italic)
    ws.merge_range(8, 0, 8, last_col, unit_line or f"Đơn vị báo cáo: {unit.name} (mã {unit.code})", st.unit)
    ws.set_row(5, 36)


def _write_signature(
    ws, st: _Styles, rnd: Round, row: int, last_col: int, place: str = "……………", signer: str = "THỦ TRƯỞNG ĐƠN VỊ"
) -> None:
    """The signature block under a form: a unit's (place left to fill) or, for the summary, the issuing body's."""
    mid = max(3, last_col // 2)
    ws.merge_range(row, mid, row, last_col, f"{place}, ngày …… tháng …… năm ……", st.italic)
    ws.merge_range(row + 1, 0, row + 1, 2, "NGƯỜI LẬP BIỂU", st.sign_head)
    ws.merge_range(row + 1, mid, row + 1, last_col, signer, st.sign_head)
    ws.merge_range(row + 2, 0, row + 2, 2, "(Ký, ghi rõ họ tên)", st.sign_note)
    ws.merge_range(row + 2, mid, row + 2, last_col, "(Ký, ghi rõ họ tên, đóng dấu)", st.sign_note)


def _page_setup(ws, first_data_row: int, heading_rows: tuple[int, int], freeze_col: int) -> None:
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.set_margins(left=0.5, right=0.4, top=0.6, bottom=0.6)
    ws.repeat_rows(*heading_rows)
    ws.fit_to_pages(1, 0)
    ws.freeze_panes(first_data_row - 1, freeze_col)
    ws.set_footer('&C&"Times New Roman"&10Trang &P/&N')


def _protect(ws, rnd: Round) -> None:
    ws.protect(rnd.password or "", {"select_locked_cells": True, "select_unlocked_cells": True})


def _validation(ws, cells: list[tuple[int, int]], options: dict) -> None:
    """One data validation over many cells (a multi-range keeps the file small)."""
    if not cells:
        return
    rng = " ".join(xl_rowcol_to_cell(r, c) for r, c in cells)
    r0, c0 = cells[0]
    ws.data_validation(r0, c0, r0, c0, {**options, "multi_range": rng})


_COUNT_DV = {
    "validate": "integer",
    "criteria": ">=",
    "value": 0,
    "input_title": "Số nguyên ≥ 0",
    "input_message": "Nhập số nguyên không âm, ví dụ 0, 12, 1250. Để trống nếu chưa có số liệu; "
    "nhập 0 nếu số liệu bằng 0.",
    "error_title": "Giá trị không hợp lệ",
    "error_message": "Ô này chỉ nhận số nguyên từ 0 trở lên (không có chữ, không có phần thập phân).",
    "error_type": "stop",
}
_MONEY_DV = {
    "validate": "decimal",
    "criteria": ">=",
    "value": 0,
    "input_title": "Số tiền (triệu đồng)",
    "input_message": "Nhập số tiền bằng triệu đồng, số không âm, ví dụ 125,5. Để trống nếu chưa có số liệu.",
    "error_title": "Giá trị không hợp lệ",
    "error_message": "Ô này chỉ nhận số từ 0 trở lên, đơn vị triệu đồng.",
    "error_type": "stop",
}


@cache
def _indicator_plan(rules: FormRules, layout: Layout, labels: tuple[tuple[str, str], ...]):
    """What an indicator sheet holds below its headings, the same for every unit (computed once per process).

    Returns the value cells of each indicator, left to right, as (0-based column, kind, rate formula) with kind
    rate, money, count, na or blank; the check-column formula of each indicator that anchors rules; and the
    cross-rule conditional formats as (anchor cell, criteria, cells).
    """
    label_of = dict(labels)
    cells: dict[str, tuple[tuple[int, str, str], ...]] = {}
    checks: dict[str, str] = {}
    for ind in layout.form.indicators:
        row = []
        for period in layout.periods:
            for fld in FIELDS:
                c = layout.col_of[(period, fld)] - 1
                if ind.is_rate and fld == "total":
                    num = layout.cell(ind.numerator[0], ind.numerator[1], period)
                    den = layout.cell(ind.denominator[0], ind.denominator[1], period)
                    row.append((c, "rate", f'=IF(N({den})>0,{num}/{den}*100,"")'))
                elif ind.is_input and fld in ind.fields:
                    row.append((c, "money" if ind.value == "money" else "count", ""))
                elif ind.fields or ind.is_rate:
                    row.append((c, "na", ""))
                else:
                    row.append((c, "blank", ""))
        cells[ind.code] = tuple(row)
        anchored = rules.rules_at(ind.code)
        if anchored:
            pieces = [
                f'IF({rule_condition(rule, layout)},{_excel_text(f"{rule.short} ({label_of[rule.period]}). ")},"")'
                for rule in anchored
            ]
            checks[ind.code] = "=" + "&".join(pieces)
    cross = []
    for rule in rules.cross:
        refs = [layout.cell(t.indicator, t.field, rule.period) for t in rule.terms]
        cross.append((refs[0], "=" + rule_condition(rule, layout, absolute=True), " ".join(refs)))
    return cells, checks, tuple(cross)


def write_indicator_headings(ws, st: _Styles, rnd: Round, form: Form, layout: Layout) -> int:
    """The two heading rows of an indicator form (STT, Chỉ tiêu, Đơn vị tính, period × Tổng số/Nam/Nữ), shared by
    templates and the summary; returns the 0-based first heading row."""
    h = HEADER_ROW - 1
    ws.merge_range(h, 0, h + 1, 0, "STT", st.head)
    ws.merge_range(h, 1, h + 1, 1, "Chỉ tiêu", st.head)
    ws.merge_range(h, 2, h + 1, 2, "Đơn vị tính", st.head)
    for period in rnd.periods:
        c0 = layout.col_of[(period.id, FIELDS[0])] - 1
        ws.merge_range(h, c0, h, c0 + len(FIELDS) - 1, period.label, st.head)
        for i, fld in enumerate(FIELDS):
            ws.write_string(h + 1, c0 + i, form.field_labels[fld], st.head)
    return h


def write_indicator_rows(ws, st: _Styles, form: Form, layout: Layout, last_col: int, values) -> None:
    """Section rows and the STT / label / unit columns of an indicator form (shared by templates and the
    summary); ``values(row, indicator)`` writes the indicator's value cells."""
    for section in form.sections:
        r = layout.row_of[f"§{section.code}"] - 1
        ws.write_string(r, 0, section.stt, st.section_c)
        ws.write_string(r, 1, section.label, st.section)
        for c in range(2, last_col + 1):
            ws.write_blank(r, c, None, st.section)
        for ind in section.indicators:
            r = layout.row_of[ind.code] - 1
            ws.write_string(r, 0, ind.stt, st.stt_bold if ind.stt else st.stt)
            label_style = st.label_indent if ind.depth else (st.label_bold if ind.stt else st.label)
            ws.write_string(r, 1, ind.label, label_style)
            lines = -(-len(ind.label) // (LABEL_CHARS - 4 * ind.depth))
            if lines > 1:
                ws.set_row(r, 16.5 * lines)
            ws.write_string(r, 2, ind.unit, st.unitcol)
            values(r, ind)


def _write_indicator_sheet(wb, st: _Styles, rnd: Round, unit: Unit, form: Form) -> None:
    periods = tuple(p.id for p in rnd.periods)
    layout = form.layout(periods)
    rules = rules_for(form.id, periods)
    ws = wb.add_worksheet(form.sheet, worksheet_class=_Sheet)
    last = layout.last_col - 1  # 0-based column of the check column
    check = layout.check_col - 1
    _write_header(ws, st, rnd, unit, form, last, f"Kỳ báo cáo: {periods_label(rnd)}")

    h = write_indicator_headings(ws, st, rnd, form, layout)
    ws.merge_range(h, check, h + 1, check, CHECK_HEADING, st.head)
    for col, mark in enumerate(["A", "B", "C"] + [str(i) for i in range(1, check - 2)] + ["D"]):
        ws.write_string(h + 2, col, f"({mark})" if col >= 3 and col < check else mark, st.numbering)

    ws.set_column(0, 0, 6)
    ws.set_column(1, 1, 56)
    ws.set_column(2, 2, 10)
    ws.set_column(3, check - 1, 10.5)
    ws.set_column(check, check, 38)

    value_cells, checks, cross = _indicator_plan(rules, layout, tuple((p.id, p.label) for p in rnd.periods))
    count_cells: list[tuple[int, int]] = []
    money_cells: list[tuple[int, int]] = []

    def values(r: int, ind) -> None:
        for c, kind, formula in value_cells[ind.code]:
            if kind == "rate":
                ws.write_formula(r, c, formula, st.rate, "")
            elif kind == "money":
                ws.write_blank(r, c, None, st.money)
                money_cells.append((r, c))
            elif kind == "count":
                ws.write_blank(r, c, None, st.count)
                count_cells.append((r, c))
            elif kind == "na":
                ws.write_string(r, c, NA, st.na)
            else:
                ws.write_blank(r, c, None, st.blank)
        if ind.code in checks:
            ws.write_formula(r, check, checks[ind.code], st.check, "")
        else:
            ws.write_blank(r, check, None, st.check)

    write_indicator_rows(ws, st, form, layout, check, values)

    _validation(ws, count_cells, _COUNT_DV)
    _validation(ws, money_cells, _MONEY_DV)
    for anchor, criteria, cells in cross:
        ws.conditional_format(
            anchor, {"type": "formula", "criteria": criteria, "format": st.error, "multi_range": cells}
        )
    data_first = layout.first_row - 1
    ws.conditional_format(
        data_first,
        check,
        layout.last_row - 1,
        check,
        {"type": "formula", "criteria": f"=LEN(${xl_col_to_name(check)}{layout.first_row})>0", "format": st.error},
    )
    errors_cell = f"{xl_col_to_name(check)}{layout.first_row}:{xl_col_to_name(check)}{layout.last_row}"
    ws.write_formula(
        9,
        0,
        f'=IF(COUNTIF({errors_cell},"?*")>0,"⚠ Có "&COUNTIF({errors_cell},"?*")&" dòng cần kiểm tra lại '
        f'(xem cột Kiểm tra).","")',
        st.note,
        "",
    )
    _write_signature(ws, st, rnd, layout.last_row + 1, check)
    _page_setup(ws, layout.first_row, (HEADER_ROW - 1, HEADER_ROW + 1), 3)
    _protect(ws, rnd)


def _write_schedule_sheet(wb, st: _Styles, rnd: Round, unit: Unit, form: Form, list_rows: dict[str, str]) -> None:
    layout = form.layout(tuple(p.id for p in rnd.periods))
    rules = rules_for(form.id, tuple(p.id for p in rnd.periods))
    ws = wb.add_worksheet(form.sheet, worksheet_class=_Sheet)
    check = layout.check_col - 1
    window = f"{fmt_date(rnd.inspection.start)} – {fmt_date(rnd.inspection.end)}"
    subtitle = form.subtitle or ""
    _write_header(ws, st, rnd, unit, form, check, subtitle)
    h = HEADER_ROW - 1
    for c, col in enumerate(form.columns):
        ws.write_string(h, c, col.label, st.head)
        ws.write_string(h + 1, c, f"({c + 1})", st.numbering)
        ws.set_column(c, c, col.width)
    ws.write_string(h, check, CHECK_HEADING, st.head)
    ws.write_string(h + 1, check, f"({check + 1})", st.numbering)
    ws.set_column(check, check, 34)

    planned = unit.planned
    sessions = ", ".join(rnd.inspection.sessions)
    prefill: list[tuple[str, dt.date | None]] = []
    if planned:
        prefill = [(c, planned.date) for c in planned.communes]
    kinds: dict[str, list[tuple[int, int]]] = {}
    for i in range(form.rows):
        r = layout.first_row - 1 + i
        for c, col in enumerate(form.columns):
            if col.type == "seq":
                ws.write_number(r, c, i + 1, st.stt)
                continue
            kinds.setdefault(col.type, []).append((r, c))
            style = {"date": st.input_date, "session": st.input_center}.get(col.type, st.input_text)
            value = None
            if i < len(prefill):
                if col.type == "commune":
                    value = prefill[i][0]
                elif col.type == "date" and prefill[i][1]:
                    value = prefill[i][1]
                elif col.type == "session" and planned and planned.session:
                    value = planned.session
            if isinstance(value, dt.date):
                ws.write_datetime(r, c, dt.datetime.combine(value, dt.time()), style)
            elif value:
                ws.write_string(r, c, value, style)
            else:
                ws.write_blank(r, c, None, style)
        items = schedule_conditions(rules, layout, r + 1, list_rows, rnd)
        pieces = [f'IF({cond},{_excel_text(short + ". ")},"")' for _, short, cond in items]
        ws.write_formula(r, check, "=" + "&".join(pieces), st.check, "")
        for codes, _, cond in items:
            cells = " ".join(f"{xl_col_to_name(layout.col_of[(code, '')] - 1)}{r + 1}" for code in codes)
            ws.conditional_format(
                cells.split()[0], {"type": "formula", "criteria": "=" + cond, "format": st.error, "multi_range": cells}
            )

    def prompt(col_type: str) -> str:
        col = next(c for c in form.columns if c.type == col_type)
        return col.prompt.format(window=window, sessions=sessions)[:255]

    _validation(
        ws,
        kinds.get("commune", []),
        {
            "validate": "list",
            "source": "=" + list_rows["unit_communes"],
            "input_title": "Xã, phường, thị trấn",
            "input_message": prompt("commune"),
            "error_title": "Xã không có trong danh sách",
            "error_message": f"Hãy chọn một xã, phường, thị trấn thuộc {unit.name} trong danh sách thả xuống.",
        },
    )
    _validation(
        ws,
        kinds.get("date", []),
        {
            "validate": "date",
            "criteria": "between",
            "minimum": dt.datetime.combine(rnd.inspection.start, dt.time()),
            "maximum": dt.datetime.combine(rnd.inspection.end, dt.time()),
            "input_title": "Ngày làm việc",
            "input_message": prompt("date"),
            "error_title": "Ngày không hợp lệ",
            "error_message": f"Ngày làm việc phải nằm trong thời gian kiểm tra {window}.",
        },
    )
    _validation(
        ws,
        kinds.get("session", []),
        {
            "validate": "list",
            "source": "=" + list_rows["sessions"],
            "input_title": "Buổi làm việc",
            "input_message": prompt("session"),
            "error_title": "Buổi không hợp lệ",
            "error_message": f"Chọn một trong: {sessions}.",
        },
    )
    _validation(
        ws,
        kinds.get("phone", []),
        {
            "validate": "length",
            "criteria": "==",
            "value": 10,
            "input_title": "Số điện thoại",
            "input_message": prompt("phone"),
            "error_title": "Số điện thoại không hợp lệ",
            "error_message": "Số điện thoại cần đúng 10 chữ số, bắt đầu bằng 0.",
            "error_type": "warning",
        },
    )
    if rnd.inspection.hours:
        ws.merge_range(
            layout.last_row + 1, 0, layout.last_row + 1, check, f"Thời gian làm việc: {rnd.inspection.hours}.", st.note
        )
    _write_signature(ws, st, rnd, layout.last_row + 3, check)
    _page_setup(ws, layout.first_row, (HEADER_ROW - 1, HEADER_ROW), 2)
    _protect(ws, rnd)


def _write_lists(wb, st: _Styles, rnd: Round, unit: Unit) -> dict[str, str]:
    ws = wb.add_worksheet(LIST_SHEET, worksheet_class=_Sheet)
    ws.write_string(0, 0, "Xã, phường, thị trấn", st.plain)
    ws.write_string(0, 1, "Buổi", st.plain)
    for i, name in enumerate(unit.communes, start=1):
        ws.write_string(i, 0, name, st.plain)
    for i, s in enumerate(rnd.inspection.sessions, start=1):
        ws.write_string(i, 1, s, st.plain)
    ws.hide()
    ws.protect()
    return {
        "unit_communes": f"{LIST_SHEET}!$A$2:$A${len(unit.communes) + 1}",
        "sessions": f"{LIST_SHEET}!$B$2:$B${len(rnd.inspection.sessions) + 1}",
    }


def _write_guide(wb, st: _Styles, rnd: Round, unit: Unit, forms: list[Form]) -> None:
    ws = wb.add_worksheet(GUIDE_SHEET, worksheet_class=_Sheet)
    ws.set_column(0, 0, 110)
    lines: list[tuple[str, object]] = [
        (f"HƯỚNG DẪN ĐIỀN BIỂU MẪU – {unit.name.upper()}", st.guide_title),
        (rnd.title, st.guide_bold),
        (plan_line(rnd), st.guide),
        ("", st.guide),
        (f"Biểu cần nộp: {', '.join(f.annex_label + ' (trang ' + f.sheet + ')' for f in forms)}.", st.guide),
        (
            f"Hạn nộp: chậm nhất ngày {fmt_date(rnd.deadline)}. Gửi tệp này (giữ nguyên định dạng .xlsx) về "
            f"{rnd.issuer}"
            + (f", đồng thời gửi bản mềm qua thư điện tử {rnd.contact['email']}." if rnd.contact.get("email") else "."),
            st.guide_bold,
        ),
        ("", st.guide),
        ("Cách điền:", st.guide_bold),
        (
            "1. Chỉ nhập vào các ô nền vàng; các ô khác đã được khóa. Không thêm, xóa hay di chuyển dòng, cột, trang tính.",
            st.guide,
        ),
        (
            "2. Số liệu là số nguyên (người, vụ, xã…) hoặc số tiền (triệu đồng). Gõ số, không gõ chữ hay dấu phân cách hàng nghìn.",
            st.guide,
        ),
        ("3. Nếu số liệu bằng 0 thì nhập 0. Ô để trống được hiểu là CHƯA CÓ số liệu và sẽ bị báo thiếu.", st.guide),
        (
            "4. Các ô tỷ lệ (%) được tính tự động, không cần nhập. Ô có chữ “x” là chỉ tiêu không hỏi theo giới tính.",
            st.guide,
        ),
        (
            "5. Cột “Kiểm tra” và ô tô đỏ báo ngay các số liệu không khớp (ví dụ: số nữ lớn hơn tổng số, số “trong đó” lớn hơn dòng tổng). Hãy sửa trước khi gửi.",
            st.guide,
        ),
        (
            "6. Phụ lục 01: chọn xã trong danh sách, nhập ngày trong thời gian kiểm tra "
            f"{fmt_date(rnd.inspection.start)} – {fmt_date(rnd.inspection.end)}, buổi làm việc, người đầu mối và số điện thoại.",
            st.guide,
        ),
        (
            "7. Không đổi tên tệp hay tên trang tính; không dán số liệu sang tệp khác. Trang ẩn “_baocao” giúp Sở nhận ra tệp của đơn vị.",
            st.guide,
        ),
        ("", st.guide),
    ]
    contact = rnd.contact
    if contact:
        lines.append(("Liên hệ:", st.guide_bold))
        for key, label in (("name", "Đầu mối"), ("phone", "Điện thoại"), ("email", "Thư điện tử")):
            if contact.get(key):
                lines.append((f"{label}: {contact[key]}", st.guide))
    if rnd.server_url:
        lines.append(
            (
                f"Kiểm tra trước khi gửi: tải tệp lên {rnd.server_url} (đường dẫn riêng của đơn vị do Sở cung cấp) "
                "hoặc bấm nút “Kiểm tra báo cáo” trên thanh công cụ Excel nếu đã được cài.",
                st.guide,
            )
        )
    for i, (text, style) in enumerate(lines):
        ws.write_string(i, 0, text, style)
    ws.protect(rnd.password or "")


def template_metadata(rnd: Round, unit: Unit, forms: list[Form]) -> list[tuple[str, str]]:
    periods = tuple(p.id for p in rnd.periods)
    rows = [
        ("format", META_FORMAT),
        ("generator", f"baocao {__version__}"),
        ("round_id", rnd.id),
        ("level", rnd.level),
        ("unit_code", unit.code),
        ("unit_name", unit.name),
        ("periods", ",".join(periods)),
        ("forms", ",".join(f"{f.id}@{f.version}" for f in forms)),
    ]
    for f in forms:
        rows.append((f"fingerprint:{f.id}", _fingerprint(f.layout(periods))))
    return rows


@cache
def _fingerprint(layout: Layout) -> str:
    return layout.fingerprint


@cache
def cell_map_text(layout: Layout) -> str:
    return ";".join(f"{c.indicator}.{c.field}.{c.period}={c.address}" for c in layout.inputs)


@lru_cache(maxsize=256)
def parse_cell_map(text: str) -> tuple[tuple[str, str, str, str], ...]:
    """Inverse of :func:`cell_map_text`: (indicator, field, period, cell) tuples."""
    out = []
    for item in str(text).split(";"):
        key, sep, cell = item.partition("=")
        parts = key.split(".")
        if sep and len(parts) == 3:
            out.append((parts[0], parts[1], parts[2], cell))
    return tuple(out)


def _write_metadata(wb, st: _Styles, rnd: Round, unit: Unit, forms: list[Form]) -> None:
    ws = wb.add_worksheet(META_SHEET, worksheet_class=_Sheet)
    meta = template_metadata(rnd, unit, forms)
    for r, (key, value) in enumerate(meta):
        ws.write_string(r, 0, key, st.plain)
        ws.write_string(r, 1, value, st.plain)
    # The cell map: where each figure of each form is, so a file is read by indicator code even when an
    # older version of a form changed its layout. One cell per form: “code.field.period=A1;…”.
    periods = tuple(p.id for p in rnd.periods)
    r = len(meta) + 1
    ws.write_string(r, 0, "cell_map", st.plain)
    for i, f in enumerate(forms, start=1):
        ws.write_string(r + i, 0, f"cells:{f.id}", st.plain)
        ws.write_string(r + i, 1, cell_map_text(f.layout(periods)), st.plain)
    ws.hide()
    ws.protect()
    for key, value in meta:
        if key in ("round_id", "unit_code", "forms"):
            wb.set_custom_property(f"baocao:{key}", value)


def new_workbook(path: str | Path) -> xlsxwriter.Workbook:
    """An XlsxWriter workbook in the official font that never turns text into a number, formula or link:
    text (above all text from a return) is always written as text."""
    return xlsxwriter.Workbook(
        str(path),
        {
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "in_memory": True,
            "default_format_properties": {"font_name": FONT, "font_size": 12},
        },
    )


def close_workbook(wb: xlsxwriter.Workbook, path: str | Path) -> None:
    """Store the workbook. The system's error (a full disk, a folder gone) comes out as the :class:`OSError` it is,
    with its errno (XlsxWriter wraps it), so that callers can say why in Vietnamese."""
    try:
        wb.close()
    except xlsxwriter.exceptions.FileCreateError as exc:
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else None
        if inner is None:
            raise OSError(f"không ghi được tệp {path}: {exc}") from exc
        raise inner from None


def write_template(rnd: Round, unit: Unit, path: str | Path) -> Path:
    """Write one unit's template workbook atomically (temporary file, then rename)."""
    path = Path(path)
    forms_by_id = available_forms()
    forms = [forms_by_id[f] for f in sorted(unit.forms)]
    with atomic_file(path, suffix=".xlsx") as tmp:
        wb = new_workbook(tmp)
        wb.set_properties(
            {
                "title": f"{rnd.title} – {unit.name}",
                "author": rnd.issuer,
                "created": FIXED_TIME,
                "comments": "Biểu mẫu do baocao tạo",
            }
        )
        st = _Styles(wb)
        list_rows = None
        for form in forms:
            if form.kind == "schedule":
                if list_rows is None:
                    list_rows = {
                        "unit_communes": f"{LIST_SHEET}!$A$2:$A${len(unit.communes) + 1}",
                        "sessions": f"{LIST_SHEET}!$B$2:$B${len(rnd.inspection.sessions) + 1}",
                    }
                _write_schedule_sheet(wb, st, rnd, unit, form, list_rows)
            else:
                _write_indicator_sheet(wb, st, rnd, unit, form)
        _write_guide(wb, st, rnd, unit, forms)
        _write_lists(wb, st, rnd, unit)
        _write_metadata(wb, st, rnd, unit, forms)
        wb.worksheets()[0].activate()
        close_workbook(wb, tmp)
    return path


def _write_chunk(args: tuple[Round, list[Unit], str]) -> list[str]:
    rnd, units, out = args
    return [str(write_template(rnd, u, Path(out) / f"{u.file_stem}.xlsx")) for u in units]


def write_templates(
    rnd: Round, out_dir: str | Path, units: list[Unit] | None = None, workers: int | None = None
) -> list[Path]:
    """One workbook per unit that owes a form, named ``<unit code>_<slug>.xlsx``.

    With many units the work is spread over ``workers`` processes (default: one per CPU).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    todo = list(units or rnd.units_owing())
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(todo) < 40:
        return [write_template(rnd, u, out / f"{u.file_stem}.xlsx") for u in todo]
    from concurrent.futures import ProcessPoolExecutor

    size = -(-len(todo) // (workers * 4))
    chunks = [(rnd, todo[i : i + size], str(out)) for i in range(0, len(todo), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [Path(p) for chunk in pool.map(_write_chunk, chunks) for p in chunk]
