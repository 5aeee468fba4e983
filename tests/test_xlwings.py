"""The “Kiểm tra báo cáo” button (issue 5): xlwings' remote interpreter behind ``/xlwings``.

Payloads are built as xlwings' Office.js client builds them (``getBookData`` of the xlwings-server client):
``client``/``version``, ``book`` (name, active sheet, selection), ``names``, and for every sheet — hidden ones
too, with their ``visibility`` — the values from A1 to the last cell holding a value, blanks as ``""``,
date-formatted numbers as ISO strings. The values are our own templates (``write_template``) read with openpyxl
(formulas as the value cached in the file) with the figures of ``support.returns.edits_for`` typed in.
What comes back is asserted as xlwings' actions: which cells get which fill, the findings sheet, the alert.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import os
import posixpath
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import fastapi
import openpyxl
import pytest
from fastapi.testclient import TestClient
from support.returns import edits_for

from toolkit.findings import CATALOG, ERROR
from toolkit.forms import get_form
from toolkit.read import col_letter, split_cell
from toolkit.render import GUIDE_SHEET, INPUT_FILL, write_template
from toolkit.round import Round
from toolkit.server import xlwings_api as api

RED, YELLOW = "#FFC7CE", "#FFEB9C"
UNIT = "213"  # Thành phố Bắc Giang: PL01 (schedule, with dates) + PL03
SEED = 5
OFFICEJS = Path(api.__file__).parent / "officejs"
NS = {
    "o": "http://schemas.microsoft.com/office/appforoffice/1.1",
    "v": "http://schemas.microsoft.com/office/taskpaneappversionoverrides",
    "bt": "http://schemas.microsoft.com/office/officeappbasictypes/1.0",
}
# Action functions of xlwings' Office.js client that the check may use.
CLIENT_FUNCS = {
    "runMacro",
    "setRangeColor",
    "sheetDelete",
    "addSheet",
    "setValues",
    "setColumnWidth",
    "setWrapText",
    "activateSheet",
    "alert",
}


def require_xlwings_client() -> None:
    """xlwings' Office.js client comes with the xlwings-server package (the ``server`` extra). Skip without it
    on a developer machine; in CI (CI=true) fail, as the LibreOffice tests do: CI must not skip it."""
    if api.client_dir() is not None:
        return
    why = "xlwings' Office.js client (package xlwings-server, in baocao[server]) is not installed"
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true but {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(autouse=True)
def license_key(monkeypatch):
    monkeypatch.setenv("XLWINGS_LICENSE_KEY", "noncommercial")


@pytest.fixture(scope="module")
def client(bac_giang_round: Round) -> TestClient:
    app = fastapi.FastAPI()
    app.include_router(api.router, prefix="/xlwings")
    return TestClient(app)


# ------------------------------------------------------------------------------------------ payloads


def iso(value: dt.date) -> str:
    """A date cell as xlwings' Office.js client sends it: ``new Date(serial…).toISOString()``."""
    day = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
    return day.strftime("%Y-%m-%dT%H:%M:%S.") + f"{day.microsecond // 1000:03d}Z"


