"""Usable returns -> the province's figures: totals, recomputed rates, schedule, status, tidy data.

Pure aggregation over a validation :class:`~toolkit.validate.Report`; writing the workbook is ``summary.py``.
Only *counted* submissions enter a total: valid (no error finding) and not superseded by a later file of the
same unit. Every total says exactly which units are in it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .findings import Finding
from .forms import Form, available_forms
from .read import Submission, Value
from .round import Round, Unit
from .text import fold_place
from .validate import Report

FigureKey = tuple[str, str, str]  # (indicator, field, period)


@dataclass
class FormTotals:
    form: Form
    units: list[str]  # unit codes whose figures are in the totals, in round order
    totals: dict[FigureKey, float] = field(default_factory=dict)
    rates: dict[tuple[str, str], float | None] = field(default_factory=dict)  # (rate indicator, period)
    by_unit: dict[str, dict[FigureKey, float]] = field(default_factory=dict)
    unit_rates: dict[str, dict[tuple[str, str], float | None]] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)  # unit code -> why its figures are not in


@dataclass
class ScheduleEntry:
    unit_code: str
    unit_name: str
    commune: str
    date: dt.date | None
    session: str
    focal_person: str
    phone: str
    notes: str
    source: str
    cell: str
    conflicts: list[str] = field(default_factory=list)
    counted: bool = True  # False: from a file with errors (its figures are not in the totals; its visits are shown)


@dataclass
class UnitStatus:
    unit: Unit
    forms_owed: tuple[str, ...]
    submission: Submission | None  # the file that counts (or the latest one seen)
    files: list[Submission]
    received: dt.datetime | None
    on_time: bool | None
    valid: bool | None
    errors: int
    warnings: int

    @property
    def state(self) -> str:
        """missing | invalid | late | ok (Vietnamese labels in summary.py)."""
        if not self.forms_owed:
            return "not-owed"
        if self.submission is None:
            return "missing"
        if not self.valid:
            return "invalid"
        return "ok" if self.on_time else "late"


@dataclass(slots=True)
class TidyRow:
    """One row of the tidy data table: one figure of one counted return, traced to its cell."""

    unit_code: str
    unit_name: str
    form: str
    indicator: str
    label: str
    field: str
    period: str
    period_label: str
    value: float
    source_file: str
    sha256: str
    sheet: str
    cell: str


@dataclass(frozen=True, slots=True)
class TidyBlock:
    """The rows of the tidy table that one counted return gives for one form: its figures, in the order read."""

    unit_code: str
    unit_name: str
    form: str
    source_file: str
    sha256: str
    values: list[Value]  # every one with a number (blank and unusable figures are not in the table)


class TidyTable(Sequence[TidyRow]):
    """The tidy data table (unit, form, indicator, field, period, value, source file, sha256, cell): a sequence of
    :class:`TidyRow`, kept as one :class:`TidyBlock` per return and form (a commune round has several hundred
    thousand figures; a row object is made only when one is asked for)."""

    def __init__(self, blocks: list[TidyBlock], labels: dict[tuple[str, str], str], period_labels: dict[str, str]):
        self.blocks = blocks
        self.labels = labels  # (form, indicator code) -> label
        self.period_labels = period_labels  # period id -> label
        self._starts = list(itertools.accumulate((len(b.values) for b in blocks), initial=0))

    def __len__(self) -> int:
        return self._starts[-1]

    def _row(self, b: TidyBlock, v: Value) -> TidyRow:
        return TidyRow(
            b.unit_code,
            b.unit_name,
            b.form,
            v.indicator,
            self.labels[(b.form, v.indicator)],
            v.field,
            v.period,
            self.period_labels.get(v.period, v.period),
            v.value,
            b.source_file,
            b.sha256,
            v.sheet,
            v.cell,
        )

    def __iter__(self) -> Iterator[TidyRow]:
        for b in self.blocks:
            for v in b.values:
                yield self._row(b, v)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        k = bisect.bisect_right(self._starts, index) - 1
        return self._row(self.blocks[k], self.blocks[k].values[index - self._starts[k]])

    @classmethod
    def of_rows(cls, rows: Iterable[TidyRow]) -> TidyTable:
        """A table holding exactly ``rows`` (for tests and callers that make their own rows)."""
        blocks: list[TidyBlock] = []
        labels: dict[tuple[str, str], str] = {}
        period_labels: dict[str, str] = {}
        for t in rows:
            key = (t.unit_code, t.unit_name, t.form, t.source_file, t.sha256)
            if not blocks or (blocks[-1].unit_code, blocks[-1].unit_name, blocks[-1].form, blocks[-1].source_file,
                              blocks[-1].sha256) != key:  # fmt: skip
                blocks.append(TidyBlock(*key, []))
            blocks[-1].values.append(Value(t.form, t.sheet, t.cell, t.indicator, t.field, t.period, t.value, t.value))
            labels[(t.form, t.indicator)] = t.label
            period_labels[t.period] = t.period_label
        return cls(blocks, labels, period_labels)


@dataclass
class Consolidation:
    round: Round
    report: Report
    forms: dict[str, FormTotals]
    schedule: list[ScheduleEntry]
    status: list[UnitStatus]
    tidy: TidyTable
    findings: list[tuple[Submission, Finding]]

    @property
    def missing_units(self) -> list[Unit]:
        return [s.unit for s in self.status if s.state == "missing"]


def rate(num: float | None, den: float | None) -> float | None:
    """A rate in percent from its numerator and denominator; None when the denominator is 0 or missing."""
    if num is None or not den:
        return None
    return num / den * 100


def _rates_of(form: Form, periods: tuple[str, ...], figures: dict[FigureKey, float]):
    out: dict[tuple[str, str], float | None] = {}
    for ind in form.indicators:
        if ind.is_rate:
            for period in periods:
                num = figures.get((ind.numerator[0], ind.numerator[1], period))
                den = figures.get((ind.denominator[0], ind.denominator[1], period))
                out[(ind.code, period)] = rate(num, den)
    return out


def consolidate(report: Report, rnd: Round | None = None) -> Consolidation:
    rnd = rnd or report.round
    periods = tuple(p.id for p in rnd.periods)
    period_label = {p.id: p.label for p in rnd.periods}
    forms = available_forms()
    counted = report.counted()
    counted_by_unit = {s.unit_code: s for s in counted}
    files_by_unit = _files_by_unit(report)

    totals: dict[str, FormTotals] = {}
    blocks: list[TidyBlock] = []
    labels: dict[tuple[str, str], str] = {}  # (form, indicator code) -> label (Form.indicator is a linear search)
    for form_id in sorted(rnd.expected_forms()):
        form = forms[form_id]
        if form.kind != "indicators":
            continue
        ft = FormTotals(form=form, units=[])
        for ind in form.indicators:
            labels.setdefault((form_id, ind.code), ind.label)
        sums = ft.totals
        for unit in rnd.units:
            if form_id not in unit.forms:
                continue
            sub = counted_by_unit.get(unit.code)
            if sub is None or form_id not in sub.forms:
                ft.excluded[unit.code] = _why_excluded(report, unit, files_by_unit.get(unit.code, []))
                continue
            ft.units.append(unit.code)
            figures: dict[FigureKey, float] = {}
            values = [v for v in sub.values if v.form == form_id and v.value is not None]
            for v in values:
                key = (v.indicator, v.field, v.period)
                figures[key] = value = v.value
                sums[key] = sums.get(key, 0.0) + value
            if values:  # (a return whose every figure of the form is blank gives no row)
                blocks.append(TidyBlock(unit.code, unit.name, form_id, sub.name, sub.sha256, values))
            ft.by_unit[unit.code] = figures
            ft.unit_rates[unit.code] = _rates_of(form, periods, figures)
        ft.rates = _rates_of(form, periods, ft.totals)
        totals[form_id] = ft

    status = _status(rnd, report, files_by_unit)
    return Consolidation(
        round=rnd,
        report=report,
        forms=totals,
        schedule=_schedule(rnd, counted, status),
        status=status,
        tidy=TidyTable(blocks, labels, period_label),
        findings=[(s, f) for s in report.submissions for f in s.findings],
    )


def _files_by_unit(report: Report) -> dict[str | None, list[Submission]]:
    """Each unit's files in report order (one pass, rather than one scan of the report per unit)."""
    out: dict[str | None, list[Submission]] = {}
    for s in report.submissions:
        out.setdefault(s.unit_code, []).append(s)
    return out


