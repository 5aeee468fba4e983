"""Where the shipped data lives, in a source checkout and in an installed wheel alike.

In the repository the folders are top level (``workbook_templates/``, ``schemas/``, ``examples/``);
the wheel installs them as ``toolkit/workbook_templates`` etc. (see ``pyproject.toml``).
"""

from __future__ import annotations

import functools
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@functools.cache  # part of the installation: looked up once (forms are asked for several times per file read)
def resource_dir(name: str) -> Path:
    for candidate in (_HERE / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"baocao: thiếu thư mục dữ liệu “{name}” trong bản cài đặt.")


def forms_dir() -> Path:
    return resource_dir("workbook_templates")


def schemas_dir() -> Path:
    return resource_dir("schemas")


def examples_dir() -> Path:
    return resource_dir("examples")


def default_round_path() -> Path:
    return examples_dir() / "bac-giang-2024" / "round.yaml"