class Workbook:
    """A unit's template with figures typed in, and the xlwings payload of it as open in Excel."""

    def __init__(self, rnd: Round, unit_code: str, folder: Path, seed: int = SEED) -> None:
        self.rnd = rnd
        self.unit = rnd.unit(unit_code)
        self.path = write_template(rnd, self.unit, folder / f"{self.unit.file_stem}.xlsx")
        self.periods = tuple(p.id for p in rnd.periods)
        self.typed: dict[tuple[str, str], object] = {}  # (sheet, cell) -> value as the client sends it
        for form_id in self.unit.forms:
            for e in edits_for(get_form(form_id), rnd, self.unit, seed):
                if "value" in e:
                    value = e["value"]
                elif "date" in e:
                    value = iso(dt.date.fromisoformat(e["date"]))
                else:
                    value = e["text"]
                self.typed[(e["sheet"], e["cell"])] = value

    def cell(self, form_id: str, code: str, fld: str = "total", period: str | None = None) -> str:
        return get_form(form_id).layout(self.periods).cell(code, fld, period or self.periods[0])

    def set(self, form_id: str, address: str, value) -> str:
        self.typed[(get_form(form_id).sheet, address)] = value
        return address

    def payload(self, drop_values_of: tuple[str, ...] = (), extra_sheets: dict[str, list[list]] | None = None) -> dict:
        wb = openpyxl.load_workbook(self.path, data_only=True)  # a formula's value: what the file caches
        sheets = []
        for ws in wb.worksheets:
            grid: dict[tuple[int, int], object] = {}
            for row in ws.iter_rows():
                for c in row:
                    if c.value not in (None, ""):
                        v = c.value
                        grid[(c.row, c.column)] = iso(v) if isinstance(v, (dt.date, dt.datetime)) else v
            for (sheet, address), value in self.typed.items():
                if sheet == ws.title:
                    if value in (None, ""):
                        grid.pop(split_cell(address), None)
                    else:
                        grid[split_cell(address)] = value
            sheets.append(
                {
                    "name": ws.title,
                    "visibility": "Visible" if ws.sheet_state == "visible" else "Hidden",
                    "values": [[]] if ws.title in drop_values_of else matrix(grid),
                    "pictures": [],
                    "tables": [],
                }
            )
        for name, values in (extra_sheets or {}).items():
            sheets.append({"name": name, "visibility": "Visible", "values": values, "pictures": [], "tables": []})
        return {
            "client": "Office.js",
            "version": "0.37.8",
            "book": {"name": self.path.name, "active_sheet_index": 0, "selection": "D15"},
            "names": [],
            "sheets": sheets,
        }

    def excel_book(self) -> dict:
        """The workbook as Excel holds it (dates are numbers with a date format), for the fake office.js."""
        wb = openpyxl.load_workbook(self.path, data_only=True)
        sheets = []
        for ws in wb.worksheets:
            grid: dict[tuple[int, int], object] = {}
            formats: dict[tuple[int, int], str] = {}
            for row in ws.iter_rows():
                for c in row:
                    if c.value not in (None, ""):
                        grid[(c.row, c.column)] = c.value
            for (sheet, address), value in self.typed.items():
                if sheet == ws.title:
                    grid[split_cell(address)] = value
            for key, value in list(grid.items()):
                if isinstance(value, str) and value.endswith("T00:00:00.000Z"):
                    value = dt.datetime.fromisoformat(value[:-1])
                if isinstance(value, (dt.date, dt.datetime)):
                    grid[key] = (value.date() if isinstance(value, dt.datetime) else value).toordinal() - 693594
                    formats[key] = "dd/mm/yyyy"
            sheets.append(
                {
                    "name": ws.title,
                    "visibility": "Visible" if ws.sheet_state == "visible" else "Hidden",
                    "values": matrix({k: v for k, v in grid.items() if v not in (None, "")}),
                    "formats": [
                        [formats.get((r, c), "General") for c in range(1, ws.max_column + 1)]
                        for r in range(1, ws.max_row + 1)
                    ],
                    "protected": bool(ws.protection.sheet),
                }
            )
        return {"name": self.path.name, "sheets": sheets}


def matrix(grid: dict[tuple[int, int], object]) -> list[list]:
    """Values from A1 to the last cell holding a value (Office.js: used range, values only), blanks as ""."""
    if not grid:
        return [[""]]
    rows, cols = max(r for r, _ in grid), max(c for _, c in grid)
    out = [["" for _ in range(cols)] for _ in range(rows)]
    for (r, c), v in grid.items():
        out[r - 1][c - 1] = v
    return out


def sheet_names(payload: dict) -> list[str]:
    return [s["name"] for s in payload["sheets"]]


def coloured(actions: list[dict], payload: dict) -> dict[str, dict[str, str]]:
    """Sheet -> cell -> the last fill colour an action gave it (the client applies actions in order)."""
    names = sheet_names(payload)
    out: dict[str, dict[str, str]] = {}
    for a in actions:
        if a["func"] == "addSheet":
            names.insert(a["args"][0], a["args"][1])
        elif a["func"] == "sheetDelete":
            names.pop(a["sheet_position"])
        elif a["func"] == "setRangeColor":
            sheet = names[a["sheet_position"]]
            for r in range(a["start_row"], a["start_row"] + a["row_count"]):
                for c in range(a["start_column"], a["start_column"] + a["column_count"]):
                    out.setdefault(sheet, {})[f"{col_letter(c + 1)}{r + 1}"] = a["args"][0]
    return out


