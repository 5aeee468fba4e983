"""Form definitions (``workbook_templates/*.yaml``) and their cell layout.

One definition per form drives the template's layout *and* tells the reader where every input cell is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from openpyxl.utils import get_column_letter

from .resources import forms_dir
from .text import nfc
from .yamlio import ConfigError, load_yaml

FIELDS = ("total", "male", "female")
DEFAULT_FIELD_LABELS = {"total": "Tổng số", "male": "Nam", "female": "Nữ"}
VALUE_KINDS = ("count", "money", "rate")
SCHEDULE_TYPES = ("seq", "commune", "date", "session", "text", "phone")

# Sheet geometry shared by the writer and the reader (rows are 1-based).
HEADER_ROW = 11  # first row of the column headings
INDICATOR_FIRST_ROW = 14  # two heading rows + one numbering row
SCHEDULE_FIRST_ROW = 13  # one heading row + one numbering row
FIRST_VALUE_COL = 4  # A: STT, B: Chỉ tiêu, C: Đơn vị tính, then periods × fields


@dataclass(frozen=True)
class Indicator:
    code: str
    label: str
    unit: str
    section: str
    stt: str = ""
    fields: tuple[str, ...] = ()
    parent: str | None = None
    value: str | None = None  # count | money | rate | None for a heading row
    numerator: tuple[str, str] | None = None
    denominator: tuple[str, str] | None = None
    depth: int = 0

    @property
    def is_input(self) -> bool:
        return bool(self.fields) and self.value in ("count", "money")

    @property
    def is_rate(self) -> bool:
        return self.value == "rate"


@dataclass(frozen=True)
class Section:
    code: str
    stt: str
    label: str
    indicators: tuple[Indicator, ...]


@dataclass(frozen=True)
class ScheduleColumn:
    code: str
    label: str
    type: str
    width: float = 14
    prompt: str = ""


@dataclass(frozen=True, eq=False)
class Form:
    id: str
    version: int
    kind: str  # indicators | schedule
    annex: str
    sheet: str
    title: str
    path: Path
    subtitle: str = ""
    field_labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELD_LABELS))
    sections: tuple[Section, ...] = ()
    columns: tuple[ScheduleColumn, ...] = ()
    rows: int = 0

    @property
    def indicators(self) -> list[Indicator]:
        return [ind for s in self.sections for ind in s.indicators]

    def indicator(self, code: str) -> Indicator:
        for ind in self.indicators:
            if ind.code == code:
                return ind
        raise KeyError(code)

    def column(self, code: str) -> ScheduleColumn:
        for col in self.columns:
            if col.code == code:
                return col
        raise KeyError(code)

    @property
    def annex_label(self) -> str:
        return f"Phụ lục {self.annex}"

    def layout(self, periods: tuple[str, ...]) -> Layout:
        return _layout(self, tuple(periods))


@dataclass(frozen=True)
class InputCell:
    """One input cell of a template: which figure it holds and where it is."""

    form: str
    indicator: str  # indicator code, or the schedule column code
    field: str  # total | male | female, or "" for a schedule
    period: str  # period id, or "" for a schedule
    row: int
    col: int
    kind: str  # count | money | commune | date | session | text | phone

    @cached_property  # asked for every figure of every return
    def address(self) -> str:
        return f"{get_column_letter(self.col)}{self.row}"


@dataclass(frozen=True, eq=False)
class Layout:
    form: Form
    periods: tuple[str, ...]
    row_of: dict[str, int]
    col_of: dict[tuple[str, str], int]  # (period, field) -> column, or (column code, "") for schedules
    inputs: tuple[InputCell, ...]
    last_col: int
    check_col: int
    first_row: int
    last_row: int

    def cell(self, code: str, field: str = "", period: str = "") -> str:
        """A1 address of an indicator's field in a period (or of a schedule column in row ``code``)."""
        return f"{get_column_letter(self.col_of[(period, field)])}{self.row_of[code]}"

    def schedule_cell(self, column: str, index: int) -> str:
        return f"{get_column_letter(self.col_of[(column, '')])}{self.first_row + index}"

    def input_map(self) -> dict[tuple[str, str, str], InputCell]:
        return {(c.indicator, c.field, c.period): c for c in self.inputs}

    @property
    def fingerprint(self) -> str:
        payload = {
            "form": self.form.id,
            "version": self.form.version,
            "sheet": self.form.sheet,
            "cells": [[c.indicator, c.field, c.period, c.address] for c in self.inputs],
            "labels": [[i.code, i.label] for i in self.form.indicators]
            + [[c.code, c.label] for c in self.form.columns],
        }
        raw = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


@cache
def _layout(form: Form, periods: tuple[str, ...]) -> Layout:
    inputs: list[InputCell] = []
    row_of: dict[str, int] = {}
    col_of: dict[tuple[str, str], int] = {}
    if form.kind == "schedule":
        first = SCHEDULE_FIRST_ROW
        for c_idx, col in enumerate(form.columns, start=1):
            col_of[(col.code, "")] = c_idx
        for i in range(form.rows):
            row = first + i
            row_of[str(i)] = row
            for c_idx, col in enumerate(form.columns, start=1):
                if col.type != "seq":
                    inputs.append(InputCell(form.id, col.code, "", "", row, c_idx, col.type))
        last_col = len(form.columns)
        return Layout(
            form, periods, row_of, col_of, tuple(inputs), last_col + 1, last_col + 1, first, first + form.rows - 1
        )
    col = FIRST_VALUE_COL
    for period in periods:
        for f in FIELDS:
            col_of[(period, f)] = col
            col += 1
    check_col = col
    row = INDICATOR_FIRST_ROW
    for section in form.sections:
        row_of[f"§{section.code}"] = row
        row += 1
        for ind in section.indicators:
            row_of[ind.code] = row
            if ind.is_input:
                for period in periods:
                    for f in ind.fields:
                        inputs.append(InputCell(form.id, ind.code, f, period, row, col_of[(period, f)], ind.value))
            row += 1
    return Layout(form, periods, row_of, col_of, tuple(inputs), check_col, check_col, INDICATOR_FIRST_ROW, row - 1)


