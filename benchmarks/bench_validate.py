"""Validation of a district-level round: ``validate_paths`` vs python-calamine alone vs openpyxl.

    .venv/bin/python benchmarks/bench_validate.py [--units 700] [--repeat 3] [--faulty 0.1] [--rebuild]

It builds a synthetic round of ``--units`` units by replicating the units of ``examples/bac-giang-2024``
(district level, PL01+PL03 and PL01+PL02; ``--level commune``: ``examples/bac-ninh-2026``, PL03 and some
PL01+PL03) under distinct codes and names, writes their templates with
``toolkit.render.write_templates`` and fills each one with realistic figures from
``tests/support/returns.py`` (``edits_for``): the template's sheet XML is edited directly (numbers as
``<v>``, text as shared strings, dates as serial numbers in the template's date-formatted cells), so 700
returns take seconds rather than a LibreOffice session. A share ``--faulty`` of the returns carries one
typical mistake (a number typed as text, a blank required figure, a negative figure, a part larger than its
total, a commune outside the unit) so the failure paths of the validator are exercised too; the others are
clean by construction. Files get a modification time before the round's deadline. The returns are cached
under ``benchmarks/.cache`` (keyed on the toolkit sources they depend on) between runs.

Then, in the same run, each in its own subprocess (so its peak RSS is its own) and on warm page cache:

* ``validate``  ``toolkit.validate.validate_paths([folder], rnd)`` end to end: safety gate (hash, zip
  directory, XML prologs), calamine values, the streamed XML scan, pandera schemas, findings;
* ``calamine``  python-calamine only: ``CalamineWorkbook.from_path(p)`` and ``to_python()`` of every sheet;
* ``openpyxl``  ``load_workbook(read_only=True, data_only=True)`` and every cell of every sheet.

``--repeat`` runs each measurement several times in its process: the first run of ``validate`` includes
one-off work (loading forms and rules, building the pandera schemas); ratios use the best run. Finally
``validate_paths`` is run once more under cProfile and the top costs are listed, with a breakdown by
stage. Prints a table and writes ``benchmarks/results/validate.json`` (and ``validate.prof``).

A benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import pickle
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import EXAMPLES, cpu_seconds, maxrss_mb, synthetic_round  # noqa: E402

EXAMPLE = EXAMPLES["district"]
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "benchmarks" / ".cache"
TARGET_VS_CALAMINE = 2.0  # validate may take at most this many times calamine's read
TARGET_VS_OPENPYXL = 10.0  # openpyxl should take at least this many times validate's time
FILLER_VERSION = "1"  # bump when the way returns are filled changes (invalidates the cache)

# What the cached returns depend on: any change here rebuilds them.
SOURCES = [
    EXAMPLE,
    ROOT / "toolkit" / "render.py",
    ROOT / "toolkit" / "forms.py",
    ROOT / "toolkit" / "rules.py",
    ROOT / "tests" / "support" / "returns.py",
    ROOT / "benchmarks" / "common.py",
    *sorted((ROOT / "workbook_templates").glob("*.yaml")),
    *sorted((ROOT / "schemas").glob("*.yaml")),
]

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
EXCEL_EPOCH = dt.date(1899, 12, 30)


# ------------------------------------------------------------------------------------------ synthetic round


def _sheet_parts(parts: dict[str, bytes]) -> dict[str, str]:
    """Sheet name -> zip part name, from xl/workbook.xml and its relationships."""
    rels = {r.get("Id"): r.get("Target", "") for r in ET.fromstring(parts["xl/_rels/workbook.xml.rels"])}
    out = {}
    for s in ET.fromstring(parts["xl/workbook.xml"]).iter(f"{{{NS_MAIN}}}sheet"):
        target = rels[s.get(f"{{{NS_REL}}}id")]
        out[s.get("name")] = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return out


class _SharedStrings:
    """Appends strings to xl/sharedStrings.xml the way Excel stores typed text."""

    def __init__(self, xml: bytes) -> None:
        self.xml = xml.decode("utf-8")
        m = re.search(r'uniqueCount="(\d+)"', self.xml)
        self.unique = int(m.group(1)) if m else self.xml.count("<si>")
        m = re.search(r'\bcount="(\d+)"', self.xml)
        self.count = int(m.group(1)) if m else self.unique
        self.index: dict[str, int] = {}
        self.added: list[str] = []

    def add(self, text: str) -> int:
        self.count += 1
        if text not in self.index:
            self.index[text] = self.unique + len(self.added)
            space = ' xml:space="preserve"' if text != text.strip() else ""
            self.added.append(f"<si><t{space}>{escape(text)}</t></si>")
        return self.index[text]

    def to_bytes(self) -> bytes:
        xml = re.sub(r'\bcount="\d+"', f'count="{self.count}"', self.xml, count=1)
        xml = re.sub(r'uniqueCount="\d+"', f'uniqueCount="{self.unique + len(self.added)}"', xml, count=1)
        return xml.replace("</sst>", "".join(self.added) + "</sst>").encode("utf-8")


_CELL = re.compile(r'<c r="([A-Z]+[0-9]+)"([^>]*?)(?:/>|>(.*?)</c>)', re.S)
_STYLE = re.compile(r'\ss="(\d+)"')


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def fill_workbook(template: Path, out: Path, edits: list[dict], mtime: float) -> None:
    """Write ``template`` with ``edits`` applied (``tests/support/returns.py`` form) to ``out``."""
    with zipfile.ZipFile(template) as zin:
        infos = zin.infolist()
        parts = {i.filename: zin.read(i) for i in infos}
    sheets = _sheet_parts(parts)
    sst = _SharedStrings(parts["xl/sharedStrings.xml"])
    by_part: dict[str, dict[str, str]] = {}
    for e in edits:
        if "value" in e:
            body, t = f"<v>{_number_text(e['value'])}</v>", ""
        elif "date" in e:
            serial = (dt.date.fromisoformat(e["date"]) - EXCEL_EPOCH).days
            body, t = f"<v>{serial}</v>", ""
        elif "text" in e:
            body, t = f"<v>{sst.add(e['text'])}</v>", ' t="s"'
        else:
            raise ValueError(f"unknown edit {e}")
        by_part.setdefault(sheets[e["sheet"]], {})[e["cell"]] = (t, body)
    for part, cells in by_part.items():
        todo = dict(cells)

        def repl(m: re.Match, todo=todo) -> str:
            new = todo.pop(m.group(1), None)
            if new is None:
                return m.group(0)
            style = _STYLE.search(m.group(2))
            s = f' s="{style.group(1)}"' if style else ""
            return f'<c r="{m.group(1)}"{s}{new[0]}>{new[1]}</c>'

        parts[part] = _CELL.sub(repl, parts[part].decode("utf-8")).encode("utf-8")
        if todo:
            raise RuntimeError(f"{template.name}: cells not in the template: {sorted(todo)}")
    parts["xl/sharedStrings.xml"] = sst.to_bytes()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zout:
        for info in infos:
            zi = zipfile.ZipInfo(info.filename, date_time=(2024, 5, 8, 9, 30, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(zi, parts[info.filename])
    os.utime(out, (mtime, mtime))


def _vn_number(value: float) -> str:
    """45659 -> “45.659”: a figure as staff type it in a text-formatted cell."""
    return f"{value:,.0f}".replace(",", ".")


FAULTS = ["number-as-text", "blank", "negative", "part-over-total", "foreign-commune"]


def unit_edits(rnd, unit, seed: int, fault: str | None) -> list[dict]:
    """Every edit for ``unit``'s return; with ``fault``, one typical mistake in it."""
    from tests.support.returns import edits_for
    from toolkit.forms import available_forms

    forms = available_forms()
    periods = tuple(p.id for p in rnd.periods)
    edits: list[dict] = []
    for form_id in sorted(unit.forms):
        form = forms[form_id]
        form_edits = edits_for(form, rnd, unit, seed * 10 + sorted(unit.forms).index(form_id))
        if fault and form.kind != "schedule" and fault != "foreign-commune":
            cells = form.layout(periods).inputs  # edits_for follows the layout's order
            idx = {(c.indicator, c.field, c.period): i for i, c in enumerate(cells)}
            i = seed % len(cells)
            if fault == "number-as-text":
                form_edits[i] = {"sheet": form.sheet, "cell": cells[i].address, "text": _vn_number(1000 + seed)}
            elif fault == "blank":
                form_edits.pop(i)
            elif fault == "negative":
                form_edits[i] = {**form_edits[i], "value": -5.0}
            elif fault == "part-over-total":
                female = [c for c in cells if c.field == "female" and (c.indicator, "total", c.period) in idx]
                c = female[seed % len(female)]
                total = form_edits[idx[(c.indicator, "total", c.period)]]["value"]
                j = idx[(c.indicator, c.field, c.period)]
                form_edits[j] = {**form_edits[j], "value": total + 7}
            fault = None
        elif fault == "foreign-commune" and form.kind == "schedule":
            for e in form_edits:
                if e["cell"].startswith("B"):
                    e["text"] = "Xã Không Thuộc Huyện"
                    break
            fault = None
        edits.extend(form_edits)
    return edits


