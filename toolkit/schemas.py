"""``schemas/*.yaml`` compiled into pandera DataFrameSchemas.

Indicator forms: one row per submission, one column per input figure (``TE04.female@Y2023``). Field
constraints become column checks (``missing-value``, ``out-of-range``, ``not-integer``); cross-field rules
become DataFrame-level checks named by the expanded rule id (``rule-violation``). Schedules (PL01): one row per
schedule row. All submissions of a run are validated together, lazily, and every failure case is mapped back
to the cell(s) involved by ``validate.py``.
"""

from __future__ import annotations

import datetime as dt
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


def _rule_check(rule: CrossRule) -> pa.Check:
    left = [column_key(t.indicator, t.field, rule.period) for t in rule.left]
    right = [column_key(t.indicator, t.field, rule.period) for t in rule.right]
    involved = left + right

    # On plain arrays (one check per rule, hundreds per form: pandas overhead dominated). Same results as
    # ``df[cols].sum(axis=1, min_count=0)`` (blanks count as 0, columns added in order) and Series comparisons.
    compare = _OPS[rule.op]

    def check(df: pd.DataFrame) -> pd.Series:
        columns = {c: df[c].to_numpy(dtype=float) for c in dict.fromkeys(involved)}
        holds = compare(_row_sum(columns, left, len(df)), _row_sum(columns, right, len(df)))
        if rule.missing == "skip_if_any_missing":
            holds = holds | np.logical_or.reduce([np.isnan(columns[c]) for c in involved])
        elif rule.missing == "skip_if_all_missing":
            holds = holds | np.logical_and.reduce([np.isnan(columns[c]) for c in involved])
        return pd.Series(holds, index=df.index)

    # No ``error=``: pandera reports a failure under the check's error text when one is given, and
    # validate.py maps failures back to their rule by the check's name (the expanded rule id).
    return pa.Check(check, name=rule.id)


@cache
def indicator_schema(form_id: str, periods: tuple[str, ...]) -> pa.DataFrameSchema:
    rules: FormRules = rules_for(form_id, periods)
    form = rules.form
    columns = {}
    for cell in form.layout(periods).inputs:
        con = rules.fields.get(cell.kind)
        checks = []
        # Plain checks named "min"/"max": pandera reports its built-in Check.ge/le under their error text
        # (“greater_than_or_equal_to(0)”), which validate.py would not recognise.
        if con is not None and con.min is not None:
            checks.append(pa.Check(lambda s, lo=con.min: s >= lo, element_wise=False, name="min"))
        if con is not None and con.max is not None:
            checks.append(pa.Check(lambda s, hi=con.max: s <= hi, element_wise=False, name="max"))
        if con is not None and con.integer:
            # a boolean Series (pandera rejects a bare ndarray: the check would fail with NotImplementedError)
            checks.append(pa.Check(lambda s: (s - s.round()).abs() < 1e-9, element_wise=False, name="integer"))
        columns[column_key(cell.indicator, cell.field, cell.period)] = pa.Column(
            float, nullable=not (con.required if con else True), checks=checks, required=True, coerce=True
        )
    return pa.DataFrameSchema(columns, checks=[_rule_check(r) for r in rules.cross], name=form_id, strict=False)


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
