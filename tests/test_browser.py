"""Issue 5 in a real browser: a unit opens its link, uploads a return saved by LibreOffice, reads the finding in
Vietnamese on the page and downloads the annotated copy.

The app runs under uvicorn on 127.0.0.1 (a free port, in a thread); Debian's Chromium (``/usr/bin/chromium``,
``apt-get install chromium``) is driven headless through Playwright's sync API. Playwright's own browser downloads
are never used. Without Chromium, Playwright or LibreOffice the test is skipped on a developer machine and fails
when ``CI=true``: CI must never pass by silently skipping it.

Screenshots of the page (desktop, and a phone 390 px wide) are written to the test's temporary folder:
``pytest --basetemp=DIR tests/test_browser.py`` keeps them in ``DIR/test_upload_in_a_real_browser0/``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import pytest
from support import libreoffice as lo
from support.returns import edits_for

from toolkit.forms import get_form
from toolkit.render import write_template
from toolkit.resources import examples_dir
from toolkit.round import Round, load_round
from toolkit.rules import rules_for
from toolkit.server import missing_modules

# The ``browser`` marker is registered in pyproject.toml ([tool.pytest.ini_options] markers): a
# ``pytest_configure`` hook in a test module is never called by pytest (only conftest files and plugins get it).
# ``libreoffice`` puts the test behind conftest's LibreOffice gate (skip locally, fail with CI=true).
pytestmark = [pytest.mark.browser, pytest.mark.libreoffice]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROUND_PATH = examples_dir() / "bac-giang-2024" / "round.yaml"
UNIT = "216"  # Huyện Tân Yên: PL01 + PL03
SEED = 2024 + 216
ON_TIME = dt.datetime(2024, 5, 7, 10, 0, 0)  # before the round's deadline (10/05/2024)
PASSWORD = "mat-khau-cua-so-2024"
ERROR_FILL = "00FFC7CE"  # the annotated copy's red (toolkit.annotate.FILLS["error"])
PHONE = {"width": 390, "height": 844}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_browser() -> None:
    """Skip (locally) or fail (CI=true) unless Playwright, Debian's Chromium and the server extras are installed."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append('the Python package playwright (pip install -e ".[test]")')
    missing += [f'the Python package {m} (pip install -e ".[test]")' for m in missing_modules()]
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    if not missing:
        return
    why = "the browser test needs " + "; ".join(missing)
    if in_ci():
        pytest.fail(f"CI=true but {why}; the browser test must run in CI, not be skipped.", pytrace=False)
    pytest.skip(why)


def vn(number: float) -> str:
    """A whole number as Vietnamese write it: 4.151."""
    return f"{int(number):,}".replace(",", ".")


# ------------------------------------------------------------------------------------------ the return


def libreoffice_return(rnd: Round, out: Path) -> tuple[Path, dict]:
    """The unit's template filled and saved by LibreOffice, with one mistake: nữ > tổng số of BG16 (Năm 2023).

    Returns the file and what the finding must say (cells, the full message computed from the rule in schemas/).
    """
    unit = rnd.unit(UNIT)
    periods = tuple(p.id for p in rnd.periods)
    template = write_template(rnd, unit, out / "template.xlsx")
    edits: dict[tuple[str, str], dict] = {}
    for form_id in unit.forms:
        for e in edits_for(get_form(form_id), rnd, unit, SEED):
            edits[(e["sheet"], e["cell"])] = e
    form = get_form("PL03")
    layout = form.layout(periods)
    year = periods[0]
    total_cell, female_cell = layout.cell("BG16", "total", year), layout.cell("BG16", "female", year)
    total = edits[(form.sheet, total_cell)]["value"]
    female = total + 120
    edits[(form.sheet, female_cell)] = {"sheet": form.sheet, "cell": female_cell, "value": female}
    path = out / f"{unit.file_stem}.xlsx"
    lo.run([{"input": str(template), "output": str(path), "format": "xlsx", "edits": list(edits.values())}])

    (rule,) = [
        r
        for r in rules_for(form.id, periods).cross
        if r.rule == "female_le_total" and r.anchor == "BG16" and r.period == year
    ]
    label = form.indicator("BG16").label
    period_label = {p.id: p.label for p in rnd.periods}[year]
    text = rule.message.format(left=vn(female), right=vn(total), label=label, right_label=label, period=period_label)
    expected = {
        "sheet": form.sheet,
        "cells": (female_cell, total_cell),
        "message": f"{text} (ô {female_cell}, {total_cell}, trang {form.sheet})",
        "phrase": "Số nữ không được vượt tổng số",
    }
    return path, expected