def _level(args) -> str:
    return getattr(args, "level", None) or "district"


def _sources(level: str) -> list[Path]:
    return SOURCES if level == "district" else [EXAMPLES[level], *SOURCES[1:]]


def _digest(args) -> str:
    level = _level(args)
    tag = "" if level == "district" else f"{level}|"  # a district round keeps the digest it always had
    h = hashlib.sha256(f"{tag}{FILLER_VERSION}|{args.units}|{args.faulty}|{args.seed}".encode())
    for p in _sources(level):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def build_returns(args) -> tuple[Path, dict]:
    """The returns folder and facts about it; built once per source digest, then reused."""
    cache_root = Path(args.cache)
    key = _digest(args)
    level = _level(args)
    prefix = "validate" if level == "district" else f"validate-{level}"
    data = cache_root / f"{prefix}-{args.units}-{key}"
    info_path = data / "info.json"
    if info_path.exists() and not args.rebuild:
        return data, json.loads(info_path.read_text())
    from toolkit.render import write_templates

    cache_root.mkdir(parents=True, exist_ok=True)
    (cache_root / ".gitignore").write_text("*\n")
    for old in cache_root.glob(f"{prefix}-{args.units}-*"):
        shutil.rmtree(old)
    rnd, _ = synthetic_round(args.units, level)
    t0 = time.perf_counter()
    templates = data / "templates"
    returns = data / "returns"
    returns.mkdir(parents=True)
    paths = write_templates(rnd, templates, workers=os.cpu_count())
    t_templates = time.perf_counter() - t0
    by_stem = {p.stem: p for p in paths}
    owing = rnd.units_owing()
    n_faulty = round(len(owing) * args.faulty)
    step = len(owing) / n_faulty if n_faulty else 0
    faulty = {int(k * step) for k in range(n_faulty)}
    faults: Counter = Counter()
    deadline = dt.datetime.combine(rnd.deadline, dt.time(17, 0))
    t1 = time.perf_counter()
    for i, unit in enumerate(owing):
        fault = FAULTS[(i // max(int(step), 1)) % len(FAULTS)] if i in faulty else None
        if fault == "foreign-commune" and "PL01" not in unit.forms:
            fault = "negative"
        faults[fault or "clean"] += 1
        seed = args.seed + i
        received = deadline - dt.timedelta(days=1 + i % 6, minutes=37 * i % 600)
        fill_workbook(
            by_stem[unit.file_stem],
            returns / f"{unit.file_stem}.xlsx",
            unit_edits(rnd, unit, seed, fault),
            received.timestamp(),
        )
    t_fill = time.perf_counter() - t1
    shutil.rmtree(templates)
    (data / "round.pkl").write_bytes(pickle.dumps(rnd))
    files = sorted(returns.glob("*.xlsx"))
    info = {
        "level": level,
        "source_round": str(EXAMPLES[level].relative_to(ROOT)),
        "units": len(owing),
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "forms_mix": dict(Counter("+".join(sorted(u.forms)) for u in owing).most_common()),
        "faults": dict(faults.most_common()),
        "build_seconds": {"templates": round(t_templates, 2), "fill": round(t_fill, 2)},
        "digest": key,
    }
    info_path.write_text(json.dumps(info, indent=2, ensure_ascii=False))
    return data, info


# --------------------------------------------------------------------------------------------- the workers


def _work_calamine(files: list[Path]) -> dict:
    import python_calamine

    cells = 0
    for p in files:
        wb = python_calamine.CalamineWorkbook.from_path(str(p))
        try:
            for name in wb.sheet_names:
                rows = wb.get_sheet_by_name(name).to_python()
                cells += sum(len(r) for r in rows)
        finally:
            wb.close()
    return {"cells": cells}


def _work_openpyxl(files: list[Path]) -> dict:
    import openpyxl

    cells = 0
    for p in files:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
        try:
            for ws in wb.worksheets:
                for row in ws.iter_rows():
                    for cell in row:
                        _ = cell.value
                        cells += 1
        finally:
            wb.close()
    return {"cells": cells}


def _work_validate(folder: Path, rnd) -> dict:
    from toolkit.validate import validate_paths

    report = validate_paths([folder], rnd)
    return {"summary": report.summary(), "values": sum(len(s.values) for s in report.submissions)}


def worker(mode: str, data: Path, repeat: int, profile_out: Path | None) -> dict:
    t_import = time.perf_counter()
    rnd = pickle.loads((data / "round.pkl").read_bytes())
    folder = data / "returns"
    files = sorted(folder.glob("*.xlsx"))
    if mode in ("validate", "profile"):
        import toolkit.validate  # noqa: F401 - imports are not part of the measured time
    elif mode == "calamine":
        import python_calamine  # noqa: F401
    else:
        import openpyxl  # noqa: F401
    t_import = time.perf_counter() - t_import
    rss_before = maxrss_mb()
    times, cpu, extra = [], [], {}
    if mode == "profile":
        import cProfile

        prof = cProfile.Profile()
        t0, c0 = time.perf_counter(), cpu_seconds()
        prof.enable()
        extra = _work_validate(folder, rnd)
        prof.disable()
        times.append(time.perf_counter() - t0)
        cpu.append(cpu_seconds() - c0)
        prof.dump_stats(str(profile_out))
        extra["profile"] = _profile_summary(profile_out)
    else:
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), cpu_seconds()
            if mode == "validate":
                extra = _work_validate(folder, rnd)
            elif mode == "calamine":
                extra = _work_calamine(files)
            else:
                extra = _work_openpyxl(files)
            times.append(time.perf_counter() - t0)
            cpu.append(cpu_seconds() - c0)
    return {
        "mode": mode,
        "files": len(files),
        "times": times,
        "cpu": cpu,
        "import_seconds": t_import,
        "rss_before_mb": rss_before,
        "rss_peak_mb": maxrss_mb(),
        **extra,
    }


# Stages of validate_paths, by the function whose cumulative time covers them.
STAGES = [
    ("safety gate (inspect_workbook)", "safety.py", "inspect_workbook"),
    ("  sha-256 of the file", "safety.py", "_hash_handle"),
    ("  XML prolog scan", "safety.py", "_scan_xml_prologs"),
    ("read_submission (all)", "read.py", "read_submission"),
    ("  calamine open", None, "from_path"),
    ("  calamine to_python", None, "to_python"),
    ("  XML scan (_scan_xlsx)", "read.py", "_scan_xlsx"),
    ("  indicator forms", "read.py", "_read_indicator_form"),
    ("  schedule forms", "read.py", "_read_schedule_form"),
    ("validate_submissions (pandera)", "validate.py", "validate_submissions"),
    ("  indicator schemas", "validate.py", "_validate_indicators"),
    ("  schedule schemas", "validate.py", "_validate_schedules"),
]


def _profile_summary(path: Path, top: int = 25, stages_of: list[tuple[str, str | None, str]] | None = None) -> dict:
    import pstats

    st = pstats.Stats(str(path))
    stats = st.stats  # {(file, line, func): (cc, nc, tt, ct, callers)}
    total = st.total_tt

    def label(key) -> str:
        file, line, func = key
        if file == "~":
            return func
        parts = Path(file).parts
        short = "/".join(parts[-2:]) if "toolkit" in parts else "/".join(parts[-3:])
        return f"{short}:{line}({func})"

    def rows(sort_index: int) -> list[dict]:
        items = sorted(stats.items(), key=lambda kv: kv[1][sort_index], reverse=True)[:top]
        return [
            {"function": label(k), "calls": v[1], "tottime": round(v[2], 4), "cumtime": round(v[3], 4)}
            for k, v in items
        ]

    stages = []
    for name, file, func in STAGES if stages_of is None else stages_of:
        ct = 0.0
        for (f, _line, fn), v in stats.items():
            if (fn == func or fn.endswith(f".{func}") or fn.endswith(f"'{func}'") or f"{func}'" in fn) and (
                file is None or f.endswith(file)
            ):
                if file is None and f != "~":
                    continue
                ct = max(ct, v[3])
        stages.append({"stage": name, "cumtime": round(ct, 4), "share": round(ct / total, 4) if total else 0})
    return {"total": round(total, 4), "by_tottime": rows(2), "by_cumtime": rows(3), "stages": stages}


def run_worker(mode: str, data: Path, repeat: int, profile_out: Path | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--data", str(data)]
    cmd += ["--repeat", str(repeat)]
    if profile_out:
        cmd += ["--profile-out", str(profile_out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"worker {mode} failed ({proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ report


def _best(r: dict) -> float:
    return min(r["times"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--units", type=int, default=700)
    ap.add_argument(
        "--level",
        choices=sorted(EXAMPLES),
        default="district",
        help="district (bac-giang-2024) or commune (bac-ninh-2026)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs of validate and calamine per process")
    ap.add_argument("--rounds", type=int, default=3, help="alternating calamine/validate processes (default 3)")
    ap.add_argument("--openpyxl-repeat", type=int, default=1, help="runs of the (slow) openpyxl reader")
    ap.add_argument("--faulty", type=float, default=0.1, help="share of returns with one typical mistake")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--cache", default=str(CACHE), help="where the generated returns are kept between runs")
    ap.add_argument("--rebuild", action="store_true", help="regenerate the returns even if cached")
    ap.add_argument("--no-openpyxl", action="store_true")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        out = Path(args.profile_out) if args.profile_out else None
        print(json.dumps(worker(args.worker, Path(args.data), args.repeat, out), default=str))
        return

    t0 = time.perf_counter()
    data, info = build_returns(args)
    built = time.perf_counter() - t0
    files = sorted((data / "returns").glob("*.xlsx"))
    print(
        f"{info['files']} returns ({info['bytes'] / 1e6:.1f} MB, forms {info['forms_mix']}, "
        f"{info['faults']}) in {data}  [{'built' if built > 1 else 'cached'} in {built:.1f}s]"
    )
    for p in files:  # warm the page cache: every reader below starts from the same state
        p.read_bytes()

    results: dict[str, dict] = {}
    # Rounds of calamine then validate, each in a fresh process: the machine's speed drifts over a run (other
    # work, frequency), and interleaving gives both readers the same conditions; the fastest run of each counts.
    for _ in range(args.rounds):
        for name in ("calamine", "validate"):
            r = run_worker(name, data, args.repeat)
            if name not in results:
                results[name] = r
            else:
                results[name]["times"] += r["times"]
                results[name]["cpu"] += r["cpu"]
                results[name]["rss_peak_mb"] = max(results[name]["rss_peak_mb"], r["rss_peak_mb"])
    if not args.no_openpyxl:
        results["openpyxl"] = run_worker("openpyxl", data, args.openpyxl_repeat)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.no_profile:
        results["profile"] = run_worker("profile", data, 1, RESULTS / "validate.prof")

    n = len(files)
    val, cal = results["validate"], results["calamine"]
    ratios = {
        "validate_over_calamine": _best(val) / _best(cal),
        "validate_over_calamine_cpu": min(val["cpu"]) / min(cal["cpu"]),
    }
    if "openpyxl" in results:
        opx = results["openpyxl"]
        ratios["openpyxl_over_validate"] = _best(opx) / _best(val)
        ratios["openpyxl_over_validate_cpu"] = min(opx["cpu"]) / min(val["cpu"])
    load = os.getloadavg()
    print(f"\n{n} files; load average {load[0]:.1f} on {os.cpu_count()} CPUs (wall times suffer from it; CPU less so)")
    print(
        f"{'reader':<10} {'best s':>7} {'first s':>8} {'median s':>9} {'ms/file':>8} {'CPU s':>7} {'ms/file':>8} "
        f"{'RSS MB':>10}  note"
    )
    for name, r in results.items():
        if name == "profile":
            continue
        t, c = r["times"], r["cpu"]
        note = ""
        if name == "validate":
            note = (
                f"{ratios['validate_over_calamine']:.2f}× calamine wall, {ratios['validate_over_calamine_cpu']:.2f}× CPU "
                f"(target ≤ {TARGET_VS_CALAMINE:g}×)"
            )
        elif name == "openpyxl":
            note = (
                f"{ratios['openpyxl_over_validate']:.1f}× validate wall, {ratios['openpyxl_over_validate_cpu']:.1f}× CPU "
                f"(target ≥ {TARGET_VS_OPENPYXL:g}×)"
            )
        elif name == "calamine":
            note = f"{r['cells']:,} cells"
        rss = f"{r['rss_before_mb']:.0f}→{r['rss_peak_mb']:.0f}"
        print(
            f"{name:<10} {min(t):>7.2f} {t[0]:>8.2f} {statistics.median(t):>9.2f} {1000 * min(t) / n:>8.2f} "
            f"{min(c):>7.2f} {1000 * min(c) / n:>8.2f} {rss:>10}  {note}"
        )
    summary = val["summary"]
    print(
        f"\nvalidate: {summary['valid']} valid / {summary['invalid']} invalid, {summary['errors']} errors, "
        f"{summary['warnings']} warnings; {val['values']:,} figures read; findings {summary['by_code']}"
    )
    if "profile" in results:
        prof = results["profile"]["profile"]
        print(f"\ncProfile of validate_paths ({prof['total']:.2f}s under the profiler, which inflates Python code):")
        for st in prof["stages"]:
            print(f"  {st['stage']:<34} {st['cumtime']:>7.2f}s {100 * st['share']:>5.1f}%")
        print("\n  top by own time:")
        for row in prof["by_tottime"][:15]:
            print(f"    {row['tottime']:>7.3f}s {row['cumtime']:>7.3f}s {row['calls']:>9}  {row['function']}")

    meets = ratios["validate_over_calamine"] <= TARGET_VS_CALAMINE and (
        "openpyxl" not in results or ratios["openpyxl_over_validate"] >= TARGET_VS_OPENPYXL
    )
    out = {
        "benchmark": "validate",
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": [round(x, 2) for x in load],
        "versions": _versions(),
        "round": {"units": args.units, **info, "path": str(data)},
        "targets": {"validate_over_calamine_max": TARGET_VS_CALAMINE, "openpyxl_over_validate_min": TARGET_VS_OPENPYXL},
        "ratios": {k: round(v, 3) for k, v in ratios.items()} | {"meets_targets": meets},
        "results": {},
    }
    for name, r in results.items():
        t, c = r["times"], r["cpu"]
        entry = {
            "seconds": [round(x, 4) for x in t],
            "cpu_seconds": [round(x, 4) for x in c],
            "best_seconds": round(min(t), 4),
            "first_seconds": round(t[0], 4),
            "ms_per_file": round(1000 * min(t) / n, 3),
            "cpu_ms_per_file": round(1000 * min(c) / n, 3),
            "import_seconds": round(r["import_seconds"], 3),
            "rss_before_mb": round(r["rss_before_mb"], 1),
            "rss_peak_mb": round(r["rss_peak_mb"], 1),
        }
        for k in ("cells", "summary", "values", "profile"):
            if k in r:
                entry[k] = r[k]
        out["results"][name] = entry
    (RESULTS / "validate.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {RESULTS / 'validate.json'}")


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {}
    for pkg in ("python-calamine", "openpyxl", "pandas", "pandera", "baocao"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # noqa: BLE001
            out[pkg] = "?"
    return out


if __name__ == "__main__":
    main()
