"""Atomic output: write to a temporary file in the target folder, then rename it into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str | Path, target: str | Path) -> None:
    """Give the temporary file ordinary permissions (mkstemp makes it owner-only) and rename it to target."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_file(target: str | Path, suffix: str = "", prefix: str = ".tmp-") -> Iterator[Path]:
    """A temporary path beside ``target`` to write to: when the block ends normally it becomes ``target``
    (:func:`publish`); on any failure it is removed, so a crash never leaves half a file or a stray one."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
