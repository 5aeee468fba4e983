"""What the benchmarks share: the synthetic rounds, resource figures, the machine's description."""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXAMPLES = {  # the round a synthetic round replicates, by level
    "district": ROOT / "examples" / "bac-giang-2024" / "round.yaml",
    "commune": ROOT / "examples" / "bac-ninh-2026" / "round.yaml",
}


def _renamed(names: tuple[str, ...], old: str, new: str) -> tuple[str, ...]:
    return tuple(new if n == old else n for n in names)


def renamed_unit(unit, code: str, name: str, short_name: str):
    """The unit under another code and name; a commune unit's own commune (its communes, its planned visit)
    follows its name. A district's communes never bear the district's name, so they are kept as they are."""
    planned = unit.planned
    if planned is not None:
        planned = dataclasses.replace(planned, communes=_renamed(planned.communes, unit.name, name))
    return dataclasses.replace(
        unit,
        code=code,
        name=name,
        short_name=short_name,
        communes=_renamed(unit.communes, unit.name, name),
        planned=planned,
    )


def synthetic_round(n: int, level: str = "district"):
    """A round of ``n`` units replicated from the units owing forms of the example round of ``level``
    (``EXAMPLES``), with distinct codes (``00001``…) and names (``Huyện Yên Thế 7``); and, per unit, the index
    of the example unit it replicates."""
    from toolkit.round import load_round

    base = load_round(EXAMPLES[level])
    sources = base.units_owing()
    units, shape = [], []
    for i in range(n):
        k, src = divmod(i, len(sources))
        unit = sources[src]
        suffix = "" if k == 0 else f" {k + 1}"
        units.append(renamed_unit(unit, f"{i + 1:05d}", unit.name + suffix, unit.short_name + suffix))
        shape.append(src)
    return dataclasses.replace(base, id=f"{base.id}-bench-{n}", units=tuple(units)), shape


def parse_units(items: list[str]) -> list[tuple[int, str]]:
    """``--units`` values: ``N``, ``N:district`` or ``N:commune`` (N ≤ 1000 is district, larger N commune)."""
    out = []
    for item in items:
        n, _, level = item.partition(":")
        level = level or ("district" if int(n) <= 1000 else "commune")
        if level not in EXAMPLES:
            raise SystemExit(f"unknown level {level!r} in --units {item!r} (district or commune)")
        out.append((int(n), level))
    return out


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its reaped children (pool workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak RSS in MB: of this process, or (``RUSAGE_CHILDREN``) of its largest reaped child, not a sum.

    This process's own peak is the kernel's high-water mark of its memory since it started this program
    (``VmHWM``): ``ru_maxrss`` survives ``exec``, so in a measuring subprocess started by the benchmark it would be
    at least what the benchmark itself held at that moment (Python starts subprocesses with vfork: the peak of the
    benchmark's own memory is carried into the child's count).
    """
    if who == resource.RUSAGE_SELF:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
        except OSError:
            pass
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def zip_parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def machine_info(versions: dict[str, str] | None = None) -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        memory = None
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gib": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions or {},
    }
