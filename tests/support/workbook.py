"""What a person checking a template would look at, read with openpyxl and compared with the form definition.

Expected values come from the round, the form definitions and the rules, never from lists typed here, so
the same checks serve every form, every unit, our files and the files LibreOffice saved.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from toolkit.forms import Form, Layout, available_forms
from toolkit.render import parse_cell_map
from toolkit.round import Round, Unit

META_SHEET = "_baocao"
LIST_SHEET = "DanhMuc"
GUIDE_SHEET = "Hướng dẫn"


def periods_of(rnd: Round) -> tuple[str, ...]:
    return tuple(p.id for p in rnd.periods)


def forms_of(unit: Unit) -> list[Form]:
    forms = available_forms()
    return [forms[f] for f in sorted(unit.forms)]


def layout_of(rnd: Round, form: Form | str) -> Layout:
    if isinstance(form, str):
        form = available_forms()[form]
    return form.layout(periods_of(rnd))


def excel_serial(day: dt.date) -> int:
    return (day - dt.date(1899, 12, 30)).days


def cells_of(ref: str) -> list[str]:
    """Every cell address of a range such as ``D15:F17`` (or a single cell)."""
    min_col, min_row, max_col, max_row = range_boundaries(ref)
    return [f"{get_column_letter(c)}{r}" for r in range(min_row, max_row + 1) for c in range(min_col, max_col + 1)]


def unlocked_cells(ws: Worksheet) -> set[str]:
    """Cells a person can type into once the sheet is protected (whole unlocked columns/rows count too)."""
    out = {c.coordinate for row in ws.iter_rows() for c in row if c.protection.locked is False}
    out |= {f"{key}:{key}" for key, dim in ws.column_dimensions.items() if dim.protection.locked is False}
    out |= {f"{key}:{key}" for key, dim in ws.row_dimensions.items() if dim.protection.locked is False}
    return out


def validations_by_cell(ws: Worksheet) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            for cell in cells_of(rng.coord):
                out[cell].append(dv)
    return out


def range_values(wb: Workbook, reference: str) -> list:
    """Values of a cross-sheet reference such as ``DanhMuc!$A$2:$A$25`` (quotes and $ allowed)."""
    sheet, _, ref = reference.lstrip("=").rpartition("!")
    ws = wb[sheet.strip("'")]
    return [ws[c].value for c in cells_of(ref.replace("$", ""))]


def validation_problem(wb: Workbook, dvs: list, kind: str, rnd: Round, unit: Unit, phone_digits: int) -> str | None:
    """Why the validation(s) on an input cell of this kind are not what staff need, or None when right."""
    if kind == "text":
        return None if not dvs else f"free-text cell carries a validation ({dvs[0].type})"
    if len(dvs) != 1:
        return f"{len(dvs)} validations instead of 1"
    dv = dvs[0]
    if not dv.showErrorMessage:
        return "wrong entries are not refused (showErrorMessage off)"
    got = (dv.type, dv.operator or "between")
    if kind in ("count", "money"):
        want = ("whole" if kind == "count" else "decimal", "greaterThanOrEqual")
        if got != want or dv.formula1 != "0":
            return f"{got} {dv.formula1!r}, expected {want} '0'"
        return None
    if kind == "date":
        bounds = (str(excel_serial(rnd.inspection.start)), str(excel_serial(rnd.inspection.end)))
        if got != ("date", "between") or (dv.formula1, dv.formula2) != bounds:
            return f"{got} {dv.formula1!r}..{dv.formula2!r}, expected date between {bounds}"
        return None
    if kind == "phone":
        if got != ("textLength", "equal") or dv.formula1 != str(phone_digits):
            return f"{got} {dv.formula1!r}, expected textLength equal {phone_digits}"
        return None
    if kind in ("commune", "session"):
        if dv.type != "list":
            return f"{dv.type}, expected a list"
        source = dv.formula1 or ""
        if source.startswith('"') or f"{LIST_SHEET}!" not in source:
            return f"list source {source!r} is not a range of the {LIST_SHEET} sheet"
        want = list(unit.communes) if kind == "commune" else list(rnd.inspection.sessions)
        values = range_values(wb, source)
        if values != want:
            return f"list {source} holds {values}, expected {want}"
        return None
    return f"unknown input kind {kind}"


def metadata(wb: Workbook) -> dict[str, str]:
    """The key/value rows of the metadata sheet (the cell maps included, as ``cells:<form>``)."""
    ws = wb[META_SHEET]
    return {str(k): str(v) for k, v in ws.iter_rows(min_col=1, max_col=2, values_only=True) if k and v is not None}


def expected_cell_map(layout: Layout) -> list[tuple[str, str, str, str]]:
    return [(c.indicator, c.field, c.period, c.address) for c in layout.inputs]


def cell_map(meta: dict[str, str], form_id: str) -> list[tuple[str, str, str, str]]:
    return list(parse_cell_map(meta[f"cells:{form_id}"]))


def sheet_states(wb: Workbook) -> dict[str, str]:
    return {ws.title: ws.sheet_state for ws in wb.worksheets}


def expected_metadata(rnd: Round, unit: Unit) -> dict[str, str]:
    forms = forms_of(unit)
    out = {
        "round_id": rnd.id,
        "level": rnd.level,
        "unit_code": unit.code,
        "unit_name": unit.name,
        "periods": ",".join(periods_of(rnd)),
        "forms": ",".join(f"{f.id}@{f.version}" for f in forms),
    }
    for f in forms:
        out[f"fingerprint:{f.id}"] = layout_of(rnd, f).fingerprint
    return out


def parse_check(formula: str) -> list[tuple[str, str]]:
    """The (condition, text) pieces of a check-column formula ``=IF(cond,"text","")&IF(…)``."""
    pieces = []
    for piece in formula.lstrip("=").split("&"):
        assert piece.startswith("IF(") and piece.endswith(',"")'), piece
        body = piece[3 : -len(',"")')]
        cut = body.rindex(',"')
        pieces.append((body[:cut], body[cut + 2 : -1]))
    return pieces


def structure_problems(wb: Workbook, rnd: Round, unit: Unit, phone_digits: int) -> list[str]:
    """Everything that makes a unit's template safe to fill: sheets, protection, input cells, validations,
    metadata. Empty when the workbook is right."""
    problems: list[str] = []
    forms = forms_of(unit)
    states = sheet_states(wb)
    visible = [name for name, state in states.items() if state == "visible"]
    if visible != [f.sheet for f in forms] + [GUIDE_SHEET]:
        problems.append(f"visible sheets {visible}")
    for name in (LIST_SHEET, META_SHEET):
        if states.get(name) != "hidden":
            problems.append(f"sheet {name} is {states.get(name, 'missing')}, expected hidden")
    for ws in wb.worksheets:
        if not ws.protection.sheet:
            problems.append(f"{ws.title}: sheet not protected")
    form_sheets = {f.sheet for f in forms}
    for ws in wb.worksheets:
        if ws.title not in form_sheets and unlocked_cells(ws):
            problems.append(f"{ws.title}: unlocked cells {sorted(unlocked_cells(ws))[:5]}")
    for form in forms:
        ws = wb[form.sheet]
        inputs = {c.address: c.kind for c in layout_of(rnd, form).inputs}
        unlocked = unlocked_cells(ws)
        if unlocked != set(inputs):
            problems.append(
                f"{ws.title}: unlocked cells are not the input cells "
                f"(extra {sorted(unlocked - set(inputs))[:5]}, locked inputs {sorted(set(inputs) - unlocked)[:5]})"
            )
        dvs = validations_by_cell(ws)
        stray = sorted(set(dvs) - set(inputs))
        if stray:
            problems.append(f"{ws.title}: validations outside the input cells {stray[:5]}")
        for address, kind in inputs.items():
            problem = validation_problem(wb, dvs.get(address, []), kind, rnd, unit, phone_digits)
            if problem:
                problems.append(f"{ws.title}!{address} ({kind}): {problem}")
    if META_SHEET in wb.sheetnames:
        meta = metadata(wb)
        for key, value in expected_metadata(rnd, unit).items():
            if meta.get(key) != value:
                problems.append(f"metadata {key} = {meta.get(key)!r}, expected {value!r}")
        for form in forms:
            if f"cells:{form.id}" not in meta or cell_map(meta, form.id) != expected_cell_map(layout_of(rnd, form)):
                problems.append(f"metadata cell map of {form.id} does not match the layout")
    return problems