def result_values(actions: list[dict]) -> list[list]:
    (write,) = [a for a in actions if a["func"] == "setValues"]
    assert (write["start_row"], write["start_column"]) == (0, 0)
    return write["values"]


def alert_of(actions: list[dict]) -> list:
    (alert,) = [a for a in actions if a["func"] == "alert"]
    assert actions[-1] is alert  # after everything it reports on
    return alert["args"]


def check(client: TestClient, payload: dict) -> list[dict]:
    response = client.post("/xlwings/check", json=payload)
    assert response.status_code == 200, response.text
    actions = response.json()["actions"]
    assert {a["func"] for a in actions} <= CLIENT_FUNCS
    return actions


@pytest.fixture()
def workbook(bac_giang_round: Round, tmp_path: Path) -> Workbook:
    return Workbook(bac_giang_round, UNIT, tmp_path)


# --------------------------------------------------------------------------------------- the check


def test_clean_return_is_ready_to_send(client, workbook):
    payload = workbook.payload()
    assert {s["name"]: s["visibility"] for s in payload["sheets"]}["_baocao"] == "Hidden"
    first_row = payload["sheets"][0]["values"][get_form("PL01").layout(()).first_row - 1]
    assert any(isinstance(v, str) and v.endswith("T00:00:00.000Z") for v in first_row)  # the visit's date
    actions = check(client, payload)

    fills = coloured(actions, payload)
    assert set(fills) == {"PL01", "PL03", "Kết quả kiểm tra"}
    assert fills["Kết quả kiểm tra"] == {f"{c}4": "#D9E1F2" for c in "ABCDEF"}  # only its heading
    for form_id in ("PL01", "PL03"):
        form = get_form(form_id)
        inputs = {c.address for c in form.layout(workbook.periods).inputs}
        # every input cell back to the input shading, nothing else touched
        assert fills[form.sheet] == dict.fromkeys(inputs, INPUT_FILL)

    rows = result_values(actions)
    assert rows[0][0] == f"KẾT QUẢ KIỂM TRA TỆP {workbook.path.name}"
    assert rows[1][0] == "Đơn vị: Thành phố Bắc Giang (mã 213). Không có lỗi. Báo cáo đã sẵn sàng để gửi."
    assert rows[3] == ["STT", "Mức độ", "Loại", "Trang", "Ô", "Nội dung"]
    assert len(rows) == 4
    assert not [a for a in actions if a["func"] == "activateSheet"]  # stays where the user is
    assert alert_of(actions) == ["Không có lỗi. Báo cáo đã sẵn sàng để gửi.", "Kiểm tra báo cáo", "ok", "info", ""]


