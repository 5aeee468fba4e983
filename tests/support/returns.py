"""Realistic figures for a unit's return, consistent with every rule in ``schemas/``.

Used by the tests and by ``scripts/make_demo_inbox.py`` to fill templates through LibreOffice as staff would.
Figures are drawn per indicator from plausible ranges (district or commune scale), then repaired until every
cross-field rule of the form holds, so a "clean" return is clean by construction of the rules themselves.

Scale (district level, Bắc Giang 2023–2024): a district has 75–250 thousand people, about a quarter of them
children under 16, so 26–68 thousand children; 14–29 communes with 8–14 villages each. Counts tied to the
administrative structure (communes, villages, party committee and council seats, agencies) follow the unit's
commune list; events (abuse, injuries, drowning, violence) are the few to few dozen a district reports a year.
A stock (children, staff, clubs, seats) barely moves from the year to the quarter; a flow (cases, sessions,
people reached) in a quarter is about a fifth to a third of a year's; a budget allocated is the new year's,
of which little is disbursed in the first quarter.
"""

from __future__ import annotations

import datetime as dt
import random

from toolkit.forms import Form
from toolkit.round import Round, Unit
from toolkit.rules import rules_for

# (low, high) of the Tổng số for one year at district level; indicators not listed are derived (see below).
RANGES: dict[str, tuple[float, float]] = {
    "TE01": (26000, 68000),
    "TE02": (250, 700),
    "TE03": (400, 1200),
    "TE04": (3, 16),
    "TE06": (35, 160),
    "TE06A": (2, 9),
    "TE07": (3, 12),
    "TE07A": (1, 6),
    "TE11": (0, 6),
    "TE12": (6, 30),
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
# Tied to the administrative structure at district level: (fixed district part (low, high), per commune
# (low, high)). At commune level the unit is one commune and the district part is 0.
PER_COMMUNE: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "TE10": ((0, 0), (1.0, 1.6)),  # người làm công tác bảo vệ trẻ em cấp xã
    "TE10A": ((0, 0), (7, 12)),  # cộng tác viên thôn, tổ dân phố
    "BG13": ((33, 45), (11, 15)),  # cấp ủy viên: ban chấp hành đảng bộ huyện + các xã
    "BG14": ((30, 40), (20, 27)),  # đại biểu HĐND huyện + xã
    "BG15": ((12, 14), (1, 1)),  # cơ quan chuyên môn cấp huyện + UBND xã
}
# A share of another indicator's Tổng số of the same period: (other indicator, low, high).
RELATIVE: dict[str, tuple[str, float, float]] = {
    "TE05": ("TE04", 0.7, 1.0),  # vụ: một vụ có thể có nhiều trẻ em
    "TE05A": ("TE04", 0.8, 1.0),  # hầu hết trẻ em bị xâm hại được hỗ trợ
    "TE08": ("TE01", 0.22, 0.38),  # biết bơi: một phần trẻ em 6 đến dưới 16 tuổi
    "BG18": ("BG17", 1.0, 1.3),  # nạn nhân: mỗi vụ ít nhất một người
}
# Part of the parent row ("trong đó"): the same share in every period unless QUARTER_SHARE says otherwise.
SHARE: dict[str, tuple[float, float]] = {
    "TE02A": (0.8, 0.92),
    "TE04A": (0.5, 0.7),
    "TE04B": (0.35, 0.55),
    "TE04C": (0.05, 0.15),
    "TE04D": (0.0, 0.1),
    "TE04E": (0.05, 0.2),
    "TE09A": (0.5, 0.7),
    "BG15A": (0.3, 0.5),
    "BG18A": (0.08, 0.16),
    "BG18B": (0.72, 0.9),
    "BG25A": (0.88, 0.98),
    "BG26A1": (0.75, 0.92),
    "BG26B1": (0.6, 0.85),
    "BG26C1": (0.8, 0.95),
}
QUARTER_SHARE: dict[str, tuple[float, float]] = {
    "BG26A1": (0.1, 0.25),
    "BG26B1": (0.05, 0.2),
    "BG26C1": (0.12, 0.3),
}
FEMALE = {  # share of the Tổng số
    "TE01": 0.485,
    "TE02": 0.47,
    "TE03": 0.48,
    "TE04": 0.72,
    "TE06": 0.4,
    "TE07": 0.3,
    "TE08": 0.46,
    "TE10": 0.55,
    "TE10A": 0.7,
    "TE11": 0.4,
    "BG13": 0.2,
    "BG14": 0.3,
    "BG16": 0.62,
    "BG18": 0.86,
    "BG19": 0.05,
    "BG20A": 0.9,
    "BG21A": 0.55,
    "BG23A": 0.58,
    "BG24": 0.6,
}
STOCKS = {
    "TE01",
    "TE02",
    "TE03",
    "TE08",
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
ALLOCATED = {"BG26A", "BG26B", "BG26C"}  # a quarter reports the new year's allocation, near last year's


def figures(form: Form, rnd: Round, unit: Unit, seed: int) -> dict[tuple[str, str, str], float]:
    """(indicator, field, period) -> value, satisfying all rules of the form."""
    rng = random.Random(seed)
    district = rnd.level == "district"
    scale = 1.0 if district else 0.07
    communes = len(unit.communes) if district else 1
    periods = [p.id for p in rnd.periods]
    level: dict[str, float] = {}  # an indicator's yearly level for this unit, drawn once
    out: dict[tuple[str, str, str], float] = {}

    def yearly(code: str) -> float:
        if code not in level:
            if code in PER_COMMUNE:
                (d_lo, d_hi), (c_lo, c_hi) = PER_COMMUNE[code]
                level[code] = (rng.uniform(d_lo, d_hi) if district else 0) + communes * rng.uniform(c_lo, c_hi)
            else:
                lo, hi = RANGES[code]
                level[code] = rng.uniform(lo, hi) * scale
        return level[code]

    for pi, period in enumerate(periods):
        quarter = pi > 0 and "Q" in period.upper()
        for ind in form.indicators:
            if not ind.is_input:
                continue
            code = ind.code
            money = ind.value == "money"
            if code == "TE09":
                total = float(communes)
            elif code in RELATIVE:
                other, lo, hi = RELATIVE[code]
                total = out.get((other, "total", period), 0.0) * rng.uniform(lo, hi)
            elif code in RANGES or code in PER_COMMUNE:
                total = yearly(code)
                if pi > 0:
                    if code in STOCKS or code in ALLOCATED:
                        total *= rng.uniform(0.98, 1.03) if code in STOCKS else rng.uniform(0.9, 1.15)
                    elif quarter:
                        total *= rng.uniform(0.18, 0.3)
            elif ind.parent:
                lo, hi = (QUARTER_SHARE if quarter else SHARE).get(code) or SHARE.get(code) or (0.05, 0.3)
                total = out.get((ind.parent, "total", period), 0.0) * rng.uniform(lo, hi)
            else:
                total = float(rng.randint(0, 20))
            total = round(total, 1) if money else float(max(0, round(total)))
            out[(code, "total", period)] = total
            if "female" in ind.fields:
                share = FEMALE.get(code, 0.5)
                female = float(round(total * rng.uniform(share - 0.03, share + 0.03)))
                out[(code, "female", period)] = max(0.0, min(total, female))
            if "male" in ind.fields:
                out[(code, "male", period)] = total - out[(code, "female", period)]
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


MOBILE_PREFIXES = ("091", "094", "098", "097", "096", "086", "088", "083", "035", "039", "033", "070")


def schedule_edits(form: Form, rnd: Round, unit: Unit, seed: int) -> list[dict]:
    """The unit confirms the planned visit (communes, date) and names one focal person with a mobile number."""
    rng = random.Random(seed)
    layout = form.layout(())
    planned = unit.planned
    communes = list(planned.communes) if planned and planned.communes else list(unit.communes[:2])
    date = planned.date if planned and planned.date else rnd.inspection.start
    person = PEOPLE[rng.randrange(len(PEOPLE))]
    phone = rng.choice(MOBILE_PREFIXES) + "".join(str(rng.randrange(10)) for _ in range(7))
    edits = []
    for i, commune in enumerate(communes):
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


def type_into(wb, edits: list[dict]) -> None:
    """Type LibreOffice-style edits into an openpyxl workbook (a faster stand-in where the program is not
    what a test is about)."""
    for e in edits:
        ws = wb[e["sheet"]]
        if "value" in e:
            ws[e["cell"]] = e["value"]
        elif "date" in e:
            ws[e["cell"]] = dt.date.fromisoformat(e["date"])
        else:
            ws[e["cell"]] = e["text"]
