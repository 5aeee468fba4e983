"""When work may go to forked processes."""

from __future__ import annotations

import multiprocessing
import sys
import threading


def can_fork() -> bool:
    """Whether this process may fork children that run Python: on Linux (macOS's system libraries are not
    fork-safe, Windows has no fork) and while it runs a single thread (a lock held by another thread at the fork,
    say in the upload server, would stay held forever in the child); not from a daemonic process (say a pool's
    worker), which may have no children."""
    return (
        not multiprocessing.current_process().daemon
        and sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
    )