def test_errors_and_warning_are_coloured_listed_and_counted(client, workbook):
    female = workbook.set("PL03", workbook.cell("PL03", "TE04", "female"), 0)
    total = workbook.cell("PL03", "TE04")
    workbook.typed[("PL03", female)] = workbook.typed[("PL03", total)] + 5  # nữ > tổng
    blank = workbook.set("PL03", workbook.cell("PL03", "TE05"), "")  # a figure left empty
    as_text = workbook.cell("PL03", "TE02")
    workbook.set("PL03", as_text, str(int(workbook.typed[("PL03", as_text)])))  # a number typed as text
    payload = workbook.payload()
    actions = check(client, payload)

    fills = coloured(actions, payload)
    marked = {cell: colour for cell, colour in fills["PL03"].items() if colour != INPUT_FILL}
    assert marked == {female: RED, total: RED, blank: RED, as_text: YELLOW}
    assert set(fills["PL01"].values()) == {INPUT_FILL}

    # the sheet's protection is lifted around its colouring (the add-in's JavaScript callbacks)
    funcs = [(a["func"], a["args"][0] if a["args"] else None) for a in actions]
    first = funcs.index(("runMacro", "baocaoUnprotect"))
    pl03 = [i for i, a in enumerate(actions) if a["func"] == "runMacro" and a["args"][1] == "PL03"]
    colours = [i for i, a in enumerate(actions) if a["func"] == "setRangeColor" and a["sheet_position"] == 1]
    assert first < pl03[1] and pl03[0] < min(colours) and max(colours) < pl03[1]
    assert [actions[i]["args"] for i in pl03] == [["baocaoUnprotect", "PL03", ""], ["baocaoProtect", "PL03", ""]]

    rows = result_values(actions)
    assert rows[1][0] == ("Đơn vị: Thành phố Bắc Giang (mã 213). Có 2 lỗi và 1 cảnh báo. Xem trang “Kết quả kiểm tra”.")
    findings = rows[4:]
    assert [r[0] for r in findings] == [1, 2, 3]
    assert [(r[1], r[2], r[3]) for r in findings] == [  # errors first, then by row (TE04 above TE05)
        ("Lỗi", "Số liệu không khớp", "PL03"),
        ("Lỗi", "Thiếu số liệu", "PL03"),
        ("Cảnh báo", "Số được gõ dạng chữ", "PL03"),
    ]
    assert findings[0][4] == f"{female}, {total}" and female in findings[0][5]
    assert findings[1][4] == blank and f"Ô {blank}" in findings[1][5]
    assert findings[2][4] == as_text and as_text in findings[2][5]

    # the findings sheet: first, its severity cells coloured, shown
    add = next(a for a in actions if a["func"] == "addSheet")
    assert add["args"] == [0, "Kết quả kiểm tra"]
    assert fills["Kết quả kiểm tra"] == {"B5": RED, "B6": RED, "B7": YELLOW} | {f"{c}4": "#D9E1F2" for c in "ABCDEF"}
    assert any(a["func"] == "activateSheet" and a["args"] == [0] for a in actions)
    assert alert_of(actions) == [
        "Có 2 lỗi và 1 cảnh báo. Xem trang “Kết quả kiểm tra”.",
        "Kiểm tra báo cáo",
        "ok",
        "critical",
        "",
    ]


def test_the_check_is_the_library_check(client, workbook, bac_giang_round, tmp_path):
    """Same findings, same words, as ``baocao validate`` on the saved file: nothing is checked twice."""
    from toolkit.validate import validate_paths

    workbook.set("PL03", workbook.cell("PL03", "TE04B"), workbook.typed[("PL03", workbook.cell("PL03", "TE04"))] + 2)
    actions = check(client, workbook.payload())
    saved = openpyxl.load_workbook(workbook.path)
    for (sheet, address), value in workbook.typed.items():
        if isinstance(value, str) and value.endswith("Z"):
            value = dt.datetime.fromisoformat(value[:-1])
        saved[sheet][address].value = value
    (tmp_path / "saved").mkdir()
    saved.save(tmp_path / "saved" / workbook.path.name)
    expected = validate_paths([tmp_path / "saved" / workbook.path.name], bac_giang_round).submissions[0]
    expected = [f for f in expected.findings if f.code != "late-submission"]
    assert [(r[2], r[5]) for r in result_values(actions)[4:]] == [(CATALOG[f.code][1], f.message) for f in expected]
    assert [f.severity for f in expected] == [ERROR]


def test_fixed_cell_turns_back_to_input_shading(client, workbook):
    """A second check after the fix: the formerly red cell is only given the input shading."""
    cell = workbook.cell("PL03", "TE05")
    good = workbook.typed[("PL03", cell)]
    workbook.set("PL03", cell, "")
    first = check(client, workbook.payload())
    assert coloured(first, workbook.payload())["PL03"][cell] == RED

    workbook.set("PL03", cell, good)
    # the workbook now also holds the findings sheet of the first check (as the client applied it)
    stale = {"Kết quả kiểm tra": result_values(first)}
    payload = workbook.payload(extra_sheets=stale)
    payload["sheets"].insert(0, payload["sheets"].pop())
    second = check(client, payload)
    assert coloured(second, payload)["PL03"][cell] == INPUT_FILL
    assert [a["func"] for a in second if a["func"] in ("sheetDelete", "addSheet")] == ["sheetDelete", "addSheet"]
    assert next(a for a in second if a["func"] == "sheetDelete")["sheet_position"] == 0
    assert alert_of(second)[0] == "Không có lỗi. Báo cáo đã sẵn sàng để gửi."


