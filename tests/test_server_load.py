"""Issue 5 – the server under load: 50 uploads at once from 10 communes, over real HTTP (uvicorn on 127.0.0.1).

Each of 10 communes of the commune-level round sends 5 different returns, all released together; 8 communes
send clean returns, 2 send returns with more women than the total. Afterwards no file may be lost (50 files in
the inbox, 50 entries in ``received.yaml``, 50 uploads logged), the registry must be intact (SQLite
``integrity_check``, foreign keys) and every commune's status right: ok, invalid, or missing for the 89 others.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openpyxl
import pytest
import yaml
from support.returns import edits_for, type_into

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from toolkit.forms import get_form  # noqa: E402
from toolkit.registry import Registry, status  # noqa: E402
from toolkit.render import write_template  # noqa: E402
from toolkit.round import Round  # noqa: E402
from toolkit.server.app import create_app  # noqa: E402
from toolkit.server.tokens import TokenStore  # noqa: E402

UNITS = 10
PER_UNIT = 5
INVALID = 2  # the last two communes send returns with errors
NOW = dt.datetime(2026, 4, 20, 9, 0, 0)  # before the round's deadline (24/04/2026)
TIME_LIMIT = 90  # seconds for the 50 uploads
STORED = re.compile(r"^\d{5}_20260420-090000_[0-9a-f]{8}(-\d+)?\.xlsx$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def returns_for(rnd: Round, code: str, folder: Path, broken: bool) -> list[bytes]:
    """Five different returns of one commune (the same figures, saved with a different document title)."""
    unit = rnd.unit(code)
    path = write_template(rnd, unit, folder / f"{code}.xlsx")
    wb = openpyxl.load_workbook(path)
    periods = tuple(p.id for p in rnd.periods)
    for form_id in unit.forms:
        type_into(wb, edits_for(get_form(form_id), rnd, unit, seed=int(code)))
    if broken:  # nữ > tổng số
        layout = get_form("PL03").layout(periods)
        ws = wb[get_form("PL03").sheet]
        total = ws[layout.cell("BG16", "total", periods[0])].value
        ws[layout.cell("BG16", "female", periods[0])] = total + 100
    out = []
    for i in range(PER_UNIT):
        wb.properties.title = f"Báo cáo {unit.name} – lần {i + 1}"
        buf = io.BytesIO()
        wb.save(buf)
        out.append(buf.getvalue())
    assert len(set(out)) == PER_UNIT
    return out


@pytest.fixture(scope="module")
def live(commune_round: Round, tmp_path_factory: pytest.TempPathFactory):
    rnd = commune_round
    root = tmp_path_factory.mktemp("server-load")
    units = [u.code for u in rnd.units_owing()[:UNITS]]
    files = {code: returns_for(rnd, code, root, i >= UNITS - INVALID) for i, code in enumerate(units)}
    inbox, registry = root / "inbox", root / "inbox.baocao.sqlite"
    tokens = {t.unit.code: t.token for t in TokenStore(registry).issue(rnd, units)}
    app = create_app(rnd, inbox, registry, "mat-khau", now=lambda: NOW)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield {
            "rnd": rnd,
            "base": f"http://127.0.0.1:{port}",
            "units": units,
            "files": files,
            "tokens": tokens,
            "inbox": inbox,
            "registry": registry,
            "app": app,
        }
    finally:
        server.should_exit = True
        thread.join(15)


def test_fifty_uploads_at_once(live) -> None:
    base, tokens = live["base"], live["tokens"]
    limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
    with httpx.Client(base_url=base, timeout=120, limits=limits) as client:
        csrf = {}
        for code, token in tokens.items():
            page = client.get(f"/u/{token}")
            assert page.status_code == 200
            csrf[code] = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

        jobs = [(code, i, content) for code in live["units"] for i, content in enumerate(live["files"][code])]
        start = threading.Barrier(len(jobs))

        def send(job):
            code, i, content = job
            start.wait()
            t = time.perf_counter()
            r = client.post(
                f"/u/{tokens[code]}/upload",
                data={"csrf": csrf[code]},
                files={"file": (f"bao-cao-{code}-{i}.xlsx", content, "application/octet-stream")},
            )
            return code, r.status_code, r.headers.get("location", ""), time.perf_counter() - t

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            results = list(pool.map(send, jobs))
        elapsed = time.perf_counter() - began
        assert elapsed < TIME_LIMIT, f"50 uploads took {elapsed:.1f} s"
        assert [s for _, s, _, _ in results] == [303] * len(jobs), results
        assert all(f"/u/{tokens[c]}?lan=" in loc for c, _, loc, _ in results)

        # every commune's page shows its own five uploads, the right verdict on the latest
        for n, code in enumerate(live["units"]):
            page = client.get(f"/u/{tokens[code]}").text
            assert page.count("?lan=") == PER_UNIT
            verdict = "Tệp có" if n >= UNITS - INVALID else "Tệp hợp lệ, đã được nhận đúng hạn"
            assert verdict in page

    inbox: Path = live["inbox"]
    stored = sorted(p.name for p in inbox.iterdir() if p.is_file() and p.name != "received.yaml")
    assert len(stored) == UNITS * PER_UNIT
    assert all(STORED.match(n) for n in stored)
    manifest = yaml.safe_load((inbox / "received.yaml").read_text(encoding="utf-8"))
    assert sorted(manifest) == stored and set(manifest.values()) == {NOW}
    assert not [p for p in inbox.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    assert not any((live["app"].state.baocao.data_dir / "staging").iterdir())

    conn = sqlite3.connect(live["registry"])
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        outcomes = conn.execute("SELECT outcome, COUNT(*) FROM server_uploads GROUP BY outcome").fetchall()
        assert outcomes == [("accepted", UNITS * PER_UNIT)]
        files = conn.execute("SELECT COUNT(*), COUNT(DISTINCT sha256) FROM files WHERE present = 1").fetchone()
        assert files == (UNITS * PER_UNIT, UNITS * PER_UNIT)
    finally:
        conn.close()

    rnd = live["rnd"]
    with Registry.open(live["registry"], readonly=True) as reg:
        rows = {r.unit_code: r for r in status(rnd, reg)}
    for n, code in enumerate(live["units"]):
        row = rows[code]
        assert row.state == ("invalid" if n >= UNITS - INVALID else "ok"), (code, row.state)
        assert row.files_seen == PER_UNIT
        assert Path(row.file).name.startswith(f"{code}_")
    others = [r for c, r in rows.items() if c not in tokens]
    assert others and all(r.state == "missing" for r in others)

    # the province's consolidation over the 50 files (the library reads that many in worker processes)
    with httpx.Client(base_url=base, timeout=120) as client:
        nonce = re.search(r'name="csrf" value="([^"]+)"', client.get("/tinh").text).group(1)
        assert client.post("/tinh/dang-nhap", data={"csrf": nonce, "password": "mat-khau"}).status_code == 303
        board = client.get("/tinh").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', board).group(1)
        summary = client.post("/tinh/tong-hop", data={"csrf": csrf})
    assert summary.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(summary.content), read_only=True)
    assert "Tình hình nộp" in wb.sheetnames
