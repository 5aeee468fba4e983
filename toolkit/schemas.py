"""``schemas/*.yaml`` compiled into pandera DataFrameSchemas.

Indicator forms: one row per submission, one column per input figure (``TE04.female@Y2023``). Field
constraints become row-level checks (``missing-value``, ``out-of-range``, ``not-integer``); each cross-field rule
becomes a row-level check over all its expansions (``rule-violation``); see :class:`IndicatorSchema`. Schedules (PL01): one row per
schedule row. All submissions of a run are validated together, lazily, and every failure case is mapped back
to the cell(s) involved by ``validate.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pandera.pandas as pa

from .forms import Form, InputCell
from .round import Round
from .rules import CrossRule, FormRules, rules_for
from .text import fold_place


def column_key(indicator: str, field: str, period: str) -> str:
    return f"{indicator}.{field}@{period}"


_OPS = {
    "<=": lambda a, b: a <= b + 1e-9,
    ">=": lambda a, b: a + 1e-9 >= b,
    "==": lambda a, b: np.abs(a - b) < 1e-9,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "!=": lambda a, b: np.abs(a - b) >= 1e-9,
}


def _row_sum(columns: dict[str, np.ndarray], keys: list[str], n: int) -> np.ndarray:
    total = np.zeros(n)
    for k in keys:
        total = total + np.where(np.isnan(columns[k]), 0.0, columns[k])
    return total


def _rule_holds(rule: CrossRule, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Per row: does the expanded rule hold (or is it skipped by its missing-value strategy)?"""
    left = [column_key(t.indicator, t.field, rule.period) for t in rule.left]
    right = [column_key(t.indicator, t.field, rule.period) for t in rule.right]
    involved = left + right
    holds = _OPS[rule.op](_row_sum(columns, left, n), _row_sum(columns, right, n))
    if rule.missing == "skip_if_any_missing":
        holds = holds | np.logical_or.reduce([np.isnan(columns[c]) for c in involved])
    elif rule.missing == "skip_if_all_missing":
        holds = holds | np.logical_and.reduce([np.isnan(columns[c]) for c in involved])
    return holds


@dataclass(frozen=True, eq=False)
class IndicatorSchema:
    """The pandera schema of an indicator form, and how to tell which cells a failing check is about.

    One row per submission (plus a ``_row`` column), one column per input figure. Checks are row-level and
    named ``required``, ``min``, ``max``, ``integer`` (field constraints) and ``rule:<id>`` (one per rule of
    ``schemas/``, over all its expansions: periods and fields). pandera runs them lazily over all submissions
    at once; for each failure case (row, check) ``failing_*`` says which columns or expanded rules failed.
    """

    schema: pa.DataFrameSchema
    columns: tuple[str, ...]
    required: tuple[str, ...]
    minimum: dict[str, float]
    maximum: dict[str, float]
    integer: tuple[str, ...]
    rules: dict[str, tuple[CrossRule, ...]]  # check name -> expanded rules

    def failing_columns(self, check: str, row: dict[str, float]) -> list[str]:
        if check == "required":
            return [c for c in self.required if np.isnan(row[c])]
        if check == "min":
            return [c for c, lo in self.minimum.items() if row[c] < lo]
        if check == "max":
            return [c for c, hi in self.maximum.items() if row[c] > hi]
        if check == "integer":
            return [c for c in self.integer if not np.isnan(row[c]) and abs(row[c] - round(row[c])) >= 1e-9]
        return []

    def failing_rules(self, check: str, row: dict[str, float]) -> list[CrossRule]:
        columns = {k: np.array([v], dtype=float) for k, v in row.items() if k != "_row"}
        return [r for r in self.rules.get(check, ()) if not _rule_holds(r, columns, 1)[0]]


