"""Atomic output: write to a temporary file in the target folder, then rename it into place."""

from __future__ import annotations

import os
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str | Path, target: str | Path) -> None:
    """Give the temporary file ordinary permissions (mkstemp makes it owner-only) and rename it to target."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, target)
