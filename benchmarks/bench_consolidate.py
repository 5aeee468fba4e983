"""The deadline job end to end: ``consolidate_inbox`` (validate + consolidate + summary + registry) vs a raw read.

    .venv/bin/python benchmarks/bench_consolidate.py [--units 700 3321] [--repeat 1] [--profile 700]

For each N it takes the synthetic round and returns of ``bench_validate.py`` (built once, cached under
``benchmarks/.cache``): N <= 1000 replicates ``examples/bac-giang-2024`` (district level, PL01+PL03 and
PL01+PL02), larger N ``examples/bac-ninh-2026`` (commune level, PL03 and some PL01+PL03); force one with
``N:district`` or ``N:commune``. One return in ten carries a typical mistake. Then, in the same run and each in
a fresh subprocess (imports not timed, page cache warm):

* ``calamine``  python-calamine only, one process: ``CalamineWorkbook.from_path`` and ``to_python()`` of every
  sheet of every file (``bench_validate._work_calamine``), the floor any reader of these files pays;
* ``first run`` ``toolkit.pipeline.consolidate_inbox(inbox, rnd, summary, registry)`` into a fresh registry,
  exactly what ``baocao consolidate`` runs: validation in a process pool, large-change check, consolidation,
  the summary workbook (XlsxWriter), the SQLite registry;
* ``re-run``    the same on the same inbox and registry (every file already known): the summary is rewritten,
  and it must be the same, part by part, as the first run's;
* ``sequential`` the first run again with ``parallel=False`` (summary written in-process, then the registry
  recorded, as for small inboxes, on Windows and macOS, and in the threaded server); same summary required.

Ratios to calamine are given best over best, and per attempt (each run over the calamine read of its own
attempt, a few seconds earlier) with their median: the VM's speed drifts between attempts.

Wall time of each step of ``consolidate_inbox`` is taken by wrapping the functions it calls; CPU time is
user + system of the process and its reaped pool workers; peak RSS is the process's own high-water mark
(``VmHWM``: ``ru_maxrss`` would carry the benchmark's peak across ``exec``) and ``ru_maxrss`` of its largest forked
child, pool worker or summary child (``RUSAGE_CHILDREN`` is a maximum over the reaped children, not a sum). The registry and
the summary are written beside the inbox (same disk), in a folder deleted afterwards.

Finally the run of ``--profile`` sizes is repeated under cProfile in the parent process with the profiler
switched on only outside validation (validation has its own benchmark): the costs of the steps after it and
the top functions are printed and stored; the raw profile goes to ``benchmarks/results/consolidate-<N>.prof``.

Prints a table and writes ``benchmarks/results/consolidate.json``. A benchmark, not a test: nothing here
asserts a timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for p in (ROOT, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_validate as bv  # noqa: E402 - the round, the returns, the calamine read, the profile summary
from common import EXAMPLES, cpu_seconds, machine_info, maxrss_mb, parse_units, zip_parts  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TARGET_VS_CALAMINE = 2.5  # 700 returns end to end: at most this many times calamine's raw read
TARGET_RSS_MB = 500.0  # peak RSS of the process, and of its largest pool worker
TARGET_UNITS = 700  # the targets are for the district round

# Steps of consolidate_inbox, as the pipeline module calls them (wrapped to time each one).
STEPS = ("validate_paths", "flag_large_changes", "consolidate", "write_and_record", "write_summary")
STEP_LABELS = {
    "validate_paths": "validate",
    "registry_open": "registry open",
    "flag_large_changes": "large-change check",
    "consolidate": "consolidate",
    "write_and_record": "summary ‖ registry",
    "write_summary": "  write summary",
    "registry_record": "  registry record",
    "registry_close": "registry close",
}
NESTED_STEPS = {"write_summary", "registry_record"}  # inside write_and_record (the summary's, in the parallel
# run, is in the forked child and not seen here)

# Stages of the profiled part (everything after validation), by the function whose cumulative time covers them.
PROFILE_STAGES: list[tuple[str, str | None, str]] = [
    ("registry open (migrate)", "registry.py", "open"),
    ("large-change check", "registry.py", "flag_large_changes"),
    ("consolidate", "consolidate.py", "consolidate"),
    ("  schedule", "consolidate.py", "_schedule"),
    ("  status", "consolidate.py", "_status"),
    ("write summary", "summary.py", "write_summary"),
    ("  province totals sheets", "summary.py", "_write_totals_sheet"),
    ("  indicator × unit sheet", "summary.py", "_write_by_unit"),
    ("  schedule sheet", "summary.py", "_write_schedule"),
    ("  status sheet", "summary.py", "_write_status"),
    ("  findings sheet", "summary.py", "_write_findings"),
    ("  data sheet (tidy table)", "summary.py", "_write_data"),
    ("  chart sheet", "summary.py", "_write_charts"),
    ("  XlsxWriter close (XML + zip)", "workbook.py", "_store_workbook"),
    ("registry record", "registry.py", "record"),
    ("  sqlite execute", None, "execute"),
    ("  sqlite executemany", None, "executemany"),
    ("registry close", "registry.py", "close"),
    ("Round.unit (linear lookup)", "round.py", "unit"),
]


# ------------------------------------------------------------------------------------------------ helpers


def registry_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = ("files", "findings", "accepted_values", "runs")
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------- the worker


def _instrument(steps: dict[str, float], record: dict, prof=None) -> None:
    """Wrap what ``consolidate_inbox`` calls so each step's wall time lands in ``steps``; with ``prof``, the
    profiler runs inside every step but validation."""
    import toolkit.pipeline as pipeline
    from toolkit.registry import Registry

    def timed(name: str, fn, profiled: bool = True):
        def inner(*args, **kwargs):
            on = prof is not None and profiled
            t = time.perf_counter()
            if on:
                prof.enable()
            try:
                return fn(*args, **kwargs)
            finally:
                if on:
                    prof.disable()
                steps[name] = steps.get(name, 0.0) + time.perf_counter() - t

        return inner

    for name in STEPS:
        setattr(pipeline, name, timed(name, getattr(pipeline, name), profiled=name != "validate_paths"))

    class TimedRegistry(Registry):
        @classmethod
        def open(cls, *args, **kwargs):
            return timed("registry_open", super().open)(*args, **kwargs)

        def record(self, *args, **kwargs):
            run = timed("registry_record", super().record)(*args, **kwargs)
            record.update(new_files=len(run.new_files), values=run.values, counted=len(run.counted))
            return run

        def close(self):
            return timed("registry_close", super().close)()

    pipeline.Registry = TimedRegistry


def worker(spec: dict) -> dict:
    mode, data = spec["mode"], Path(spec["data"])
    t_import = time.perf_counter()
    rnd = pickle.loads((data / "round.pkl").read_bytes())
    inbox = data / "returns"
    files = sorted(inbox.glob("*.xlsx"))
    if mode == "calamine":
        import python_calamine  # noqa: F401 - imports are not part of the measured time
    else:
        import toolkit.pipeline  # noqa: F401
    t_import = time.perf_counter() - t_import
    rss_before = maxrss_mb(resource.RUSAGE_SELF)
    load = os.getloadavg()[0]
    extra: dict = {}
    steps: dict[str, float] = {}
    prof = None
    if mode == "calamine":
        t0, c0 = time.perf_counter(), cpu_seconds()
        extra = bv._work_calamine(files)
    else:
        from toolkit.pipeline import consolidate_inbox

        record: dict = {}
        if mode == "profile":
            import cProfile

            prof = cProfile.Profile()
        _instrument(steps, record, prof)
        summary, registry = Path(spec["summary"]), Path(spec["registry"])
        t0, c0 = time.perf_counter(), cpu_seconds()
        # The profile and the sequential measurement write the summary in this process, then record.
        parallel = False if mode in ("profile", "sequential") else None
        run = consolidate_inbox(inbox, rnd, summary, registry, parallel=parallel)
        extra = {
            "report": run.report.summary(),
            "registry_run": record,
            "tidy_rows": len(run.consolidation.tidy),
            "schedule_rows": len(run.consolidation.schedule),
        }
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    out = {
        "mode": mode,
        "files": len(files),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "steps": steps,
        "import_seconds": t_import,
        "load_average_1min_before": load,
        "rss_before_mb": rss_before,
        "rss_peak_mb": {
            "self": maxrss_mb(resource.RUSAGE_SELF),
            "largest_worker": maxrss_mb(resource.RUSAGE_CHILDREN),
        },
        **extra,
    }
    if prof is not None:
        path = Path(spec["profile_out"])
        prof.dump_stats(str(path))
        out["profile"] = bv._profile_summary(path, top=30, stages_of=PROFILE_STAGES)
    return out


def run_worker(spec: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"worker {spec['mode']} failed ({proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------- one size


def bench(n: int, level: str, args, profile: bool) -> dict:
    t0 = time.perf_counter()
    ns = argparse.Namespace(
        units=n, level=level, faulty=args.faulty, seed=args.seed, cache=args.cache, rebuild=args.rebuild
    )
    data, info = bv.build_returns(ns)
    built = time.perf_counter() - t0
    files = sorted((data / "returns").glob("*.xlsx"))
    print(
        f"\nN={n} ({level}, {EXAMPLES[level].parent.name}): {len(files)} returns, {info['bytes'] / 1e6:.1f} MB, "
        f"forms {info['forms_mix']}, {info['faults']}  [{'built' if built > 1 else 'cached'} in {built:.1f}s]",
        flush=True,
    )
    for p in files:  # warm the page cache: every measurement starts from the same state
        p.read_bytes()

    attempts: dict[str, list[dict]] = {"calamine": [], "first": [], "rerun": [], "sequential": []}
    identical, same_as_sequential = [], []
    registry_rows = {}
    for k in range(args.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="consolidate-", dir=data))  # beside the inbox: same disk
        try:
            summary, registry = tmp / "tong-hop.xlsx", tmp / "returns.baocao.sqlite"
            common = {"data": str(data), "summary": str(summary), "registry": str(registry)}
            attempts["calamine"].append(run_worker({"mode": "calamine", "data": str(data)}))
            attempts["first"].append(run_worker({"mode": "first", **common}))
            first_parts = zip_parts(summary)
            first_rows = registry_counts(registry)
            attempts["rerun"].append(run_worker({"mode": "rerun", **common}))
            again = zip_parts(summary)
            identical.append(list(first_parts) == list(again) and all(first_parts[p] == again[p] for p in again))
            registry_rows = {"after_first_run": first_rows, "after_re_run": registry_counts(registry)}
            # The first run again with the summary written before the registry records, in one process.
            seq_summary, seq_registry = tmp / "tuan-tu.xlsx", tmp / "tuan-tu.baocao.sqlite"
            attempts["sequential"].append(
                run_worker(
                    {
                        "mode": "sequential",
                        "data": str(data),
                        "summary": str(seq_summary),
                        "registry": str(seq_registry),
                    }
                )
            )
            seq_parts = zip_parts(seq_summary)
            same_as_sequential.append(
                list(first_parts) == list(seq_parts) and all(first_parts[p] == seq_parts[p] for p in seq_parts)
            )
            summary_facts = {
                "bytes": summary.stat().st_size,
                "parts": len(again),
                "sheet_xml_bytes": sum(len(v) for k_, v in again.items() if k_.startswith("xl/worksheets/")),
            }
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        best = {m: min(a, key=lambda r: r["seconds"]) for m, a in attempts.items()}
        print(
            f"  attempt {k + 1}/{args.repeat}: calamine {attempts['calamine'][-1]['seconds']:.2f}s, first run "
            f"{attempts['first'][-1]['seconds']:.2f}s, re-run {attempts['rerun'][-1]['seconds']:.2f}s, sequential first "
            f"run {attempts['sequential'][-1]['seconds']:.2f}s",
            flush=True,
        )

    prof = None
    if profile:
        tmp = Path(tempfile.mkdtemp(prefix="consolidate-", dir=data))
        try:
            RESULTS.mkdir(parents=True, exist_ok=True)
            prof = run_worker(
                {
                    "mode": "profile",
                    "data": str(data),
                    "summary": str(tmp / "tong-hop.xlsx"),
                    "registry": str(tmp / "returns.baocao.sqlite"),
                    "profile_out": str(RESULTS / f"consolidate-{n}.prof"),
                }
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    cal = best["calamine"]
    ratios = {}
    for m in ("first", "rerun", "sequential"):
        # Best over best, and each attempt over the calamine read of the same attempt (measured a few seconds
        # before it: the VM's speed drifts between attempts, much less within one).
        paired = [r["seconds"] / c["seconds"] for r, c in zip(attempts[m], attempts["calamine"])]
        ratios[m] = {
            "wall": best[m]["seconds"] / cal["seconds"],
            "cpu": best[m]["cpu_seconds"] / cal["cpu_seconds"],
            "paired_wall": paired,
            "paired_wall_median": statistics.median(paired),
        }
    return {
        "units": n,
        "level": level,
        "source_round": info.get("source_round", str(EXAMPLES[level].relative_to(ROOT))),
        "returns": {k: v for k, v in info.items() if k not in ("level", "source_round")} | {"path": str(data)},
        "best": best,
        "attempts": {m: [_brief(r) for r in a] for m, a in attempts.items()},
        "ratios_over_calamine": ratios,
        "summary_workbook": summary_facts
        | {
            "identical_on_re_run": all(identical),
            "sequential_identical": all(same_as_sequential),
        },
        "registry_rows": registry_rows,
        "profile": prof,
    }


def _brief(r: dict) -> dict:
    return {
        "seconds": round(r["seconds"], 3),
        "cpu_seconds": round(r["cpu_seconds"], 3),
        "rss_peak_mb": {k: round(v, 1) for k, v in r["rss_peak_mb"].items()},
        "load_average_1min_before": round(r["load_average_1min_before"], 2),
    }


# ------------------------------------------------------------------------------------------------ report


def print_result(res: dict) -> None:
    n, best = res["units"], res["best"]
    print(
        f"\n{'N=' + str(n):<8} {'measurement':<11} {'wall s':>7} {'CPU s':>7} {'ms/file':>8} {'RSS MB':>7} "
        f"{'worker MB':>9} {'× calamine':>11} {'× CPU':>6}"
    )
    names = {"calamine": "calamine", "first": "first run", "rerun": "re-run", "sequential": "sequential"}
    for m, label in names.items():
        r = best[m]
        ratio = "" if m == "calamine" else f"{res['ratios_over_calamine'][m]['wall']:.2f}×"
        cpu_ratio = "" if m == "calamine" else f"{res['ratios_over_calamine'][m]['cpu']:.2f}×"
        worker = r["rss_peak_mb"]["largest_worker"]
        print(
            f"{'':<8} {label:<11} {r['seconds']:>7.2f} {r['cpu_seconds']:>7.2f} {1000 * r['seconds'] / r['files']:>8.2f} "
            f"{r['rss_peak_mb']['self']:>7.0f} {(f'{worker:.0f}' if worker else '-'):>9} {ratio:>11} {cpu_ratio:>6}"
        )
    for m in ("first", "rerun", "sequential"):
        steps = best[m]["steps"]
        other = best[m]["seconds"] - sum(v for k, v in steps.items() if k not in NESTED_STEPS)
        parts = ", ".join(f"{STEP_LABELS[k]} {v:.2f}" for k, v in _ordered(steps)) + f", other {other:.2f}"
        print(f"  {names[m]} steps (s): {parts}")
    paired = res["ratios_over_calamine"]
    print(
        "  each attempt over its own calamine read: "
        + "; ".join(
            f"{names[m]} "
            + ", ".join(f"{x:.2f}×" for x in paired[m]["paired_wall"])
            + f" (median {paired[m]['paired_wall_median']:.2f}×)"
            for m in ("first", "rerun", "sequential")
        )
    )
    rep = best["first"]["report"]
    wb = res["summary_workbook"]
    print(
        f"  validation: {rep['valid']} valid / {rep['invalid']} invalid, {rep['errors']} errors, "
        f"{rep['warnings']} warnings; {best['first']['tidy_rows']:,} tidy rows, "
        f"{best['first']['registry_run'].get('values', 0):,} accepted values; summary {wb['bytes'] / 1e6:.1f} MB "
        f"({wb['sheet_xml_bytes'] / 1e6:.1f} MB of sheet XML), identical on re-run: {wb['identical_on_re_run']}, "
        f"sequential run's identical: {wb['sequential_identical']}; "
        f"registry rows {res['registry_rows'].get('after_re_run')}"
    )
    prof = res.get("profile")
    if prof:
        p = prof["profile"]
        print(
            f"\n  cProfile of the first run, parent process, outside validation ({p['total']:.2f}s under the "
            f"profiler, which inflates Python code; validation took {prof['steps'].get('validate_paths', 0):.2f}s):"
        )
        for st in p["stages"]:
            print(f"    {st['stage']:<34} {st['cumtime']:>7.3f}s {100 * st['share']:>5.1f}%")
        print("\n    top by own time:")
        for row in p["by_tottime"][:15]:
            print(f"      {row['tottime']:>7.3f}s {row['cumtime']:>7.3f}s {row['calls']:>9}  {row['function']}")


def _ordered(steps: dict[str, float]):
    return [(k, steps[k]) for k in STEP_LABELS if k in steps]


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {}
    for pkg in ("XlsxWriter",):
        try:
            out[pkg] = version(pkg)
        except Exception:  # noqa: BLE001
            out[pkg] = "?"
    out["sqlite"] = sqlite3.sqlite_version
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--units", nargs="+", default=["700", "3321"], help="N or N:district / N:commune")
    ap.add_argument("--repeat", type=int, default=1, help="attempts of each measurement, interleaved; best kept")
    ap.add_argument("--profile", nargs="*", type=int, default=[700], help="sizes to profile (none: no profile)")
    ap.add_argument("--faulty", type=float, default=0.1, help="share of returns with one typical mistake")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--cache", default=str(bv.CACHE), help="where the generated returns are kept between runs")
    ap.add_argument("--rebuild", action="store_true", help="regenerate the returns even if cached")
    ap.add_argument("--output", default=str(RESULTS / "consolidate.json"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker)), default=str))
        return

    results = []
    for n, level in parse_units(args.units):
        res = bench(n, level, args, profile=n in args.profile)
        print_result(res)
        results.append(res)

    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} on {os.cpu_count()} CPUs (wall times suffer from it; CPU less so)")
    targets = {}
    for res in results:
        if res["units"] != TARGET_UNITS:
            continue
        first = res["best"]["first"]
        rss = first["rss_peak_mb"]
        targets = {
            "units": TARGET_UNITS,
            "over_calamine_max": TARGET_VS_CALAMINE,
            "rss_mb_max": TARGET_RSS_MB,
            "over_calamine": round(res["ratios_over_calamine"]["first"]["wall"], 3),
            "over_calamine_paired_median": round(res["ratios_over_calamine"]["first"]["paired_wall_median"], 3),
            "meets_time": res["ratios_over_calamine"]["first"]["wall"] <= TARGET_VS_CALAMINE,
            "meets_memory": max(rss["self"], rss["largest_worker"]) <= TARGET_RSS_MB,
        }
        print(
            f"target ({TARGET_UNITS} returns): first run {targets['over_calamine']:.2f}× calamine (paired median "
            f"{targets['over_calamine_paired_median']:.2f}×) "
            f"(≤ {TARGET_VS_CALAMINE:g}×: {'yes' if targets['meets_time'] else 'no'}), peak RSS "
            f"{rss['self']:.0f} MB + worker {rss['largest_worker']:.0f} MB "
            f"(each ≤ {TARGET_RSS_MB:g} MB: {'yes' if targets['meets_memory'] else 'no'})"
        )

    out = {
        "benchmark": "consolidate",
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(bv._versions() | _versions()),
        "load_average": [round(x, 2) for x in load],
        "targets": targets,
        "results": [_rounded(r) for r in results],
    }
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {path}")


def _rounded(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


if __name__ == "__main__":
    main()
