"""Realistic figures for a unit's return, consistent with every rule in ``schemas/``.

Used by the tests and by ``scripts/make_demo_inbox.py`` to fill templates through LibreOffice as staff would.
Figures are drawn per indicator from plausible ranges (district or commune scale), then repaired until every
cross-field rule of the form holds, so a "clean" return is clean by construction of the rules themselves.
"""

from __future__ import annotations

import datetime as dt
import random

from toolkit.forms import Form
from toolkit.round import Round, Unit
from toolkit.rules import rules_for

# (low, high) of the Tổng số for one year at district level; None: derived from the parent/total below.
RANGES: dict[str, tuple[float, float]] = {
    "TE01": (38000, 95000),
    "TE02": (250, 700),
    "TE03": (400, 1200),
    "TE04": (3, 16),
    "TE05": (2, 12),
    "TE05A": (2, 14),
    "TE06": (35, 160),
    "TE06A": (2, 9),
    "TE07": (3, 12),
    "TE07A": (1, 6),
    "TE08": (9000, 26000),
    "TE10": (25, 60),
    "TE10A": (150, 420),
    "TE11": (0, 6),
    "TE12": (6, 30),
    "BG13": (280, 650),
    "BG14": (300, 560),
    "BG15": (28, 45),
    "BG16": (2200, 5200),
    "BG17": (6, 30),
    "BG19": (3, 18),
    "BG20": (2, 10),
    "BG20A": (20, 180),
    "BG21": (4, 20),
    "BG21A": (90, 480),
    "BG22": (18, 90),
    "BG23": (20, 140),
    "BG23A": (1200, 8000),
    "BG24": (40, 260),
    "BG25": (60, 220),
    "BG26A": (120, 480),
    "BG26B": (200, 900),
    "BG26C": (150, 600),
}
SHARE = {  # part of the parent (or of the total for a female field)
    "TE02A": 0.85,
    "TE04A": 0.6,
    "TE04B": 0.45,
    "TE04C": 0.1,
    "TE04D": 0.08,
    "TE04E": 0.12,
    "TE06A": None,
    "TE07A": None,
    "TE09A": 0.55,
    "BG15A": 0.4,
    "BG18A": 0.12,
    "BG18B": 0.8,
    "BG25A": 0.93,
    "BG26A1": 0.82,
    "BG26B1": 0.7,
    "BG26C1": 0.88,
}
FEMALE = {
    "TE01": 0.485,
    "TE04": 0.72,
    "BG13": 0.2,
    "BG14": 0.3,
    "BG16": 0.62,
    "BG18": 0.86,
    "BG19": 0.05,
    "BG21A": 0.55,
    "BG23A": 0.58,
    "BG24": 0.6,
    "BG20A": 0.9,
}
STOCKS = {
    "TE01",
    "TE09",
    "TE09A",
    "TE10",
    "TE10A",
    "BG13",
    "BG14",
    "BG15",
    "BG15A",
    "BG16",
    "BG20",
    "BG21",
    "BG21A",
    "BG22",
}