# ---------------------------------------------------------------------------------------------- loading


def _ref(path: Path, line: int | None, text: str, codes: set[str]) -> tuple[str, str]:
    code, _, fld = str(text).partition(".")
    if code not in codes or fld not in FIELDS:
        raise ConfigError(path, line, f"tham chiếu “{text}” không hợp lệ.", "Dùng dạng MÃ.trường, ví dụ BG13.female.")
    return code, fld


def _parse_rows(path: Path, section_code: str, rows: list) -> tuple[Indicator, ...]:
    codes = {r.get("code") for r in rows if isinstance(r, dict)}
    out: list[Indicator] = []
    for i, r in enumerate(rows):
        line = rows.line_of(i) if hasattr(rows, "line_of") else None
        if not isinstance(r, dict) or not r.get("code") or not r.get("label"):
            raise ConfigError(path, line, "mỗi chỉ tiêu cần có “code” và “label”.")
        fields = tuple(r.get("fields") or ())
        bad = [f for f in fields if f not in FIELDS]
        if bad:
            raise ConfigError(path, line, f"trường “{bad[0]}” không hợp lệ.", "Dùng total, male, female.")
        value = r.get("value") or ("count" if fields else None)
        if value == "rate":
            num = _ref(path, line, r.get("numerator", ""), codes)
            den = _ref(path, line, r.get("denominator", ""), codes)
        else:
            num = den = None
        if value is not None and value not in VALUE_KINDS:
            raise ConfigError(path, line, f"loại giá trị “{value}” không hợp lệ.", "Dùng count, money hoặc rate.")
        parent = r.get("parent")
        if parent and parent not in codes:
            raise ConfigError(path, line, f"dòng cha “{parent}” không có trong biểu.")
        out.append(
            Indicator(
                code=str(r["code"]),
                label=nfc(str(r["label"])),
                unit=nfc(str(r.get("unit", ""))),
                section=section_code,
                stt=str(r.get("stt", "")),
                fields=("total",) if value == "rate" else fields,
                parent=parent,
                value=value,
                numerator=num,
                denominator=den,
                depth=1 if parent or (not r.get("stt") and value != "rate") else 0,
            )
        )
    return tuple(out)


def _load_form(path: Path, registry: dict[str, Form]) -> Form:
    data = load_yaml(path)
    if not isinstance(data, dict) or "id" not in data:
        raise ConfigError(path, None, "định nghĩa biểu mẫu cần có “id”.")
    kind = data.get("kind", "indicators")
    common = dict(
        id=str(data["id"]),
        version=int(data.get("version", 1)),
        kind=kind,
        annex=str(data.get("annex", "")),
        sheet=str(data.get("sheet", data["id"])),
        title=nfc(str(data.get("title", ""))),
        subtitle=nfc(str(data.get("subtitle", ""))),
        path=path,
    )
    if kind == "schedule":
        cols = tuple(
            ScheduleColumn(
                code=str(c["code"]),
                label=nfc(str(c["label"])),
                type=str(c.get("type", "text")),
                width=float(c.get("width", 14)),
                prompt=nfc(str(c.get("prompt", ""))),
            )
            for c in data.get("columns", [])
        )
        for c in cols:
            if c.type not in SCHEDULE_TYPES:
                raise ConfigError(path, None, f"loại cột “{c.type}” không hợp lệ.", ", ".join(SCHEDULE_TYPES))
        return Form(**common, columns=cols, rows=int(data.get("rows", 6)))
    sections: list[Section] = []
    for s in data.get("sections", []):
        if "from" in s:
            other = registry.get(str(s["from"]))
            if other is None:
                raise ConfigError(path, s.line_of("from"), f"biểu “{s['from']}” chưa được định nghĩa.")
            sections.extend(sec for sec in other.sections if sec.code == s.get("code", sec.code))
            continue
        rows = s.get("rows", [])
        sections.append(
            Section(str(s["code"]), str(s.get("stt", "")), nfc(str(s["label"])), _parse_rows(path, s["code"], rows))
        )
    labels = dict(DEFAULT_FIELD_LABELS)
    labels.update({k: nfc(str(v)) for k, v in (data.get("field_labels") or {}).items()})
    return Form(**common, field_labels=labels, sections=tuple(sections))


@cache
def _load_all(directory: str) -> dict[str, Form]:
    registry: dict[str, Form] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        form = _load_form(path, registry)
        registry[form.id] = form
    return registry


def available_forms(directory: Path | None = None) -> dict[str, Form]:
    """All form definitions, by id (PL01, PL02, PL03)."""
    return _load_all(str(directory or forms_dir()))


def get_form(form_id: str) -> Form:
    return available_forms()[form_id]


def iter_forms(ids: tuple[str, ...] | list[str]) -> Iterator[Form]:
    forms = available_forms()
    for form_id in sorted(ids):
        yield forms[form_id]