def _why_excluded(report: Report, unit: Unit, files: list[Submission] | None = None) -> str:
    """Why ``unit``'s figures are not in; ``files``: its files in ``report`` when the caller has them."""
    if files is None:
        files = [s for s in report.submissions if s.unit_code == unit.code]
    if not files:
        return "chưa nộp"
    latest = [s for s in files if s.superseded_by is None] or files
    sub = latest[-1]
    if not sub.readable:
        return f"tệp {sub.name} không đọc được"
    if sub.errors:
        return f"tệp {sub.name} còn {len(sub.errors)} lỗi"
    return f"tệp {sub.name} không có biểu này"


def _schedule(rnd: Round, counted: list[Submission], status: list[UnitStatus]) -> list[ScheduleEntry]:
    """Every unit's planned visits, merged and sorted, conflicts flagged.

    The inspection calendar shows the visits of each unit's current file of this round, also when that file has
    errors (an error in a figure should not hide a visit, and a visit outside the window or booked twice is an
    error itself): such rows say so and are not ``counted``.
    """
    entries: list[ScheduleEntry] = []
    units: dict[str, Unit] = {}  # code -> unit, the first of a code as Round.unit finds it
    for u in rnd.units:
        units.setdefault(u.code, u)
    is_counted = {id(s) for s in counted}
    sources = list(counted)
    for st in status:
        sub = st.submission
        if (
            sub is not None
            and id(sub) not in is_counted
            and sub.readable
            and sub.superseded_by is None
            and not any(f.code == "round-mismatch" for f in sub.findings)
        ):
            sources.append(sub)
    for sub in sources:
        unit = units.get(str(sub.unit_code))
        flagged = (
            []
            if id(sub) in is_counted
            else [f"Tệp {sub.name} còn {len(sub.errors)} lỗi (xem trang “Lỗi và cảnh báo”), đơn vị cần sửa và gửi lại"]
        )
        for row in sub.schedule:
            if not row.used:
                continue
            v = row.values
            date = v.get("date")
            entries.append(
                ScheduleEntry(
                    unit_code=sub.unit_code,
                    unit_name=unit.name if unit else sub.unit_code,
                    commune=_text(v.get("commune")),
                    date=date if isinstance(date, dt.date) else None,
                    session=_text(v.get("session")),
                    focal_person=_text(v.get("focal_person")),
                    phone=_text(v.get("phone")),
                    notes=_text(v.get("notes")),
                    source=sub.name,
                    cell=f"{row.sheet}!{row.cells.get('commune', '')}",
                    conflicts=list(flagged),
                    counted=not flagged,
                )
            )
    entries.sort(key=lambda e: (e.date or dt.date.max, _session_order(rnd, e.session), e.unit_code, e.commune))
    # conflicts. A commune is one unit's own (the same name in two districts is two communes): it is keyed by unit.
    visits: dict[tuple[str, str], list[ScheduleEntry]] = {}  # (unit, commune) -> its visits, in date order
    by_date: dict[dt.date, set[str]] = {}
    for e in entries:
        if e.date and not (rnd.inspection.start <= e.date <= rnd.inspection.end):
            e.conflicts.append(
                f"Ngày ngoài thời gian kiểm tra ({rnd.inspection.start:%d/%m/%Y} – {rnd.inspection.end:%d/%m/%Y})"
            )
        if e.commune:
            visits.setdefault((str(e.unit_code), fold_place(e.commune)), []).append(e)
        if e.date:
            by_date.setdefault(e.date, set()).add(e.unit_code)
    for same in visits.values():
        days = [e.date for e in same if e.date]
        if len(same) < 2 or not days:
            continue
        twice = sorted({d for d in days if days.count(d) > 1})
        if twice:  # one commune twice on one date
            msg = f"{same[0].commune} được xếp hai lần ngày {', '.join(f'{d:%d/%m/%Y}' for d in twice)}"
            for e in same:
                if e.date in twice:
                    e.conflicts.append(msg)
        if len(set(days)) > 1:  # one commune on several dates: the plan visits each commune once
            msg = f"{same[0].commune} được xếp lịch nhiều ngày: {', '.join(f'{d:%d/%m/%Y}' for d in sorted(set(days)))}"
            for e in same:
                e.conflicts.append(msg)
    if rnd.inspection.one_team:
        names_on: dict[dt.date, list[str]] = {}  # the units' names of a date, found once per date
        for e in entries:
            units = by_date.get(e.date) if e.date else None
            if units and len(units) > 1:
                if e.date not in names_on:
                    names_on[e.date] = sorted({x.unit_name for x in entries if x.date == e.date})
                names = names_on[e.date]
                e.conflicts.append(
                    f"Kế hoạch chỉ có một đoàn kiểm tra nhưng ngày {e.date:%d/%m/%Y} có {len(units)} đơn vị: "
                    + ", ".join(names)
                )
    return entries


def _session_order(rnd: Round, session: str) -> int:
    keys = [fold_place(s) for s in rnd.inspection.sessions]
    k = fold_place(session)
    return keys.index(k) if k in keys else len(keys)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _status(
    rnd: Round, report: Report, files_by_unit: dict[str | None, list[Submission]] | None = None
) -> list[UnitStatus]:
    if files_by_unit is None:
        files_by_unit = _files_by_unit(report)
    out = []
    for unit in rnd.units:
        files = list(files_by_unit.get(unit.code, []))
        # several files left standing (another round's only, say): the last received, as the registry orders them
        current = sorted(
            (s for s in files if s.superseded_by is None), key=lambda s: (s.modified or dt.datetime.min, s.name)
        )
        sub = current[-1] if current else (files[-1] if files else None)
        received = sub.modified if sub else None
        on_time = None if received is None else received.date() <= rnd.deadline
        out.append(
            UnitStatus(
                unit=unit,
                forms_owed=unit.forms,
                submission=sub,
                files=files,
                received=received,
                on_time=on_time,
                valid=None if sub is None else sub.valid,
                errors=len(sub.errors) if sub else 0,
                warnings=len(sub.warnings) if sub else 0,
            )
        )
    return out
