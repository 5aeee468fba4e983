"""Shared fixtures: the shipped rounds, their generated templates, and the LibreOffice gate.

Tests that drive a real LibreOffice are marked ``@pytest.mark.libreoffice``. Without LibreOffice they are
skipped on a developer machine, but when ``CI=true`` they fail: CI must never pass by silently skipping them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # so that test modules can ``from support import …``
    sys.path.insert(0, str(TESTS_DIR))

from support import libreoffice as lo  # noqa: E402

from toolkit.render import write_templates  # noqa: E402
from toolkit.resources import examples_dir  # noqa: E402
from toolkit.round import Round, load_round  # noqa: E402

pytest_plugins = ["pytester"]  # test_templates_libreoffice.py checks the LibreOffice gate below

BAC_GIANG_ROUND = examples_dir() / "bac-giang-2024" / "round.yaml"
COMMUNE_ROUND = examples_dir() / "bac-ninh-2026" / "round.yaml"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "libreoffice: drives a real LibreOffice (headless)")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


_LO_AVAILABLE: bool | None = None


def require_libreoffice() -> None:
    """Skip (locally) or fail (CI=true) unless LibreOffice and its Python bridge are installed."""
    global _LO_AVAILABLE
    if _LO_AVAILABLE is None:
        _LO_AVAILABLE = lo.available()
    if _LO_AVAILABLE:
        return
    why = (
        f"LibreOffice headless (soffice) with the uno module for {lo.SYSTEM_PYTHON} is not installed "
        "(Debian: apt-get install libreoffice-calc-nogui python3-uno)"
    )
    if in_ci():
        pytest.fail(f"CI=true but {why}; LibreOffice tests must run in CI, not be skipped.", pytrace=False)
    pytest.skip(why)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Runs before any fixture of the test is set up, so a module-scoped LibreOffice fixture never starts
    # without LibreOffice.
    if item.get_closest_marker("libreoffice") is not None:
        require_libreoffice()


# ------------------------------------------------------------------------------------------------ rounds


@pytest.fixture(scope="session")
def bac_giang_round() -> Round:
    """The shipped district-level round (Bắc Giang 2024, 10 districts, 9 of them owe forms)."""
    return load_round(BAC_GIANG_ROUND)


@pytest.fixture(scope="session")
def commune_round() -> Round:
    """The shipped commune-level round (Bắc Ninh 2026, 99 communes)."""
    return load_round(COMMUNE_ROUND)


@pytest.fixture(scope="session")
def templates_dir(bac_giang_round: Round, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The district round's templates, generated once per test session. Tests must not modify them."""
    out = tmp_path_factory.mktemp("templates-bac-giang")
    write_templates(bac_giang_round, out)
    return out


@pytest.fixture(scope="session")
def commune_templates_dir(commune_round: Round, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The commune round's templates (99 files), generated once per test session."""
    out = tmp_path_factory.mktemp("templates-bac-ninh")
    write_templates(commune_round, out)
    return out
