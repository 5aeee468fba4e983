"""toolkit.read: the formula pass over sheet XML agrees with a real XML parser."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from toolkit.read import _formula_cells

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"

SHEET = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<cols><col min="1" max="3" width="9"/></cols>
<sheetData>
<row r="1"><c r="A1" s="1" t="s"><v>0</v></c><c r="B1" s="2"/><c r="C1"><f>SUM(D1:E1)</f><v>3</v></c></row>
<row r="2"><c s="4" r="D2" t="str">
  <f>IF(A1&lt;&gt;"","có","")</f><v>có</v></c><c r="E2"><v>2</v></c></row>
<row r="3"><c r="F3"><f t="shared" ref="F3:F5" si="0">A3*2</f><v>2</v></c></row>
<row r="4"><c r="F4"><f t="shared" si="0"/><v>4</v></c><c r="G4"><v>1</v><f>A4</f></c></row>
<row r="5"><c r="H5"><f></f><v>0</v></c><c r="I5" t="e"><f>1/0</f><v>#DIV/0!</v></c></row>
</sheetData>
<conditionalFormatting sqref="A1"><cfRule type="expression" priority="1"><formula>A1&gt;0</formula></cfRule>
</conditionalFormatting>
</worksheet>
"""


def _oracle(xml: str) -> dict[str, str]:
    """Cells whose first child element is <f>, with the raw (escaped) text of that <f>, via ElementTree."""
    out = {}
    for c in ET.fromstring(xml.encode()).iter(f"{NS}c"):
        children = list(c)
        if children and children[0].tag == f"{NS}f":
            text = children[0].text or ""
            out[c.get("r")] = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out


def test_formula_cells_match_an_xml_parser():
    found = _formula_cells(SHEET.encode())
    assert found == _oracle(SHEET)
    assert found == {
        "C1": "SUM(D1:E1)",
        "D2": 'IF(A1&lt;&gt;"","có","")',  # still escaped; unescaped only where it is reported
        "F3": "A3*2",
        "F4": "",  # the other cells of a shared formula
        "H5": "",
        "I5": "1/0",
    }


def test_no_formula_no_cells():
    assert (
        _formula_cells(b'<worksheet><sheetData><row r="1"><c r="A1"><v>1</v></c></row></sheetData></worksheet>') == {}
    )


def test_another_periods_heading_beside_the_template_columns_is_a_round_mismatch(
    bac_giang_round, templates_dir, tmp_path
):
    """Headings in place (the quick path) do not hide a column headed with another round's period."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    from toolkit.forms import HEADER_ROW, get_form
    from toolkit.read import read_submission

    unit = next(u for u in bac_giang_round.units_owing() if "PL03" in u.forms)
    form = get_form("PL03")
    layout = form.layout(tuple(p.id for p in bac_giang_round.periods))
    beside = f"{get_column_letter(layout.check_col + 2)}{HEADER_ROW}"  # a heading cell past the check column
    wb = openpyxl.load_workbook(templates_dir / f"{unit.file_stem}.xlsx")
    wb[form.sheet][beside] = "Năm 2019"
    wb.save(tmp_path / f"{unit.file_stem}.xlsx")
    codes = [f.code for f in read_submission(tmp_path / f"{unit.file_stem}.xlsx", bac_giang_round).findings]
    assert "round-mismatch" in codes
    wb[form.sheet][beside] = None
    wb.save(tmp_path / "clean.xlsx")
    assert "round-mismatch" not in [f.code for f in read_submission(tmp_path / "clean.xlsx", bac_giang_round).findings]


def test_formula_scan_of_malformed_sheets():
    """<f> with no cell, unclosed ones, formulas after other tags: what is a formula cell is found, nothing else
    (each search is bounded by the previous <f>, so such sheets cost time linear in their size)."""

    def scan(body: bytes) -> dict[str, str]:
        return _formula_cells(b"<worksheet><sheetData><row>" + body + b"</row></sheetData></worksheet>")

    assert scan(b"<f/>" * 1000) == {}
    assert scan(b"<f " * 1000) == {}
    assert scan(b'<c r="B2"><f>A1</f></c>' + b"<f/>" * 1000) == {"B2": "A1"}
    assert scan(b"<col/><f>x</f>" * 1000) == {}
    assert scan(b'<c r="A1"><f>' * 3) == {"A1": ""}  # unclosed: the cell is a formula cell, its text unknown
    assert scan(b'<c r="C3"><f>"a\x00b"</f></c><c r="D3"><f>1</f></c>') == {"C3": '"a\x00b"', "D3": "1"}
