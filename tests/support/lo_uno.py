"""Runs under the system Python that has LibreOffice's ``uno`` module (Debian: python3-uno).

Reads a JSON list of jobs on stdin, starts one headless LibreOffice, and for each job opens a workbook,
types values into cells as a person would (numbers, text, dates, formulas), recalculates, reads cells
back and saves in the requested format. Prints a JSON list of results on stdout.

Job: {"input": path, "output": path|null, "format": "xlsx"|"xls"|"ods",
      "edits": [{"sheet": "PL03", "cell": "D15", "value": 12 | "text": "…" | "formula": "=…" |
                 "date": "2024-05-23" | "clear": true}],
      "read": [{"sheet": "PL03", "cell": "J15"}]}
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


def cell_result(cell):
    kind = cell.getType().value.lower()  # EMPTY | VALUE | TEXT | FORMULA
    return {
        "type": kind,
        "string": cell.getString(),
        "value": cell.getValue(),
        "formula": cell.getFormula(),
        "error": cell.getError(),
    }


def run_job(desktop, job):
    doc = desktop.loadComponentFromURL(url(job["input"]), "_blank", 0, (prop("Hidden", True),))
    if doc is None:
        return {"error": "could not open"}
    try:
        sheets = doc.getSheets()
        # Typing into a protected sheet's unlocked cells is what a person does; the API ignores locks.
        for e in job.get("edits", []):
            cell = sheets.getByName(e["sheet"]).getCellRangeByName(e["cell"])
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
        doc.calculateAll()
        reads = []
        for r in job.get("read", []):
            reads.append(cell_result(sheets.getByName(r["sheet"]).getCellRangeByName(r["cell"])))
        info = {
            "sheets": [sheets.getByIndex(i).getName() for i in range(sheets.getCount())],
            "protected": {
                sheets.getByIndex(i).getName(): sheets.getByIndex(i).isProtected() for i in range(sheets.getCount())
            },
        }
        if job.get("output"):
            fmt = job.get("format", "xlsx")
            doc.storeToURL(url(job["output"]), (prop("FilterName", FILTERS[fmt]), prop("Overwrite", True)))
        return {"reads": reads, **info}
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