def figures(form: Form, rnd: Round, unit: Unit, seed: int) -> dict[tuple[str, str, str], float]:
    """(indicator, field, period) -> value, satisfying all rules of the form."""
    rng = random.Random(seed)
    scale = 1.0 if rnd.level == "district" else 0.07
    periods = [p.id for p in rnd.periods]
    out: dict[tuple[str, str, str], float] = {}
    for pi, period in enumerate(periods):
        quarter = pi > 0 and "Q" in period.upper()
        for ind in form.indicators:
            if not ind.is_input:
                continue
            money = ind.value == "money"
            if ind.code == "TE09":
                total = float(len(unit.communes))
            elif ind.code in RANGES:
                lo, hi = RANGES[ind.code]
                total = rng.uniform(lo, hi) * (scale if ind.code not in ("BG15",) else max(scale, 0.1))
                if quarter and ind.code not in STOCKS:
                    total *= rng.uniform(0.18, 0.3)
                total = round(total, 1) if money else float(max(0, round(total)))
            elif ind.parent:
                share = SHARE.get(ind.code) or rng.uniform(0.05, 0.3)
                parent = out.get((ind.parent, "total", period), 0.0)
                total = round(parent * share, 1) if money else float(round(parent * share))
            else:
                total = float(rng.randint(0, 20))
            out[(ind.code, "total", period)] = total
            if "female" in ind.fields:
                share = FEMALE.get(ind.code, 0.5)
                female = float(round(total * rng.uniform(share - 0.03, share + 0.03)))
                out[(ind.code, "female", period)] = max(0.0, min(total, female))
            if "male" in ind.fields:
                out[(ind.code, "male", period)] = total - out[(ind.code, "female", period)]
    _repair(form, rnd, out)
    return out


def _repair(form: Form, rnd: Round, values: dict) -> None:
    rules = rules_for(form.id, tuple(p.id for p in rnd.periods)).cross
    for _ in range(20):
        changed = False
        for rule in rules:
            left = [(t.indicator, t.field, rule.period) for t in rule.left]
            right = [(t.indicator, t.field, rule.period) for t in rule.right]
            lsum = sum(values[k] for k in left)
            rsum = sum(values[k] for k in right)
            if rule.holds(lsum, rsum):
                continue
            changed = True
            if rule.op == "==":  # nam + nữ = tổng: the total follows the parts
                values[right[0]] = lsum - sum(values[k] for k in right[1:])
            elif rule.op in ("<=", "<"):
                values[left[0]] = max(0.0, values[left[0]] - (lsum - rsum))
            elif rule.op in (">=", ">"):
                values[left[0]] = values[left[0]] + (rsum - lsum)
        if not changed:
            return
    raise AssertionError("could not make figures consistent with the rules")


def edits_for(form: Form, rnd: Round, unit: Unit, seed: int) -> list[dict]:
    """LibreOffice edits that type the unit's figures into its template."""
    periods = tuple(p.id for p in rnd.periods)
    layout = form.layout(periods)
    if form.kind == "schedule":
        return schedule_edits(form, rnd, unit, seed)
    values = figures(form, rnd, unit, seed)
    return [
        {"sheet": form.sheet, "cell": c.address, "value": values[(c.indicator, c.field, c.period)]}
        for c in layout.inputs
    ]


PEOPLE = [
    "Nguyễn Thị Hồng",
    "Trần Văn Minh",
    "Lê Thị Thu Hà",
    "Phạm Đức Thắng",
    "Hoàng Thị Lan",
    "Vũ Văn Hùng",
    "Đỗ Thị Ngọc Ánh",
    "Ngô Quang Huy",
    "Bùi Thị Thủy",
    "Đặng Văn Long",
]


def schedule_edits(form: Form, rnd: Round, unit: Unit, seed: int) -> list[dict]:
    rng = random.Random(seed)
    layout = form.layout(())
    planned = unit.planned
    communes = list(planned.communes) if planned and planned.communes else list(unit.communes[:2])
    date = planned.date if planned and planned.date else rnd.inspection.start
    edits = []
    for i, commune in enumerate(communes):
        person = PEOPLE[rng.randrange(len(PEOPLE))]
        phone = "09" + "".join(str(rng.randrange(10)) for _ in range(8))
        row = {
            "commune": {"text": commune},
            "date": {"date": date.isoformat()},
            "session": {"text": rnd.inspection.sessions[i % len(rnd.inspection.sessions)]},
            "focal_person": {"text": person},
            "phone": {"text": phone},
        }
        for code, value in row.items():
            edits.append({"sheet": form.sheet, "cell": layout.schedule_cell(code, i), **value})
    return edits


def next_weekday(d: dt.date) -> dt.date:
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d