@cache
def indicator_schema(form_id: str, periods: tuple[str, ...]) -> IndicatorSchema:
    rules: FormRules = rules_for(form_id, periods)
    form = rules.form
    required, integer = [], []
    minimum, maximum = {}, {}
    columns = []
    for cell in form.layout(periods).inputs:
        key = column_key(cell.indicator, cell.field, cell.period)
        columns.append(key)
        con = rules.fields.get(cell.kind)
        if con is None or con.required:
            required.append(key)
        if con is not None and con.min is not None:
            minimum[key] = float(con.min)
        if con is not None and con.max is not None:
            maximum[key] = float(con.max)
        if con is not None and con.integer:
            integer.append(key)

    def values(df: pd.DataFrame, keys) -> np.ndarray:
        # one conversion of the whole frame, then columns by position: much cheaper than df[list_of_columns]
        return df.to_numpy(dtype=float)[:, df.columns.get_indexer(list(keys))]

    def rows(df: pd.DataFrame, ok: np.ndarray) -> pd.Series:
        return pd.Series(ok, index=df.index)  # pandera wants a boolean Series (an ndarray errors)

    checks = [
        pa.Check(lambda df: rows(df, ~np.isnan(values(df, required)).any(axis=1)), name="required"),
        pa.Check(
            lambda df: rows(df, ~(values(df, minimum) < np.array(list(minimum.values()))).any(axis=1)), name="min"
        ),
        pa.Check(
            lambda df: rows(df, ~(np.abs(values(df, integer) - np.round(values(df, integer))) >= 1e-9).any(axis=1)),
            name="integer",
        ),
    ]
    if maximum:
        checks.append(
            pa.Check(
                lambda df: rows(df, ~(values(df, maximum) > np.array(list(maximum.values()))).any(axis=1)), name="max"
            )
        )
    families: dict[str, list[CrossRule]] = {}
    for r in rules.cross:
        families.setdefault(f"rule:{r.rule}", []).append(r)
    for name, group in families.items():

        def check(df: pd.DataFrame, group=tuple(group)) -> pd.Series:
            matrix = df.to_numpy(dtype=float)
            cols = {c: matrix[:, i] for i, c in enumerate(df.columns)}
            return rows(df, np.logical_and.reduce([_rule_holds(r, cols, len(df)) for r in group]))

        checks.append(pa.Check(check, name=name))
    schema = pa.DataFrameSchema({"_row": pa.Column(int)}, checks=checks, name=form_id, strict=False)
    return IndicatorSchema(
        schema=schema,
        columns=tuple(columns),
        required=tuple(required),
        minimum=minimum,
        maximum=maximum,
        integer=tuple(integer),
        rules={k: tuple(v) for k, v in families.items()},
    )


def input_cells(form: Form, periods: tuple[str, ...]) -> dict[str, InputCell]:
    return {column_key(c.indicator, c.field, c.period): c for c in form.layout(periods).inputs}


# ------------------------------------------------------------------------------------------- schedules


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def schedule_schema(rnd: Round, form_id: str = "PL01") -> pa.DataFrameSchema:
    """Checks of schedule rows; each check is named ``<column>:<constraint>`` or the unique rule's id."""
    rules = rules_for(form_id, tuple(p.id for p in rnd.periods))
    communes = {u.code: {fold_place(c) for c in u.communes} for u in rnd.units}
    sessions = {fold_place(s) for s in rnd.inspection.sessions}
    checks = []
    for code, con in rules.columns.items():
        if con.required:
            checks.append(pa.Check(lambda df, c=code: ~df["used"] | ~df[c].map(_blank), name=f"{code}:required"))
        if con.in_list == "unit_communes":

            def in_unit(df, c=code):
                ok = [_blank(v) or fold_place(str(v)) in communes.get(u, set()) for v, u in zip(df[c], df["unit_code"])]
                return pd.Series(ok, index=df.index)

            checks.append(pa.Check(in_unit, name=f"{code}:in_list"))
        elif con.in_list == "sessions":
            checks.append(
                pa.Check(
                    lambda df, c=code: df[c].map(lambda v: _blank(v) or fold_place(str(v)) in sessions),
                    name=f"{code}:in_list",
                )
            )
        if con.within == "inspection_window":
            lo, hi = rnd.inspection.start, rnd.inspection.end

            def within(df, c=code, lo=lo, hi=hi):
                return df[c].map(lambda v: _blank(v) or (isinstance(v, dt.date) and lo <= v <= hi))

            checks.append(pa.Check(within, name=f"{code}:within"))
        if con.digits:

            def phone_ok(v, n=con.digits, zero=con.leading_zero):
                if _blank(v):
                    return True
                text = str(v).replace(" ", "").replace(".", "")
                return text.isdigit() and len(text) == n and (not zero or text.startswith("0"))

            checks.append(pa.Check(lambda df, c=code, f=phone_ok: df[c].map(f), name=f"{code}:digits"))
    for u in rules.unique:

        def unique(df, cols=u.columns):
            keyed = df.assign(
                **{f"_k_{c}": df[c].map(lambda v: fold_place(v) if isinstance(v, str) else v) for c in cols}
            )
            keys = ["_file"] + [f"_k_{c}" for c in cols]
            filled = ~df[list(cols)].map(_blank).any(axis=1)
            dup = keyed[filled].duplicated(subset=keys, keep=False)
            return ~dup.reindex(df.index, fill_value=False)

        checks.append(pa.Check(unique, name=u.id))
    return pa.DataFrameSchema({}, checks=checks, name=form_id, strict=False)