def test_without_the_hidden_sheets_the_unit_is_found_by_labels(client, workbook):
    """A client configured to leave sheets out still gets the workbook recognised (labels, file name)."""
    payload = workbook.payload(drop_values_of=("_baocao", "DanhMuc"))
    rows = result_values(check(client, payload))
    assert rows[1][0].startswith("Đơn vị: Thành phố Bắc Giang (mã 213). Không có lỗi, có 1 cảnh báo.")
    assert [r[2] for r in rows[4:]] == ["Mất thông tin nhận dạng biểu mẫu"]


def test_a_workbook_that_is_not_a_template(client):
    payload = {
        "client": "Office.js",
        "version": "0.37.8",
        "book": {"name": "Book1", "active_sheet_index": 0, "selection": "A1"},
        "names": [],
        "sheets": [
            {"name": "Sheet1", "visibility": "Visible", "values": [["Số liệu", 12]], "pictures": [], "tables": []}
        ],
    }
    actions = check(client, payload)
    assert not [a for a in actions if a["func"] == "runMacro"]
    assert set(coloured(actions, payload)) == {"Kết quả kiểm tra"}
    assert [r[2] for r in result_values(actions)[4:]] == ["Không nhận ra biểu mẫu"]
    assert alert_of(actions)[:2] == ["Có 1 lỗi. Xem trang “Kết quả kiểm tra”.", "Kiểm tra báo cáo"]


def test_round_comes_from_the_app(workbook, bac_giang_round):
    app = fastapi.FastAPI()
    app.include_router(api.router, prefix="/xlwings")
    app.state.round = dataclasses.replace(bac_giang_round, id="bac-giang-2025")
    rows = result_values(check(TestClient(app), workbook.payload()))
    assert "Sai đợt báo cáo" in [r[2] for r in rows[4:]]


def test_xlwings_client_route_and_scripts_meta(client, workbook):
    payload = workbook.payload()
    meta = client.get("/xlwings/custom-scripts-meta.json").json()
    assert [m["function_name"] for m in meta] == ["kiem_tra_bao_cao"]
    via_client = client.post("/xlwings/custom-scripts-call/kiem_tra_bao_cao", json=copy.deepcopy(payload))
    assert via_client.status_code == 200
    assert via_client.json() == client.post("/xlwings/check", json=payload).json()
    assert client.post("/xlwings/custom-scripts-call/other", json=payload).status_code == 404


def test_not_an_xlwings_payload(client):
    response = client.post("/xlwings/check", json={"hello": 1})
    assert response.status_code == 400
    assert "book.name" in response.json()["detail"]


def test_without_a_license_key_the_server_says_so(client, workbook, monkeypatch):
    import xlwings as xw

    monkeypatch.delenv("XLWINGS_LICENSE_KEY")
    monkeypatch.delitem(xw.engines.engines_by_name, "remote", raising=False)
    monkeypatch.setitem(sys.modules, "xlwings.pro", None)  # as if the licence check refused the import
    response = client.post("/xlwings/check", json=workbook.payload())
    assert response.status_code == 503
    assert "XLWINGS_LICENSE_KEY=noncommercial" in response.json()["detail"]


def test_key_set_after_xlwings_was_imported(client, workbook, monkeypatch):
    """xlwings registers its remote engine at import only if a key is found then; the router registers it."""
    import xlwings as xw

    monkeypatch.delitem(xw.engines.engines_by_name, "remote")
    monkeypatch.setattr(xw.engines, "engines", list(xw.engines.engines))
    assert alert_of(check(client, workbook.payload()))[0] == "Không có lỗi. Báo cáo đã sẵn sàng để gửi."
    assert "remote" in xw.engines.engines_by_name


def test_payload_size_is_capped(client, monkeypatch):
    monkeypatch.setattr(api, "MAX_PAYLOAD", 1000)
    response = client.post("/xlwings/check", json={"book": {"name": "x" * 2000}, "sheets": []})
    assert response.status_code == 413
    assert client.post("/xlwings/check", content=b"{not json").status_code == 400


