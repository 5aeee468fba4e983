"""Issue 5 – the web server (``baocao serve``) and the unit links (``baocao links``).

Each test starts its own app on a fresh inbox and registry (FastAPI's TestClient, no network). The returns are
the district round's templates filled with openpyxl from ``support.returns`` (clean by construction); one has
more women than its total; the hostile files are those of the validation issue (empty, a PDF renamed .xlsx, a
zip whose directory declares gigabytes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import sqlite3
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest
import yaml
from click.testing import CliRunner
from support.returns import edits_for, type_into

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from toolkit.cli import main  # noqa: E402
from toolkit.forms import get_form  # noqa: E402
from toolkit.registry import Registry, status  # noqa: E402
from toolkit.render import write_template  # noqa: E402
from toolkit.resources import examples_dir  # noqa: E402
from toolkit.round import Round  # noqa: E402
from toolkit.server import RedactTokens  # noqa: E402
from toolkit.server.app import FailureLimiter, create_app  # noqa: E402
from toolkit.server.tokens import TokenStore, hash_token  # noqa: E402
from toolkit.server.uploads import OTHER_UNIT_DIR  # noqa: E402

ROUND_PATH = examples_dir() / "bac-giang-2024" / "round.yaml"
PASSWORD = "mat-khau-cua-so-2024"
ON_TIME = dt.datetime(2024, 5, 7, 10, 0, 0)
LATE = dt.datetime(2024, 5, 13, 8, 30, 0)
STORED_NAME = re.compile(r"^(\d{3,5})_(\d{8}-\d{6})_([0-9a-f]{8})(-\d+)?\.(xlsx|xlsm|xls|ods)$")
BAD_UNIT = "215"
BAD_CELL_KEY = ("PL03", "BG16", "female", 0)  # nữ > tổng số


# ------------------------------------------------------------------------------------------ returns


def cell_of(rnd: Round, key: tuple[str, str, str, int]) -> str:
    form_id, indicator, fld, pos = key
    periods = tuple(p.id for p in rnd.periods)
    return get_form(form_id).layout(periods).cell(indicator, fld, periods[pos])


def filled_return(rnd: Round, code: str, path: Path, overrides: dict | None = None) -> Path:
    unit = rnd.unit(code)
    write_template(rnd, unit, path)
    wb = openpyxl.load_workbook(path)
    for form_id in unit.forms:
        type_into(wb, edits_for(get_form(form_id), rnd, unit, seed=int(code)))
    for key, value in (overrides or {}).items():
        wb[get_form(key[0]).sheet][cell_of(rnd, key)] = value
    wb.save(path)
    return path


def declare_huge_sizes(src: bytes, member: str, size: int = 0xFFFF0000) -> bytes:
    """A zip bomb by its directory: ``member`` declares ~4 GB uncompressed while the file stays a few kB."""
    data = bytearray(src)
    name = member.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]) == name:
            struct.pack_into("<I", data, at + 24, size)
            local = struct.unpack_from("<I", data, at + 42)[0]
            struct.pack_into("<I", data, local + 22, size)
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


@dataclass
class Returns:
    clean: dict[str, bytes]
    bad: bytes
    bad_cell: str
    bad_total: float


@pytest.fixture(scope="module")
def returns(bac_giang_round: Round, tmp_path_factory: pytest.TempPathFactory) -> Returns:
    rnd = bac_giang_round
    folder = tmp_path_factory.mktemp("server-returns")
    clean = {code: filled_return(rnd, code, folder / f"{code}.xlsx").read_bytes() for code in ("213", "215", "216")}
    total_key = BAD_CELL_KEY[:2] + ("total", BAD_CELL_KEY[3])
    wb = openpyxl.load_workbook(io.BytesIO(clean[BAD_UNIT]))
    total = wb[get_form("PL03").sheet][cell_of(rnd, total_key)].value
    bad = filled_return(rnd, BAD_UNIT, folder / "bad.xlsx", {BAD_CELL_KEY: total + 250}).read_bytes()
    return Returns(clean, bad, cell_of(rnd, BAD_CELL_KEY), total)


# ------------------------------------------------------------------------------------------ the server


@dataclass
class Server:
    rnd: Round
    client: TestClient
    app: object
    inbox: Path
    registry: Path
    tokens: dict[str, str]
    clock: list[dt.datetime] = field(default_factory=lambda: [ON_TIME])

    def page(self, code: str):
        return self.client.get(f"/u/{self.tokens[code]}")

    def csrf(self, code: str) -> str:
        m = re.search(r'name="csrf" value="([^"]+)"', self.page(code).text)
        assert m, "the unit page has no CSRF field"
        return m.group(1)

    def upload(self, code: str, content: bytes, name: str = "bao-cao.xlsx", csrf: str | None = None, **kw):
        data = {"csrf": self.csrf(code) if csrf is None else csrf}
        return self.client.post(
            f"/u/{self.tokens[code]}/upload",
            data=data,
            files={"file": (name, content, "application/octet-stream")},
            **kw,
        )

    def stored(self) -> list[Path]:
        return sorted(p for p in self.inbox.iterdir() if p.is_file() and p.name != "received.yaml")

    def received(self, folder: Path | None = None) -> dict:
        path = (folder or self.inbox) / "received.yaml"
        return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}

    def state_of(self, code: str) -> str:
        with Registry.open(self.registry, readonly=True) as reg:
            return next(r.state for r in status(self.rnd, reg) if r.unit_code == code)

    def login(self) -> str:
        page = self.client.get("/tinh")
        nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = self.client.post("/tinh/dang-nhap", data={"csrf": nonce, "password": PASSWORD})
        assert r.status_code == 200 and "Tình hình nộp báo cáo" in r.text
        return re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)


def make_server(rnd: Round, tmp_path: Path, **kwargs) -> Server:
    inbox = tmp_path / "inbox"
    registry = tmp_path / "inbox.baocao.sqlite"
    issued = TokenStore(registry).issue(rnd)
    clock = [ON_TIME]
    app = create_app(rnd, inbox, registry, PASSWORD, now=lambda: clock[0], **kwargs)
    client = TestClient(app, base_url="http://testserver")
    return Server(rnd, client, app, inbox, registry, {t.unit.code: t.token for t in issued}, clock)


@pytest.fixture
def server(bac_giang_round: Round, tmp_path: Path) -> Server:
    return make_server(bac_giang_round, tmp_path)


def upload_id(response) -> int:
    return int(re.search(r"[?&]lan=(\d+)", str(response.url)).group(1))


# ------------------------------------------------------------------------------------------ unit pages


def test_unit_link_opens_its_own_page_only(server: Server) -> None:
    r = server.page("213")
    assert r.status_code == 200
    assert "Thành phố Bắc Giang" in r.text and "10/05/2024" in r.text
    assert "Phụ lục 01" in r.text and "Phụ lục 03" in r.text
    assert '<input type="file" name="file"' in r.text and "Kiểm tra và nộp" in r.text
    assert "Huyện Yên Thế" not in r.text  # no other unit is named
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert "Huyện Yên Thế" in server.page("215").text


def test_clean_return_is_valid_kept_logged_and_annotated(server: Server, returns: Returns) -> None:
    r = server.upload("213", returns.clean["213"], name="Báo cáo TP Bắc Giang.xlsx")
    assert r.status_code == 200, r.text
    assert "Tệp hợp lệ, đã được nhận đúng hạn" in r.text
    assert "Tải bản có chú thích" in r.text
    assert "Báo cáo TP Bắc Giang.xlsx" in r.text  # the client's name is shown, never used
    (stored,) = server.stored()
    m = STORED_NAME.match(stored.name)
    assert m and m.group(1) == "213" and m.group(2) == "20240507-100000" and m.group(5) == "xlsx"
    assert stored.read_bytes() == returns.clean["213"]
    assert server.received() == {stored.name: ON_TIME}
    assert server.state_of("213") == "ok"
    assert server.state_of("215") == "missing"

    dl = server.client.get(f"/u/{server.tokens['213']}/annotated/{upload_id(r)}")
    assert dl.status_code == 200
    assert dl.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in dl.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(dl.content))
    assert wb.sheetnames[0] == "Kết quả kiểm tra"
    assert "Tệp hợp lệ" in wb["Kết quả kiểm tra"]["A2"].value
    # the annotated copy lives in the server's folder beside the registry, never in the inbox
    assert not any("kiem-tra" in p.name for p in server.inbox.rglob("*"))


def test_women_above_total_is_shown_and_coloured(server: Server, returns: Returns) -> None:
    r = server.upload(BAD_UNIT, returns.bad)
    assert r.status_code == 200
    assert "Tệp có" in r.text and "chưa được tổng hợp" in r.text
    assert re.search(r"Số nữ \([\d.,]+\) lớn hơn tổng số \([\d.,]+\)", r.text)
    assert f"Ô {returns.bad_cell}" in r.text
    assert re.search(r'class="finding loi"', r.text)
    assert server.state_of(BAD_UNIT) == "invalid"

    dl = server.client.get(f"/u/{server.tokens[BAD_UNIT]}/annotated/{upload_id(r)}")
    assert dl.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(dl.content))
    cell = wb[get_form("PL03").sheet][returns.bad_cell]
    assert cell.fill.fgColor.rgb.endswith("FFC7CE")
    assert "Số nữ" in cell.comment.text


def test_a_link_cannot_reach_another_units_uploads(server: Server, returns: Returns) -> None:
    first = server.upload("213", returns.clean["213"], name="rieng-cua-bac-giang.xlsx")
    own = upload_id(first)
    other_page = server.page("215").text
    assert "rieng-cua-bac-giang.xlsx" not in other_page and "Đơn vị chưa gửi tệp nào" in other_page
    assert server.client.get(f"/u/{server.tokens['215']}?lan={own}").text.count("rieng-cua-bac-giang") == 0
    assert server.client.get(f"/u/{server.tokens['215']}/annotated/{own}").status_code == 404
    assert server.client.get(f"/u/{server.tokens['213']}/annotated/{own}").status_code == 200
    # a CSRF token is bound to its unit's link
    r = server.upload("215", returns.clean["215"], csrf=server.csrf("213"))
    assert r.status_code == 403
    assert len(server.stored()) == 1


def test_a_return_of_another_unit_is_kept_apart_and_does_not_count(server: Server, returns: Returns) -> None:
    server.upload("216", returns.clean["216"])
    assert server.state_of("216") == "ok"
    r = server.upload("213", returns.clean["216"])  # Tân Yên's return sent through Bắc Giang's link
    assert r.status_code == 200
    assert "không phải biểu mẫu của Thành phố Bắc Giang" in r.text
    assert "Huyện Tân Yên (mã 216)" in r.text
    kept = list((server.inbox / OTHER_UNIT_DIR).iterdir())
    assert any(STORED_NAME.match(p.name) and p.name.startswith("213_") for p in kept)
    assert server.state_of("216") == "ok"  # the other unit's own return still counts
    assert server.state_of("213") == "missing"


def test_wrong_token_is_404_then_slowed_then_refused(bac_giang_round: Round, tmp_path: Path) -> None:
    limiter = FailureLimiter(free=2, block_after=5, base_delay=0.3, max_delay=0.3)
    srv = make_server(bac_giang_round, tmp_path, limiter=limiter)
    times = []
    for i in range(4):
        t = time.perf_counter()
        r = srv.client.get(f"/u/khong-dung-{i:02d}-aaaaaaaaaaaaaaaaaaaa")
        times.append(time.perf_counter() - t)
        assert r.status_code == 404
        assert "Đường dẫn không hợp lệ" in r.text
    assert times[2] >= 0.25 and times[3] >= 0.25  # failures past the free ones wait
    assert srv.client.get("/u/x").status_code == 404  # the fifth
    r = srv.client.get(f"/u/{srv.tokens['213']}")
    assert r.status_code == 429 and "Tạm khóa" in r.text and int(r.headers["retry-after"]) > 0
    assert srv.client.get("/healthz").text == "ok"


def test_wrong_passwords_are_slowed_then_refused(bac_giang_round: Round, tmp_path: Path) -> None:
    srv = make_server(bac_giang_round, tmp_path, limiter=FailureLimiter(free=1, block_after=3, base_delay=0.01))
    nonce = re.search(r'name="csrf" value="([^"]+)"', srv.client.get("/tinh").text).group(1)
    for _ in range(3):
        r = srv.client.post("/tinh/dang-nhap", data={"csrf": nonce, "password": "doan-mo"})
        assert r.status_code == 401
    r = srv.client.post("/tinh/dang-nhap", data={"csrf": nonce, "password": PASSWORD})
    assert r.status_code == 429 and "sai mật khẩu quá nhiều lần" in r.text
    assert srv.page("213").status_code == 200  # unit links are counted apart


def test_the_core_package_does_not_need_the_server_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys, toolkit.server, toolkit.server.tokens, toolkit.cli; "
        "assert not any(m in sys.modules for m in ('fastapi', 'uvicorn', 'starlette', 'jinja2')), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_failure_limiter_memory_is_bounded() -> None:
    clock = [0.0]
    limiter = FailureLimiter(free=1, block_after=3, base_delay=0, max_clients=50, window=60, clock=lambda: clock[0])

    async def hammer() -> None:
        for i in range(1000):
            await limiter.failed(f"u:10.0.{i // 250}.{i % 250}")
        for _ in range(3):
            await limiter.failed("u:attacker")

    asyncio.run(hammer())
    assert len(limiter) == 50
    assert limiter.retry_after("u:attacker") == 61
    clock[0] = 61.5
    assert limiter.retry_after("u:attacker") is None


def test_csrf_missing_or_wrong_is_403_and_nothing_stored(server: Server, returns: Returns) -> None:
    url = f"/u/{server.tokens['213']}/upload"
    files = {"file": ("a.xlsx", returns.clean["213"], "application/octet-stream")}
    assert server.client.post(url, files=files).status_code == 403
    assert server.client.post(url, files=files, data={"csrf": "0" * 64}).status_code == 403
    cross = server.upload("213", returns.clean["213"], headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert server.stored() == []
    # province forms too
    assert server.client.post("/tinh/dang-nhap", data={"password": PASSWORD}).status_code == 403
    server.login()
    assert server.client.post("/tinh/tong-hop", data={}).status_code == 403


def test_oversize_upload_is_refused_while_streaming(bac_giang_round: Round, tmp_path: Path, returns: Returns) -> None:
    srv = make_server(bac_giang_round, tmp_path, max_upload_bytes=50_000)
    r = srv.upload("213", b"\0" * 200_000)
    assert r.status_code == 413
    assert "quá lớn" in r.text and 'class="finding loi"' in r.text
    assert srv.stored() == []
    assert not any((srv.app.state.baocao.data_dir / "staging").iterdir())
    assert srv.upload("213", returns.clean["213"]).status_code == 200  # and the server goes on


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("empty", "rỗng (0 byte)"), ("pdf", "tệp PDF"), ("zip-bomb", "bom giải nén")],
)
def test_hostile_files_are_refused_and_the_server_keeps_running(
    server: Server, returns: Returns, kind: str, expected: str
) -> None:
    content = {
        "empty": b"",
        "pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n" * 20,
        "zip-bomb": declare_huge_sizes(returns.clean["213"], "xl/worksheets/sheet1.xml"),
    }[kind]
    r = server.upload("213", content, name="bao-cao.xlsx")
    assert r.status_code == 400
    assert "Tệp không được nhận" in r.text and expected in r.text
    assert server.stored() == [] and server.received() == {}
    page = server.page("213").text
    assert "Bị từ chối" in page  # the refusal is in the unit's history
    assert server.client.get("/healthz").text == "ok"
    ok = server.upload("213", returns.clean["213"])
    assert ok.status_code == 200 and "Tệp hợp lệ" in ok.text


def test_after_the_deadline_the_file_is_taken_and_marked_late(server: Server, returns: Returns) -> None:
    server.clock[0] = LATE
    page = server.page("213").text
    assert "Đã quá hạn nộp" in page
    r = server.upload("213", returns.clean["213"])
    assert r.status_code == 200
    assert "sau hạn nộp nên được ghi nhận là nộp muộn" in r.text
    assert "Nộp muộn" in r.text
    (stored,) = server.stored()
    assert stored.name.startswith("213_20240513-083000_")
    assert server.received()[stored.name] == LATE
    assert server.state_of("213") == "late"


def test_client_file_names_are_never_paths(server: Server, returns: Returns, tmp_path: Path) -> None:
    r = server.upload("213", returns.clean["213"], name="../../etc/passwd.xlsx")
    assert r.status_code == 200
    r2 = server.upload("213", returns.clean["213"], name="bao-cao.ods")  # the extension comes from the content
    assert r2.status_code == 200
    names = [p.name for p in server.stored()]
    assert len(names) == 2 and all(STORED_NAME.match(n) and n.endswith(".xlsx") for n in names)
    assert names[0] != names[1]  # same content, same second: still two files
    assert not [p for p in tmp_path.rglob("*passwd*")]
    assert set(server.received()) == set(names)


def test_province_pages_require_the_password(server: Server, returns: Returns) -> None:
    server.upload("213", returns.clean["213"])
    server.upload(BAD_UNIT, returns.bad)
    page = server.client.get("/tinh")
    assert page.status_code == 200 and 'type="password"' in page.text
    assert "Thành phố Bắc Giang" not in page.text
    assert server.client.post("/tinh/tong-hop", data={"csrf": "x"}).status_code == 401
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    wrong = server.client.post("/tinh/dang-nhap", data={"csrf": nonce, "password": "doan-mo"})
    assert wrong.status_code == 401 and "Mật khẩu không đúng" in wrong.text
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie

    server.login()
    board = server.client.get("/tinh")
    assert "Tình hình nộp báo cáo" in board.text
    assert "Thành phố Bắc Giang" in board.text and "Đã nộp đúng hạn, hợp lệ" in board.text
    assert "Có lỗi, chưa được tổng hợp" in board.text and "Chưa nộp" in board.text
    assert re.search(r"Số nữ \([\d.,]+\) lớn hơn tổng số", board.text)  # the unit's latest findings


def test_consolidation_downloads_the_summary(server: Server, returns: Returns) -> None:
    server.upload("213", returns.clean["213"])
    server.upload("216", returns.clean["216"])
    server.upload(BAD_UNIT, returns.bad)
    csrf = server.login()
    r = server.client.post("/tinh/tong-hop", data={"csrf": csrf})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in r.headers["content-disposition"] and ".xlsx" in r.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    for sheet in ("Tình hình nộp", "Theo đơn vị", "Lỗi và cảnh báo", "Dữ liệu"):
        assert sheet in wb.sheetnames
    status_values = [c for row in wb["Tình hình nộp"].iter_rows(values_only=True) for c in row if c]
    assert any("Bắc Giang" in str(v) for v in status_values)
    # after logging out the board is closed again
    server.client.post("/tinh/dang-xuat", data={"csrf": csrf})
    assert 'type="password"' in server.client.get("/tinh").text


# ------------------------------------------------------------------------------------------ links


def test_links_prints_one_link_per_unit_and_stores_only_hashes(tmp_path: Path, bac_giang_round: Round) -> None:
    rnd = bac_giang_round
    inbox = tmp_path / "inbox"
    args = ["links", "--round", str(ROUND_PATH), "--inbox", str(inbox), "--base-url", "https://baocao.example.vn/"]
    runner = CliRunner()
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    lines = [line.split("\t") for line in first.stdout.splitlines()]
    assert [code for code, _, _ in lines] == [u.code for u in rnd.units_owing()]
    assert all(url.startswith("https://baocao.example.vn/u/") for _, _, url in lines)
    tokens = {code: url.rsplit("/", 1)[1] for code, _, url in lines}
    registry = tmp_path / "inbox.baocao.sqlite"
    raw = registry.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("inbox.baocao.sqlite-*"))
    assert not any(t.encode() in raw for t in tokens.values())
    conn = sqlite3.connect(registry)
    hashes = {h for (h,) in conn.execute("SELECT token_sha256 FROM server_tokens")}
    conn.close()
    assert {hash_token(t) for t in tokens.values()} == hashes

    store = TokenStore(registry)
    again = runner.invoke(main, args)
    assert again.exit_code == 0 and "vẫn dùng được" in again.stderr
    assert store.unit_for(rnd, tokens["213"]).code == "213"  # printing again keeps the old links

    revoked = runner.invoke(main, [*args, "--revoke", "213"])
    assert revoked.exit_code == 0 and revoked.stdout == ""
    assert store.unit_for(rnd, tokens["213"]) is None
    assert store.unit_for(rnd, tokens["215"]).code == "215"

    rotated = runner.invoke(main, [*args, "--rotate"])
    assert rotated.exit_code == 0
    assert store.unit_for(rnd, tokens["215"]) is None
    new = {line.split("\t")[0]: line.split("\t")[2].rsplit("/", 1)[1] for line in rotated.stdout.splitlines()}
    assert store.unit_for(rnd, new["215"]).code == "215"

    bad = runner.invoke(main, [*args, "--revoke", "999"])
    assert bad.exit_code == 2 and "999" in bad.stderr


def test_serve_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import toolkit.server

    monkeypatch.setattr(toolkit.server, "missing_modules", lambda: ["fastapi", "uvicorn"])
    r = CliRunner().invoke(main, ["serve", "--inbox", str(tmp_path / "inbox")])
    assert r.exit_code == 2
    assert 'pip install "baocao[server]"' in r.stderr


def test_access_log_never_holds_a_token() -> None:
    import logging

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/u/Abc_DEF-123456789012345678/annotated/3", "1.1", 200), None,
    )  # fmt: skip
    RedactTokens().filter(record)
    assert "Abc_DEF" not in record.getMessage() and "/u/…/annotated/3" in record.getMessage()
