"""Drive a real LibreOffice (headless) from the tests: fill, recalculate, read back, save.

LibreOffice's Python bridge (``uno``) lives in the system Python (Debian package python3-uno), not in
our virtual environment, so the work is done by ``lo_uno.py`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = os.environ.get("BAOCAO_UNO_PYTHON", "/usr/bin/python3")


def available() -> bool:
    if not shutil.which("soffice") or not Path(SYSTEM_PYTHON).exists():
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import uno"], capture_output=True)
    return probe.returncode == 0


def run(jobs: list[dict], timeout: float = 600) -> list[dict]:
    """Run jobs (see lo_uno.py) in one LibreOffice session; returns one result per job."""
    proc = subprocess.run(
        [SYSTEM_PYTHON, str(HERE / "lo_uno.py")],
        input=json.dumps(jobs, default=str),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"LibreOffice driver failed: {proc.stderr[-2000:]}")
    results = json.loads(proc.stdout)
    for job, result in zip(jobs, results):
        if "error" in result:
            raise RuntimeError(f"LibreOffice job on {job['input']} failed: {result['error']}")
    return results