def test_rectangles_cover_exactly_the_cells():
    cells = {(r, c) for r in range(15, 20) for c in (4, 5, 6, 8)} | {(30, 4)}
    rects = api.rectangles(cells)
    assert rects == [(15, 4, 19, 6), (15, 8, 19, 8), (30, 4, 30, 4)]
    assert api.rectangles(set()) == []


def test_workbook_file_name():
    assert api.workbook_file_name("213_tp-bac-giang.xlsx") == "213_tp-bac-giang.xlsx"
    assert api.workbook_file_name("213_tp-bac-giang.xlsm") == "213_tp-bac-giang.xlsx"
    assert api.workbook_file_name("C:\\Bao cao\\Book1") == "Book1.xlsx"
    assert api.workbook_file_name("") == "bao-cao.xlsx"


# ------------------------------------------------------------------------------------- the add-in files


def test_manifest_has_the_button(client):
    root = ET.parse(OFFICEJS / "manifest.xml").getroot()
    labels = {s.get("id"): s.get("DefaultValue") for s in root.iterfind(".//bt:ShortStrings/bt:String", NS)}
    assert labels["Check.Label"] == "Kiểm tra báo cáo"
    button = root.find(".//v:Control[@id='Baocao.Check']", NS)
    assert button.find("v:Label", NS).get("resid") == "Check.Label"
    assert button.find("v:Action", NS).get("{http://www.w3.org/2001/XMLSchema-instance}type") == "ExecuteFunction"
    assert button.find("v:Action/v:FunctionName", NS).text == "kiemTraBaoCao"
    assert 'Office.actions.associate("kiemTraBaoCao"' in (OFFICEJS / "baocao.js").read_text()
    # the ribbon's function runs in the task pane's page, kept loaded (shared runtime)
    runtime = root.find(".//v:Runtimes/v:Runtime", NS)
    assert runtime.get("lifetime") == "long"
    assert root.find(".//v:FunctionFile", NS).get("resid") == runtime.get("resid") == "Taskpane.Url"
    # every resource the manifest names is defined
    resids = {e.get("resid") for e in root.iter() if e.get("resid")}
    defined = {e.get("id") for e in root.iterfind(".//v:Resources//*[@id]", NS)}
    assert resids <= defined


def test_served_manifest_points_at_this_server(client, bac_giang_round):
    response = client.get("/xlwings/addin/manifest.xml")
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    urls = [e.get("DefaultValue") for e in root.iter() if (e.get("DefaultValue") or "").startswith("http")]
    assert urls and all(u.startswith("http://testserver/xlwings/") for u in urls)
    assert [e.text for e in root.iterfind(".//o:AppDomain", NS)] == ["http://testserver"]
    assert "__SERVER__" not in response.text and "__ORIGIN__" not in response.text
    for url in urls:  # every page and icon of the add-in is served
        if "/addin/" in url:
            assert client.get(url.removeprefix("http://testserver")).status_code == 200, url

    app = fastapi.FastAPI()
    app.include_router(api.router, prefix="/xlwings")
    app.state.round = dataclasses.replace(bac_giang_round, server_url="https://baocao.sonv.bacgiang.gov.vn/")
    text = TestClient(app).get("/xlwings/addin/manifest.xml").text
    assert '<SourceLocation DefaultValue="https://baocao.sonv.bacgiang.gov.vn/xlwings/addin/taskpane.html" />' in text