# ------------------------------------------------------------------------------------------ the server


@contextmanager
def serving(app) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 and a free port (in a thread); yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", server_header=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


# ------------------------------------------------------------------------------------------ the test


def test_upload_in_a_real_browser(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    from toolkit.server.app import create_app
    from toolkit.server.tokens import TokenStore

    rnd = load_round(ROUND_PATH)
    unit = rnd.unit(UNIT)
    filled, expected = libreoffice_return(rnd, tmp_path)
    inbox, registry = tmp_path / "inbox", tmp_path / "so.sqlite"
    inbox.mkdir()
    (issued,) = TokenStore(registry).issue(rnd, [UNIT], now=ON_TIME)
    app = create_app(rnd, inbox, registry, PASSWORD, now=lambda: ON_TIME)

    with serving(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            link = issued.url(base)
            desktop = browser.new_context(
                accept_downloads=True, locale="vi-VN", viewport={"width": 1280, "height": 900}
            )
            page = desktop.new_page()
            page.goto(link)
            expect(page.get_by_role("heading", name=unit.name)).to_be_visible()
            page.locator('input[type="file"][name="file"]').set_input_files(filled)
            page.get_by_role("button", name="Kiểm tra và nộp").click()
            page.wait_for_url(f"{link}?lan=*")

            # the finding, in Vietnamese, names the cells and says what is wrong
            findings = page.locator(".finding")
            expect(findings).to_have_count(1)
            finding = findings.first
            female_cell, total_cell = expected["cells"]
            expect(finding.locator(".o")).to_have_text(f"Ô {female_cell} · trang {expected['sheet']}")
            expect(finding.locator(".noi-dung")).to_have_text(expected["message"])
            expect(finding).to_contain_text(expected["phrase"])
            expect(finding.locator(".muc")).to_have_text("Lỗi", ignore_case=True)
            expect(page.locator(".thong-bao.loi")).to_contain_text("Tệp có 1 lỗi")
            assert not list(inbox.glob(".tmp-*")), "a staged upload was left in the inbox"
            assert len([f for f in inbox.iterdir() if f.suffix == ".xlsx"]) == 1, sorted(inbox.iterdir())
            page.screenshot(path=tmp_path / "desktop.png", full_page=True)

            # the annotated copy, downloaded through the browser
            with page.expect_download() as info:
                page.get_by_role("link", name="Tải bản có chú thích").click()
            download = info.value
            assert download.failure() is None
            assert download.suggested_filename.endswith(".xlsx"), download.suggested_filename
            annotated = tmp_path / "annotated.xlsx"
            download.save_as(annotated)
            wb = openpyxl.load_workbook(annotated)
            ws = wb[expected["sheet"]]
            for address in expected["cells"]:
                cell = ws[address]
                assert cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb == ERROR_FILL, (address, cell.fill)
                assert cell.comment is not None, address
                assert expected["message"] in cell.comment.text, cell.comment.text
                assert cell.comment.text.startswith("Lỗi"), cell.comment.text
            desktop.close()

            # the same page on a phone: nothing wider than the screen, the finding readable without scrolling sideways
            phone = browser.new_context(
                locale="vi-VN", viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
            )
            page = phone.new_page()
            page.goto(link)
            finding = page.locator(".finding").first
            expect(finding.locator(".noi-dung")).to_have_text(expected["message"])
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            for element in (finding, page.get_by_role("button", name="Kiểm tra và nộp")):
                box = element.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
            page.screenshot(path=tmp_path / "phone.png", full_page=True)
            finding.scroll_into_view_if_needed()
            page.screenshot(path=tmp_path / "phone-finding.png")
            phone.close()
        finally:
            browser.close()
