"""Annotated copies of many returns are written by parallel processes: the same copies, in the same order."""

from __future__ import annotations

import concurrent.futures
import threading
import zipfile

import pytest

import toolkit.annotate as annotate
from toolkit.resources import examples_dir
from toolkit.round import load_round
from toolkit.validate import validate_paths

INBOX = examples_dir() / "bac-giang-2024" / "inbox"


@pytest.fixture(scope="module")
def report():
    return validate_paths([INBOX], load_round(examples_dir() / "bac-giang-2024" / "round.yaml"))


def parts(path):
    """The copy's parts (openpyxl stamps the time in docProps/core.xml: left out)."""
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


def test_parallel_copies_are_the_sequential_ones(report, tmp_path, monkeypatch):
    subs = report.submissions
    sequential = annotate.write_annotated_copies(subs, tmp_path / "seq", workers=1)
    monkeypatch.setattr(annotate, "PARALLEL_MIN_COPIES", 2)
    pools = []

    class Pool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Pool)
    parallel = annotate.write_annotated_copies(subs, tmp_path / "par", workers=2)
    assert pools == [2]  # written by two worker processes
    assert [p.name for p in parallel] == [p.name for p in sequential] == [annotate.annotated_name(s) for s in subs]
    assert [p.parent for p in parallel] == [tmp_path / "par"] * len(subs)
    for a, b in zip(sequential, parallel):
        assert parts(a) == parts(b)


def test_a_folder_that_cannot_be_written_raises_as_the_loop_would(report, tmp_path, monkeypatch):
    monkeypatch.setattr(annotate, "PARALLEL_MIN_COPIES", 2)
    blocker = tmp_path / "tep"
    blocker.write_text("")
    with pytest.raises(OSError):
        annotate.write_annotated_copies(report.submissions, blocker / "kiem-tra", workers=2)


def test_with_other_threads_running_the_copies_are_written_here(report, tmp_path, monkeypatch):
    monkeypatch.setattr(annotate, "PARALLEL_MIN_COPIES", 2)
    used = []
    real = annotate.write_annotated
    monkeypatch.setattr(annotate, "write_annotated", lambda sub, out: used.append(sub.name) or real(sub, out))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        annotate.write_annotated_copies(report.submissions, tmp_path, workers=2)
    finally:
        stop.set()
        other.join()
    assert used == [s.name for s in report.submissions]