def test_pages_load_xlwings_client(client):
    require_xlwings_client()
    response = client.get("/xlwings/addin/taskpane.html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '"appPath": ""' in response.text and "__XLWINGS_VERSION__" not in response.text
    assert "office.js" in response.text and 'src="baocao.js"' in response.text
    script = client.get("/xlwings/addin/baocao.js")
    assert script.status_code == 200
    (module,) = re.findall(r'from "([^"]+)"', script.text)
    client_js = client.get(f"/xlwings/addin/{module}".replace("/addin/../", "/"))
    assert client_js.status_code == 200
    assert "export async function runPython" in client_js.text
    assert "export function registerCallback" in client_js.text
    # its own imports are served too
    for imported in re.findall(r'from "(\.\.?/[^"]+)"', client_js.text):
        target = posixpath.normpath(posixpath.join("/xlwings/static/custom-scripts", imported))
        assert client.get(target).status_code == 200, imported
    # the actions the check sends are ones the client knows
    for func in CLIENT_FUNCS:
        assert re.search(rf"\b{func}\b", client_js.text), func


def test_static_routes_refuse_other_files(client):
    require_xlwings_client()
    outside = api.client_dir().parent / "vendor" / "htmx.org" / "2.0.11" / "dist" / "htmx.min.js"
    assert outside.is_file()  # a script of the package, but not of its Office.js client
    with pytest.raises(fastapi.HTTPException):
        api.static("../vendor/htmx.org/2.0.11/dist/htmx.min.js")
    assert client.get("/xlwings/static/../../config.py").status_code == 404
    assert client.get("/xlwings/static/custom-scripts/index.js.map").status_code == 404
    assert client.get("/xlwings/addin/..%2Fxlwings_api.py").status_code == 404
    assert client.get("/xlwings/addin/nothing.html").status_code == 404
    icon = client.get("/xlwings/addin/icon-32.png")
    assert icon.status_code == 200 and icon.content.startswith(b"\x89PNG")


def test_alert_page_is_xlwings_own(client):
    response = client.get(
        "/xlwings/alert",
        params={
            "prompt": "Có 1 lỗi. <b>x</b>",
            "title": "Kiểm tra báo cáo",
            "buttons": "ok",
            "mode": "info",
            "callback": "",
        },
    )
    assert response.status_code == 200
    assert "Có 1 lỗi. &lt;b&gt;x&lt;/b&gt;" in response.text
    assert 'id="ok"' in response.text and "messageParent" in response.text


def test_guide_sheet_gives_the_server_address(bac_giang_round, tmp_path):
    rnd = dataclasses.replace(bac_giang_round, server_url="https://baocao.sonv.bacgiang.gov.vn")
    path = write_template(rnd, rnd.unit(UNIT), tmp_path / "guide.xlsx")
    text = "\n".join(str(c.value) for row in openpyxl.load_workbook(path)[GUIDE_SHEET].iter_rows() for c in row)
    assert "https://baocao.sonv.bacgiang.gov.vn" in text
    assert "Kiểm tra báo cáo" in text


# ------------------------------------------------------------------ the add-in in a browser, with a fake Excel


def require_browser():
    """Debian's Chromium driven by Playwright (as tests/test_browser.py); skip without them, fail in CI."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        why = "playwright is not installed"
    else:
        why = None if Path(CHROMIUM).exists() else f"{CHROMIUM} is missing (Debian package chromium)"
    if why is None:
        return
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true but {why}", pytrace=False)
    pytest.skip(why)


CHROMIUM = "/usr/bin/chromium"
FAKE_OFFICE = Path(__file__).parent / "support" / "fake_officejs.js"


@pytest.fixture(scope="module")
def live_server(bac_giang_round: Round):
    """The router behind a real HTTP server on the loopback interface, for the browser."""
    import socket
    import threading
    import time

    import uvicorn

    app = fastapi.FastAPI()
    app.include_router(api.router, prefix="/xlwings")
    app.state.round = bac_giang_round
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def route_office_js(route) -> None:
    """Microsoft's office.js is the fake; nothing else leaves the machine."""
    url = route.request.url
    if url.startswith("https://appsforoffice.microsoft.com/"):
        route.fulfill(body=FAKE_OFFICE.read_text(), content_type="text/javascript")
    elif re.match(r"^http://127\.0\.0\.1[:/]", url):
        route.continue_()
    else:
        route.abort()


@pytest.mark.browser
def test_button_in_excel(live_server, workbook):
    """The task pane's button and the ribbon command, in Chromium, with xlwings' real Office.js client talking to
    the server and a fake Excel (tests/support/fake_officejs.js) holding the unit's workbook."""
    require_xlwings_client()
    require_browser()
    from urllib.parse import parse_qs, urlsplit

    from playwright.sync_api import sync_playwright

    female, total = workbook.cell("PL03", "TE04", "female"), workbook.cell("PL03", "TE04")
    blank, as_text = workbook.cell("PL03", "TE05"), workbook.cell("PL03", "TE02")
    good = {cell: workbook.typed[("PL03", cell)] for cell in (female, blank, as_text)}
    workbook.set("PL03", female, workbook.typed[("PL03", total)] + 5)  # nữ > tổng
    workbook.set("PL03", blank, "")
    workbook.set("PL03", as_text, str(int(good[as_text])))
    book = workbook.excel_book()
    assert all(s["protected"] for s in book["sheets"] if s["name"] in ("PL01", "PL03"))
    fixes = [[*(n - 1 for n in split_cell(cell)), value] for cell, value in good.items()]
    problems: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.add_init_script(f"window.__BAOCAO_BOOK = {json.dumps(book)};")
            page.route(re.compile(r"^https?://.*"), route_office_js)
            page.goto(f"{live_server}/xlwings/addin/taskpane.html")
            page.wait_for_function("() => window.__fake && window.__fake.actions.kiemTraBaoCao", timeout=20000)

            # the task pane's button
            page.click("#kiem-tra")
            page.wait_for_function("() => window.__fake.dialogs.length > 0", timeout=30000)
            state = page.evaluate("() => window.__fake.state()")
            dialog = page.evaluate("() => window.__fake.dialogs[0]")
            log = page.evaluate("() => window.__fake.log")

            # the unit fixes the three cells, then presses the ribbon button
            page.evaluate(
                """async (fixes) => {
                    await Excel.run(async (context) => {
                        const sheet = context.workbook.worksheets.getItem("PL03");
                        for (const [r, c, v] of fixes) sheet.values[r][c] = v;
                    });
                    window.__done = false;
                    await window.__fake.actions.kiemTraBaoCao({ completed: () => (window.__done = true) });
                }""",
                fixes,
            )
            page.wait_for_function("() => window.__done && window.__fake.dialogs.length > 1", timeout=30000)
            state2 = page.evaluate("() => window.__fake.state()")
            dialog2 = page.evaluate("() => window.__fake.dialogs[1]")
        finally:
            browser.close()

    assert not problems, problems
    # the alert, through xlwings' dialog page on this server
    url = urlsplit(dialog)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{live_server}/xlwings/alert"
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    assert query == {
        "prompt": "Có 2 lỗi và 1 cảnh báo. Xem trang “Kết quả kiểm tra”.",
        "title": "Kiểm tra báo cáo",
        "buttons": "ok",
        "mode": "critical",
        "callback": "",
    }
    import httpx

    assert query["prompt"] in httpx.get(dialog).text

    sheets = {s["name"]: s for s in state["sheets"]}
    assert state["sheets"][0]["name"] == "Kết quả kiểm tra" and state["active"] == "Kết quả kiểm tra"
    marked = {k: v for k, v in sheets["PL03"]["fills"].items() if v != INPUT_FILL}
    assert marked == {female: RED, total: RED, blank: RED, as_text: YELLOW}
    inputs = {c.address for c in get_form("PL03").layout(workbook.periods).inputs}
    assert set(sheets["PL03"]["fills"]) == inputs
    assert sheets["PL01"]["protected"] and sheets["PL03"]["protected"]  # locked again after colouring
    assert ["unprotect", "PL03", None] in log and ["protect", "PL03", None] in log
    result = sheets["Kết quả kiểm tra"]["values"]
    assert result[1][0].endswith("Có 2 lỗi và 1 cảnh báo. Xem trang “Kết quả kiểm tra”.")
    assert [row[2] for row in result[4:]] == ["Số liệu không khớp", "Thiếu số liệu", "Số được gõ dạng chữ"]

    # after the fix: back to the input shading, the findings sheet replaced, the ribbon command completed
    assert parse_qs(urlsplit(dialog2).query)["prompt"] == ["Không có lỗi. Báo cáo đã sẵn sàng để gửi."]
    sheets2 = {s["name"]: s for s in state2["sheets"]}
    assert [s["name"] for s in state2["sheets"]].count("Kết quả kiểm tra") == 1
    assert set(sheets2["PL03"]["fills"].values()) == {INPUT_FILL}
    assert sheets2["Kết quả kiểm tra"]["values"][1][0].endswith("Không có lỗi. Báo cáo đã sẵn sàng để gửi.")
