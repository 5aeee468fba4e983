"""Runs under the system Python that has LibreOffice's ``uno`` module (Debian: python3-uno).

Reads a JSON list of jobs on stdin, starts one headless LibreOffice, and for each job opens a workbook,
types values into cells as a person would (numbers, text, dates, formulas), recalculates, reads cells
back and saves in the requested format. Prints a JSON list of results on stdout.

Job: {"input": path, "output": path|null, "format": "xlsx"|"xls"|"ods",
      "outputs": [{"path": path, "format": "xls"}, …] (optional: more copies of the same result),
      "edits": [{"sheet": "PL03", "cell": "D15", "value": 12 | "text": "…" | "formula": "=…" |
                 "date": "2024-05-23" | "clear": true, optional "font": ".VnTime" (sets CharFontName)}],
      "delete_sheets": ["_baocao"] (optional: sheets removed after the edits, as when data is pasted elsewhere),
      "read": [{"sheet": "PL03", "cell": "J15", optional "details": true}],
      "arrays": [{"sheet": "PL03", "range": "A14:J72"}] (optional: values of whole ranges, one call each),
      "formats": ["PL03", …] (optional: protection and data validation of every cell of these sheets)}

Result: {"reads": [{"type", "string", "value", "formula", "error", + with details: "locked", "validation"}],
         "arrays": [[[value, …], …], …]  (numbers as floats, text as str, empty cells as ""),
         "formats": {sheet: [{"ranges": [[first_col, first_row, last_col, last_row], …] (0-based, inclusive),
                              "locked": bool, "validation": {…}}, …]},
         "sheets": [names], "protected": {name: bool}, "visible": {name: bool}}
where "validation" is {"type": "ANY"|"WHOLE"|"DECIMAL"|"DATE"|"TEXT_LEN"|"LIST"|…, "operator", "formula1",
"formula2", "show_error"} as LibreOffice sees a cell's data validation. "formats" groups the sheet into the
ranges LibreOffice itself keeps with identical cell attributes, so it covers every cell in a few calls.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import uno
from com.sun.star.beans import PropertyValue

FILTERS = {"xlsx": "Calc MS Excel 2007 XML", "xls": "MS Excel 97", "ods": "calc8"}


def prop(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def url(path):
    return uno.systemPathToFileUrl(os.path.abspath(path))


def start():
    profile = tempfile.mkdtemp(prefix="baocao-lo-")
    pipe = "baocao" + uuid.uuid4().hex[:12]
    proc = subprocess.Popen(
        [
            os.environ.get("SOFFICE", "soffice"),
            "--headless",
            "--invisible",
            "--nologo",
            "--norestore",
            "--nodefault",
            "--nolockcheck",
            f"-env:UserInstallation={uno.systemPathToFileUrl(profile)}",
            f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.time() + 90
    while True:
        try:
            ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
            break
        except Exception:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("LibreOffice did not start") from None
            time.sleep(0.3)
    desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    return proc, desktop


def date_serial(text):
    import datetime as dt

    d = dt.date.fromisoformat(text)
    return (d - dt.date(1899, 12, 30)).days


def validation_result(cell):
    v = cell.getPropertyValue("Validation")
    return {
        "type": v.Type.value,
        "operator": v.getOperator().value,
        "formula1": v.getFormula1(),
        "formula2": v.getFormula2(),
        "show_error": bool(v.ShowErrorMessage),
    }


def cell_result(cell, details=False):
    kind = cell.getType().value.lower()  # EMPTY | VALUE | TEXT | FORMULA
    out = {
        "type": kind,
        "string": cell.getString(),
        "value": cell.getValue(),
        "formula": cell.getFormula(),
        "error": cell.getError(),
    }
    if details:
        out["locked"] = bool(cell.getPropertyValue("CellProtection").IsLocked)
        out["validation"] = validation_result(cell)
    return out


def formats_result(sheet):
    out = []
    groups = sheet.getUniqueCellFormatRanges()
    for i in range(groups.getCount()):
        group = groups.getByIndex(i)
        ranges = [[a.StartColumn, a.StartRow, a.EndColumn, a.EndRow] for a in group.getRangeAddresses()]
        out.append(
            {
                "ranges": ranges,
                "locked": bool(group.getPropertyValue("CellProtection").IsLocked),
                "validation": validation_result(group),
            }
        )
    return out


def run_job(desktop, job):
    doc = desktop.loadComponentFromURL(url(job["input"]), "_blank", 0, (prop("Hidden", True),))
    if doc is None:
        return {"error": "could not open"}
    try:
        sheets = doc.getSheets()
        # Typing into a protected sheet's unlocked cells is what a person does; the API ignores locks.
        by_name = {}  # one bridge call per sheet, not per edit
        for e in job.get("edits", []):
            if e["sheet"] not in by_name:
                by_name[e["sheet"]] = sheets.getByName(e["sheet"])
            cell = by_name[e["sheet"]].getCellRangeByName(e["cell"])
            if e.get("clear"):
                cell.setString("")
            elif "value" in e:
                cell.setValue(e["value"])
            elif "date" in e:
                cell.setValue(date_serial(e["date"]))
            elif "formula" in e:
                cell.setFormula(e["formula"])
            else:
                cell.setString(e["text"])
            if e.get("font"):
                cell.setPropertyValue("CharFontName", e["font"])
        for name in job.get("delete_sheets", []):
            sheets.removeByName(name)
        doc.calculateAll()
        reads = []
        for r in job.get("read", []):
            cell = sheets.getByName(r["sheet"]).getCellRangeByName(r["cell"])
            reads.append(cell_result(cell, r.get("details", False)))
        arrays = [
            [list(row) for row in sheets.getByName(a["sheet"]).getCellRangeByName(a["range"]).getDataArray()]
            for a in job.get("arrays", [])
        ]
        formats = {name: formats_result(sheets.getByName(name)) for name in job.get("formats", [])}
        info = {
            "sheets": [sheets.getByIndex(i).getName() for i in range(sheets.getCount())],
            "protected": {
                sheets.getByIndex(i).getName(): sheets.getByIndex(i).isProtected() for i in range(sheets.getCount())
            },
            "visible": {
                sheets.getByIndex(i).getName(): bool(sheets.getByIndex(i).getPropertyValue("IsVisible"))
                for i in range(sheets.getCount())
            },
        }
        outputs = [{"path": job["output"], "format": job.get("format", "xlsx")}] if job.get("output") else []
        for out in outputs + job.get("outputs", []):
            fmt = out.get("format", "xlsx")
            doc.storeToURL(url(out["path"]), (prop("FilterName", FILTERS[fmt]), prop("Overwrite", True)))
        return {"reads": reads, "arrays": arrays, "formats": formats, **info}
    finally:
        doc.close(True)


def main():
    jobs = json.load(sys.stdin)
    proc, desktop = start()
    results = []
    try:
        for job in jobs:
            try:
                results.append(run_job(desktop, job))
            except Exception as exc:  # report, keep going
                results.append({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        try:
            desktop.terminate()
        except Exception:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
