"""Validation rules (``schemas/*.yaml``) expanded into concrete checks.

The same expanded rules feed the live checks written into each template (``render.py``) and the pandera
schemas that validate returned workbooks (``schemas.py``): a rule is written once, in ``schemas/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .forms import FIELDS, Form, available_forms
from .resources import schemas_dir
from .text import nfc
from .yamlio import ConfigError, load_yaml

OPERATORS = {"<=": "<=", ">=": ">=", "==": "=", "<": "<", ">": ">", "!=": "<>"}
MISSING_STRATEGIES = ("skip_if_any_missing", "skip_if_all_missing", "never_skip")
SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Term:
    indicator: str
    field: str


@dataclass(frozen=True)
class CrossRule:
    """One cross-field check for one period: sum(left) <op> sum(right)."""

    id: str  # unique within the form, e.g. "female_le_total/TE04/female/Y2023"
    rule: str  # the rule it was expanded from, e.g. "female_le_total" or "TE07_LE_TE06"
    form: str
    period: str
    left: tuple[Term, ...]
    op: str
    right: tuple[Term, ...]
    severity: str
    missing: str
    message: str
    short: str
    anchor: str  # indicator whose row shows the check

    @property
    def terms(self) -> tuple[Term, ...]:
        return self.left + self.right

    def holds(self, left: float, right: float) -> bool:
        return {
            "<=": left <= right,
            ">=": left >= right,
            "==": abs(left - right) < 1e-9,
            "<": left < right,
            ">": left > right,
            "!=": abs(left - right) >= 1e-9,
        }[self.op]


@dataclass(frozen=True)
class FieldConstraint:
    required: bool = True
    integer: bool = True
    min: float | None = 0
    max: float | None = None


@dataclass(frozen=True)
class ColumnConstraint:
    """A constraint on one column of a schedule form (PL01)."""

    code: str
    required: bool = False
    in_list: str | None = None  # unit_communes | sessions
    within: str | None = None  # inspection_window
    digits: int | None = None
    leading_zero: bool = False
    invalid_short: str = ""  # the value is not of the column's type (e.g. text in a date cell)
    short: str = ""
    message: str = ""


@dataclass(frozen=True)
class UniqueRule:
    id: str
    columns: tuple[str, ...]
    severity: str
    short: str
    message: str


@dataclass(frozen=True, eq=False)
class FormRules:
    form: Form
    path: Path
    fields: dict[str, FieldConstraint] = field(default_factory=dict)
    cross: tuple[CrossRule, ...] = ()
    columns: dict[str, ColumnConstraint] = field(default_factory=dict)
    unique: tuple[UniqueRule, ...] = ()
    required_short: str = ""
    required_message: str = ""
    min_rows: int = 0
    min_rows_message: str = ""

    def rules_at(self, indicator: str) -> list[CrossRule]:
        return [r for r in self.cross if r.anchor == indicator]


def _text(node: dict, key: str, default: str = "") -> str:
    value = node.get(key, default)
    return nfc(str(value)) if value is not None else default


def _parse_side(path: Path, line, form: Form, value, fields: tuple[str, ...]) -> list[tuple[Term, ...]]:
    """A side of a rule, once per field: “TE07” with fields [total, female] gives two sides."""
    items = value if isinstance(value, list) else [value]
    codes = {i.code for i in form.indicators}
    per_field: list[tuple[Term, ...]] = []
    for f in fields:
        terms = []
        for item in items:
            code, _, fld = str(item).partition(".")
            if code not in codes:
                raise ConfigError(path, line, f"chỉ tiêu “{code}” không có trong biểu {form.id}.")
            fld = fld or f
            if fld not in FIELDS:
                raise ConfigError(path, line, f"trường “{fld}” không hợp lệ.", "Dùng total, male hoặc female.")
            if fld not in form.indicator(code).fields:
                raise ConfigError(path, line, f"chỉ tiêu “{code}” không có trường “{fld}”.")
            terms.append(Term(code, fld))
        per_field.append(tuple(terms))
    return per_field


def _expand_generic(form: Form, generic: dict, periods: tuple[str, ...]) -> list[CrossRule]:
    out: list[CrossRule] = []

    def add(kind: str, ind, left, op, right, tag):
        spec = generic.get(kind)
        if not spec or spec.get("enabled", True) is False:
            return
        for period in periods:
            out.append(
                CrossRule(
                    id=f"{kind}/{ind.code}/{tag}/{period}",
                    rule=kind,
                    form=form.id,
                    period=period,
                    left=left,
                    op=op,
                    right=right,
                    severity=_text(spec, "severity", "error"),
                    missing=_text(spec, "missing", "skip_if_any_missing"),
                    message=_text(spec, "message"),
                    short=_text(spec, "short"),
                    anchor=ind.code,
                )
            )

    for ind in form.indicators:
        if not ind.is_input:
            continue
        f = set(ind.fields)
        if {"male", "female", "total"} <= f:
            add(
                "male_female_sum",
                ind,
                (Term(ind.code, "male"), Term(ind.code, "female")),
                "==",
                (Term(ind.code, "total"),),
                "sum",
            )
        if {"female", "total"} <= f:
            add("female_le_total", ind, (Term(ind.code, "female"),), "<=", (Term(ind.code, "total"),), "female")
        if ind.parent:
            parent = form.indicator(ind.parent)
            for fld in ind.fields:
                if fld in parent.fields:
                    add("part_le_parent", ind, (Term(ind.code, fld),), "<=", (Term(parent.code, fld),), fld)
    return out


def _load_rules(path: Path, form: Form, periods: tuple[str, ...], seen: tuple[str, ...] = ()) -> FormRules:
    data = load_yaml(path)
    if not isinstance(data, dict) or data.get("form") != form.id and not seen:
        raise ConfigError(path, None, f"tệp quy tắc phải có “form: {form.id}”.")
    base: FormRules | None = None
    if data.get("extends"):
        parent_id = str(data["extends"])
        if parent_id in seen:
            raise ConfigError(path, data.line_of("extends"), "quy tắc kế thừa vòng tròn.")
        base = _load_rules(schemas_dir() / f"{parent_id.lower()}.yaml", form, periods, seen + (form.id,))
    fields = dict(base.fields) if base else {}
    for kind, spec in (data.get("fields") or {}).items():
        fields[kind] = FieldConstraint(
            required=bool(spec.get("required", True)),
            integer=bool(spec.get("integer", kind == "count")),
            min=spec.get("min", 0),
            max=spec.get("max"),
        )
    generic = data.get("generic") or {}
    cross: list[CrossRule] = list(base.cross) if base else []
    if generic:
        cross = [r for r in cross if r.rule not in generic]
        cross.extend(_expand_generic(form, generic, periods))
    rules = data.get("rules") or []
    for i, spec in enumerate(rules):
        line = rules.line_of(i)
        if spec.get("kind") == "unique":
            continue
        for key in ("id", "left", "op", "right", "message"):
            if key not in spec:
                raise ConfigError(path, line, f"quy tắc thiếu mục “{key}”.")
        op = str(spec["op"])
        if op not in OPERATORS:
            raise ConfigError(path, line, f"toán tử “{op}” không hợp lệ.", f"Dùng {', '.join(OPERATORS)}.")
        severity = _text(spec, "severity", "error")
        missing = _text(spec, "missing", "skip_if_any_missing")
        if severity not in SEVERITIES or missing not in MISSING_STRATEGIES:
            raise ConfigError(path, line, "mức độ (severity) hoặc cách xử lý ô trống (missing) không hợp lệ.")
        flds = tuple(spec.get("fields") or ("total",))
        lefts = _parse_side(path, line, form, spec["left"], flds)
        rights = _parse_side(path, line, form, spec["right"], flds)
        for fld, left, right in zip(flds, lefts, rights):
            for period in periods:
                cross.append(
                    CrossRule(
                        id=f"{spec['id']}/{fld}/{period}",
                        rule=str(spec["id"]),
                        form=form.id,
                        period=period,
                        left=left,
                        op=op,
                        right=right,
                        severity=severity,
                        missing=missing,
                        message=_text(spec, "message"),
                        short=_text(spec, "short"),
                        anchor=left[0].indicator,
                    )
                )
    columns: dict[str, ColumnConstraint] = {}
    for code, spec in (data.get("columns") or {}).items():
        columns[code] = ColumnConstraint(
            code=code,
            required=bool(spec.get("required", False)),
            in_list=spec.get("in_list"),
            within=spec.get("within"),
            digits=spec.get("digits"),
            leading_zero=bool(spec.get("leading_zero", False)),
            invalid_short=_text(spec, "invalid_short"),
            short=_text(spec, "short"),
            message=_text(spec, "message"),
        )
    unique = tuple(
        UniqueRule(
            id=str(s["id"]),
            columns=tuple(s["columns"]),
            severity=_text(s, "severity", "error"),
            short=_text(s, "short"),
            message=_text(s, "message"),
        )
        for s in rules
        if s.get("kind") == "unique"
    )
    return FormRules(
        form=form,
        path=path,
        fields=fields,
        cross=tuple(cross),
        columns=columns,
        unique=unique,
        required_short=_text(data, "required_short"),
        required_message=_text(data, "required_message"),
        min_rows=int(data.get("min_rows", 0)),
        min_rows_message=_text(data, "min_rows_message"),
    )


@cache
def rules_for(form_id: str, periods: tuple[str, ...]) -> FormRules:
    """The expanded rules of a form for the round's periods."""
    form = available_forms()[form_id]
    return _load_rules(schemas_dir() / f"{form_id.lower()}.yaml", form, tuple(periods))
