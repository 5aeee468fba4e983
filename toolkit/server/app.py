"""The web server: a page per unit behind a secret link, and the province's page behind a password.

Routes (all pages in Vietnamese, plain HTML forms, no JavaScript, no external resource):

- ``GET  /u/{token}`` – the unit's page: deadline, forms owed, upload form, its uploads and latest findings;
- ``POST /u/{token}/upload`` – multipart upload (field ``file``, CSRF field ``csrf``), capped while streaming;
- ``GET  /u/{token}/annotated/{upload_id}`` – the annotated copy of one of the unit's own uploads;
- ``GET  /tinh`` – the province's login form, then its status board;
- ``POST /tinh/dang-nhap`` / ``/tinh/dang-xuat`` – log in / out; ``POST /tinh/tong-hop`` – run the consolidation and
  download the summary workbook;
- ``/xlwings/…`` – the Excel-button endpoint, when ``toolkit/server/xlwings_api.py`` is installed.

Security: only the SHA-256 of a unit's token is stored and the token alone selects the unit, so a link reaches
only its own unit's uploads, findings and annotated copies; province pages need the password given at start-up
(session cookie signed with a key drawn at start-up, HttpOnly, SameSite=Strict, Secure over HTTPS); every form
carries a CSRF token (an HMAC of the unit's token, or of the province session; the login form uses a
double-submit cookie) and cross-site POSTs are refused; uploads are capped while they stream and then checked
like any return; client file names are never used as paths; a client that keeps presenting wrong tokens or
passwords is slowed down, then refused for a while (bounded memory). Responses carry a strict
Content-Security-Policy, ``Referrer-Policy: no-referrer`` (the token is in the URL) and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from ..clock import vietnam_now
from ..findings import ERROR, Finding
from ..forms import available_forms
from ..registry import Registry, RegistryError, RegistryMissing, StatusRow, status
from ..round import Round, Unit
from ..safety import _size
from .tokens import TokenStore, hash_token, well_formed
from .uploads import OTHER_UNIT_DIR, Upload, UploadDesk, data_dir_for

log = logging.getLogger("baocao.server")

MB = 1024 * 1024
DEFAULT_MAX_UPLOAD = 10 * MB
FORM_BODY_LIMIT = 64 * 1024  # the province's forms (password, CSRF)
MAX_FIELD_BYTES = 4096  # a text field of the upload form
MAX_FIELDS = 16
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SESSION_COOKIE = "baocao_tinh"
LOGIN_COOKIE = "baocao_dang_nhap"
SESSION_TTL = 12 * 3600
TEMPLATES = Path(__file__).resolve().parent / "templates"

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
ADDIN_HEADERS = [(b"x-content-type-options", b"nosniff")]


def _default_now() -> dt.datetime:
    return vietnam_now()  # receipt times are compared with a Vietnamese deadline, whatever the server's zone


# ------------------------------------------------------------------------------------------ brute force


class FailureLimiter:
    """Counts failed tokens / passwords per client; slows the failures down, then refuses the client for a while.

    The first ``free`` failures within ``window`` seconds answer at once; each further failure waits
    ``base_delay * 2**k`` seconds (at most ``max_delay``, an ``asyncio.sleep``: the server keeps serving others);
    from ``block_after`` failures on, the client gets 429 until ``window`` seconds after its last failure. At most
    ``max_clients`` clients are remembered (the least recent is forgotten first), so memory is bounded.
    """

    def __init__(
        self,
        free: int = 5,
        block_after: int = 30,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        window: float = 900.0,
        max_clients: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.block_after = free, block_after
        self.base_delay, self.max_delay, self.window = base_delay, max_delay, window
        self.max_clients, self.clock = max_clients, clock
        self._seen: collections.OrderedDict[str, list[float]] = collections.OrderedDict()  # key -> [count, last]

    def __len__(self) -> int:
        return len(self._seen)

    def _entry(self, key: str) -> list[float] | None:
        entry = self._seen.get(key)
        if entry is not None and self.clock() - entry[1] > self.window:
            del self._seen[key]
            return None
        return entry

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it is not blocked."""
        entry = self._entry(key)
        if entry is None or entry[0] < self.block_after:
            return None
        return max(1, int(self.window - (self.clock() - entry[1])) + 1)

    def delay_for(self, count: int) -> float:
        if count <= self.free:
            return 0.0
        return min(self.base_delay * 2 ** (count - self.free - 1), self.max_delay)

    async def failed(self, key: str) -> None:
        entry = self._entry(key) or [0, 0.0]
        entry[0] += 1
        entry[1] = self.clock()
        self._seen[key] = entry
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_clients:
            self._seen.popitem(last=False)
        delay = self.delay_for(int(entry[0]))
        if delay:
            await asyncio.sleep(delay)


# ------------------------------------------------------------------------------------------ signing, sessions


class Signer:
    """HMAC-SHA256 with a key drawn at start-up: CSRF tokens and session cookies die with the process."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def sign(self, *parts: str) -> str:
        return hmac.new(self.key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()

    def unit_csrf(self, token: str) -> str:
        return self.sign("csrf-unit", hash_token(token))

    def province_csrf(self, sid: str) -> str:
        return self.sign("csrf-province", sid)


class Sessions:
    """The province's sessions: cookie ``<sid>.<expiry>.<hmac>``; the sid must also be live here (logout works)."""

    def __init__(self, signer: Signer, ttl: int = SESSION_TTL, max_sessions: int = 256) -> None:
        self.signer, self.ttl, self.max_sessions = signer, ttl, max_sessions
        self._live: collections.OrderedDict[str, int] = collections.OrderedDict()

    def create(self) -> str:
        sid = secrets.token_urlsafe(18)
        expiry = int(time.time()) + self.ttl
        self._live[sid] = expiry
        while len(self._live) > self.max_sessions:
            self._live.popitem(last=False)
        return f"{sid}.{expiry}.{self.signer.sign('session', sid, str(expiry))}"

    def check(self, cookie: str | None) -> str | None:
        if not cookie or cookie.count(".") != 2:
            return None
        sid, expiry, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self.signer.sign("session", sid, expiry)):
            return None
        if not expiry.isdigit() or int(expiry) < time.time() or self._live.get(sid) != int(expiry):
            return None
        return sid

    def end(self, sid: str) -> None:
        self._live.pop(sid, None)


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def _password_ok(given: str, expected: str) -> bool:
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8")).digest(), hashlib.sha256(expected.encode("utf-8")).digest()
    )


# ------------------------------------------------------------------------------------------ multipart, streamed


class BadForm(Exception):
    """The request body is not the upload form (message in Vietnamese)."""


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    has_file: bool = False
    client_name: str | None = None
    size: int = 0
    sha256: str = ""
    too_big: bool = False


class _FormReceiver:
    """python-multipart callbacks: the ``file`` part goes to ``dest`` (hashed, capped), text fields to memory
    (small, few); any other file part is discarded."""

    def __init__(self, dest: Path, cap: int) -> None:
        self.dest, self.cap = dest, cap
        self.form = ReceivedForm()
        self.digest = hashlib.sha256()
        self.fh = None
        self.kind: str | None = None
        self.name = ""
        self.buf = bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.hfield = bytearray()
        self.hvalue = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda d, s, e: self.hfield.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self.hvalue.extend(d[s:e]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self.headers, self.kind, self.name = {}, None, ""
        self.buf = bytearray()

    def header_end(self) -> None:
        self.headers[bytes(self.hfield).lower()] = bytes(self.hvalue)
        self.hfield, self.hvalue = bytearray(), bytearray()

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition"))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if self.name == "file" and not self.form.has_file:
                self.kind = "file"
                self.form.has_file = True
                self.form.client_name = _display_name(options[b"filename"])
                self.fh = open(self.dest, "wb")  # noqa: SIM115 - closed in part_end / close()
            else:
                self.kind = "skip"
        else:
            if len(self.form.fields) >= MAX_FIELDS:
                raise BadForm("Biểu mẫu gửi lên có quá nhiều trường.")
            self.kind = "field"

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.kind == "file":
            self.form.size += end - start
            if self.form.size > self.cap:
                self.form.too_big = True
                self.close(discard=True)
                self.kind = "skip"
                return
            chunk = data[start:end]
            self.fh.write(chunk)
            self.digest.update(chunk)
        elif self.kind == "field":
            self.buf.extend(data[start:end])
            if len(self.buf) > MAX_FIELD_BYTES:
                raise BadForm("Một trường của biểu mẫu gửi lên quá dài.")

    def part_end(self) -> None:
        if self.kind == "field":
            self.form.fields[self.name] = self.buf.decode("utf-8", "replace")
        elif self.kind == "file":
            self.close()
        self.kind = None

    def close(self, discard: bool = False) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
        if discard:
            self.dest.unlink(missing_ok=True)


def _display_name(raw: bytes) -> str:
    """The client's file name, for display only: last path component, no control characters, at most 120."""
    text = raw.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in text if ch.isprintable())[:120]


async def receive_upload(request: Request, dest: Path, cap: int) -> ReceivedForm:
    """Stream a multipart body: the ``file`` part to ``dest``, never more than ``cap`` bytes of it kept.

    Past the cap the rest of the body is read and dropped (up to a bound, so that a browser still gets the
    answer page), then the stream is left."""
    ctype, params = parse_options_header(request.headers.get("content-type"))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise BadForm("Yêu cầu không phải biểu mẫu tải tệp (multipart/form-data).")
    receiver = _FormReceiver(dest, cap)
    try:
        parser = MultipartParser(params[b"boundary"], receiver.callbacks())
    except Exception as exc:  # noqa: BLE001
        raise BadForm("Biểu mẫu gửi lên không hợp lệ.") from exc
    drain_limit = 2 * cap + MB
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > cap + MB:  # the file part alone may be up to cap; the rest of a form is small
                receiver.form.too_big = True
                receiver.close(discard=True)
                receiver.kind = "skip"
            if receiver.form.too_big:
                if total > drain_limit:
                    break
                continue
            try:
                parser.write(chunk)
            except BadForm:
                raise
            except Exception as exc:  # noqa: BLE001 - python-multipart's own errors
                raise BadForm("Biểu mẫu gửi lên không hợp lệ hoặc bị cắt giữa chừng.") from exc
        if not receiver.form.too_big:
            try:
                parser.finalize()
            except Exception as exc:  # noqa: BLE001
                raise BadForm("Biểu mẫu gửi lên không hợp lệ hoặc bị cắt giữa chừng.") from exc
    finally:
        receiver.close(discard=receiver.kind == "file" or receiver.form.too_big)
    receiver.form.sha256 = receiver.digest.hexdigest()
    return receiver.form


# ------------------------------------------------------------------------------------------ ASGI middleware


class _Guard:
    """Security headers on every response; the province's forms limited to FORM_BODY_LIMIT bytes (buffered)."""

    def __init__(self, app, upload_cap: int) -> None:
        self.app, self.upload_cap = app, upload_cap

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        path = scope.get("path", "")
        # The Excel add-in's pages (under /xlwings) run scripts inside Excel's frame: that router sets its own.
        extra = ADDIN_HEADERS if path.startswith("/xlwings") else SECURITY_HEADERS

        async def send_secure(message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [(k, v) for k, v in extra if k not in names]
            await send(message)

        declared = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                declared = int(v) if v.isdigit() else -1
        if scope.get("method") == "POST" and path.startswith("/tinh"):
            body = bytearray()
            if declared is not None and declared > FORM_BODY_LIMIT:
                await _too_large(send_secure)
                return
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body.extend(message.get("body", b""))
                more = message.get("more_body", False)
                if len(body) > FORM_BODY_LIMIT:
                    await _too_large(send_secure)
                    return
            done = False

            async def replay():
                nonlocal done
                if done:
                    return await receive()
                done = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}

            await self.app(scope, replay, send_secure)
            return
        if declared is not None and declared > 4 * self.upload_cap + MB and not path.startswith("/xlwings"):
            await _too_large(send_secure)
            return
        await self.app(scope, receive, send_secure)


async def _too_large(send) -> None:
    body = "Yêu cầu quá lớn.".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------------------------------ the app


@dataclass
class ServerState:
    """What the routes share; ``app.state.baocao`` (the Excel-button router may use it too)."""

    rnd: Round
    inbox: Path
    registry_path: Path
    data_dir: Path
    desk: UploadDesk
    tokens: TokenStore
    signer: Signer
    sessions: Sessions
    limiter: FailureLimiter
    province_password: str
    max_upload_bytes: int
    now: Callable[[], dt.datetime]
    env: jinja2.Environment
    max_parallel: int = 4
    _sem: asyncio.Semaphore | None = None
    _sem_loop: Any = None

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem, self._sem_loop = asyncio.Semaphore(self.max_parallel), loop
        return self._sem

    def unit_for_token(self, token: str) -> Unit | None:
        return self.tokens.unit_for(self.rnd, token)

    async def sync_registry(self) -> None:
        """Record the whole inbox in the registry (shared with concurrent callers); errors are logged."""
        ticket = self.desk.sync.request()
        try:
            await run_in_threadpool(self.desk.sync.wait, ticket)
        except RegistryError as exc:
            log.warning("registry not updated: %s", exc)
        except Exception:  # noqa: BLE001 - the page still answers; the next upload tries again
            log.exception("registry not updated")

    async def ensure_synced(self) -> None:
        if not self.desk.sync.attempted:
            await self.sync_registry()


def _fmt_time(value: dt.datetime | None) -> str:
    return value.strftime("%H:%M ngày %d/%m/%Y") if value else ""


def _fmt_date(value: dt.date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


def make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["time"] = _fmt_time
    env.filters["date"] = _fmt_date
    env.filters["size"] = _size
    env.globals["is_error"] = lambda f: f.severity == ERROR
    return env


def create_app(
    rnd: Round,
    inbox: str | Path,
    registry_path: str | Path,
    province_password: str,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
    now: Callable[[], dt.datetime] | None = None,
    *,
    data_dir: str | Path | None = None,
    limiter: FailureLimiter | None = None,
) -> FastAPI:
    """The FastAPI application for ``rnd``: uploads go to ``inbox``; tokens, the upload log and the submission
    registry share the SQLite file ``registry_path``; the server's own files (annotated copies, summaries) go to
    ``data_dir`` (default: beside the registry, ``<registry stem>-server``). ``now`` (naive local time) decides
    the received time of uploads, hence lateness: tests move it past the deadline."""
    if not province_password:
        raise ValueError("province_password must not be empty")
    inbox, registry_path = Path(inbox).resolve(), Path(registry_path).resolve()
    data_dir = Path(data_dir).resolve() if data_dir else data_dir_for(registry_path)
    if data_dir == inbox or inbox in data_dir.parents:
        raise ValueError("the server's data folder must not be inside the inbox")
    now = now or _default_now
    signer = Signer()
    state = ServerState(
        rnd=rnd,
        inbox=inbox,
        registry_path=registry_path,
        data_dir=data_dir,
        desk=UploadDesk(rnd, inbox, registry_path, data_dir, now, max_upload_bytes),
        tokens=TokenStore(registry_path),
        signer=signer,
        sessions=Sessions(signer),
        limiter=limiter if limiter is not None else FailureLimiter(),
        province_password=province_password,
        max_upload_bytes=max_upload_bytes,
        now=now,
        env=make_env(),
    )
    app = FastAPI(title="baocao", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.baocao = state
    app.state.round = rnd  # what the Excel-button router reads
    _unit_routes(app, state)
    _province_routes(app, state)

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        return _page(state, request, "index.html")

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    try:
        from .xlwings_api import router as xlwings_router
    except ImportError as exc:
        if exc.name not in (f"{__package__}.xlwings_api", "xlwings"):
            log.warning("the Excel-button endpoint is not available: %s", exc)
        xlwings_router = None
    if xlwings_router is not None:
        app.include_router(xlwings_router, prefix="/xlwings")

    app.add_middleware(_Guard, upload_cap=max_upload_bytes)
    return app


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _page(state: ServerState, request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("title", state.rnd.title)
    html = state.env.get_template(template).render(rnd=state.rnd, prefix=_prefix(request), **ctx)
    return HTMLResponse(html, status_code=status_code)


def _message(state: ServerState, request: Request, status_code: int, heading: str, text: str) -> HTMLResponse:
    return _page(state, request, "message.html", status_code, heading=heading, text=text)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _cross_site(request: Request) -> bool:
    return request.headers.get("sec-fetch-site", "").lower() == "cross-site"


def _wait_text(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return f"khoảng {minutes} phút"


# ------------------------------------------------------------------------------------------ unit routes


def _locked_out(state: ServerState, request: Request, key: str, title: str, text: str) -> Response | None:
    """The 429 page (with Retry-After) while ``key`` is throttled after too many failures; ``text`` names the
    wait as ``{wait}``. None when it may go on."""
    wait = state.limiter.retry_after(key)
    if not wait:
        return None
    resp = _message(state, request, 429, title, text.format(wait=_wait_text(wait)))
    resp.headers["Retry-After"] = str(wait)
    return resp


def _unit_routes(app: FastAPI, state: ServerState) -> None:
    rnd = state.rnd
    forms = available_forms()

    async def unit_of(request: Request, token: str) -> Unit | Response:
        key = "u:" + _client(request)
        locked = _locked_out(
            state,
            request,
            key,
            "Tạm khóa truy cập",
            "Máy này đã dùng đường dẫn không hợp lệ quá nhiều lần. Hãy thử lại sau {wait}, hoặc liên hệ Sở để được "
            "gửi lại đường dẫn.",
        )
        if locked:
            return locked
        unit = await run_in_threadpool(state.unit_for_token, token)
        if unit is None:
            await state.limiter.failed(key)
            return _message(
                state,
                request,
                404,
                "Đường dẫn không hợp lệ",
                "Đường dẫn này không đúng hoặc đã bị thu hồi. Hãy dùng đúng đường dẫn riêng Sở gửi cho đơn vị; nếu "
                "vẫn không được, hãy liên hệ Sở để được cấp đường dẫn mới.",
            )
        return unit

    def unit_state(unit: Unit) -> StatusRow | None:
        try:
            with Registry.open(state.registry_path, readonly=True) as reg:
                for row in status(rnd, reg):
                    if row.unit_code == unit.code:
                        return row
        except RegistryError:
            return None
        return None

    async def unit_page(
        request: Request,
        token: str,
        unit: Unit,
        status_code: int = 200,
        refusal: Finding | None = None,
        selected: int | None = None,
    ) -> HTMLResponse:
        await state.ensure_synced()
        uploads = await run_in_threadpool(state.desk.log.for_unit, rnd.id, unit.code)
        row = await run_in_threadpool(unit_state, unit)
        shown = None
        if selected is not None:
            shown = next((u for u in uploads if u.id == selected), None)
        if shown is None and uploads and refusal is None:
            shown = uploads[0]
        today = state.now()
        return _page(
            state,
            request,
            "unit.html",
            status_code,
            title=f"{unit.name} – {rnd.title}",
            unit=unit,
            token=token,
            csrf=state.signer.unit_csrf(token),
            forms=[
                (forms[f].annex_label, forms[f].title.format(year=rnd.plan_date.year)) for f in unit.forms if f in forms
            ],
            past_deadline=today.date() > rnd.deadline,
            uploads=uploads,
            shown=shown,
            refusal=refusal,
            row=row,
            max_size=_size(state.max_upload_bytes),
        )

    @app.get("/u/{token}", response_class=HTMLResponse)
    async def unit_home(request: Request, token: str, lan: int | None = None) -> Response:
        unit = await unit_of(request, token)
        if isinstance(unit, Response):
            return unit
        return await unit_page(request, token, unit, selected=lan)

    @app.post("/u/{token}/upload", response_class=HTMLResponse)
    async def unit_upload(request: Request, token: str) -> Response:
        if _cross_site(request):
            return _message(state, request, 403, "Yêu cầu bị từ chối", "Yêu cầu gửi từ trang web khác bị từ chối.")
        unit = await unit_of(request, token)
        if isinstance(unit, Response):
            return unit
        staged = state.desk.new_staging_file()
        try:
            try:
                form = await receive_upload(request, staged, state.max_upload_bytes)
            except BadForm as exc:
                return _message(state, request, 400, "Không nhận được tệp", f"{exc} Hãy tải lại trang và gửi lại.")
            if not _same(form.fields.get("csrf"), state.signer.unit_csrf(token)):
                return _message(
                    state,
                    request,
                    403,
                    "Phiên làm việc đã hết hạn",
                    "Biểu mẫu này đã cũ hoặc không được gửi từ trang của đơn vị. Hãy mở lại đường dẫn của đơn vị, "
                    "chọn tệp rồi bấm “Kiểm tra và nộp”.",
                )
            if form.too_big:
                finding = Finding(
                    "file-unreadable",
                    f"Tệp quá lớn (hơn {_size(state.max_upload_bytes)}) nên không được nhận. Hãy xóa bớt các trang "
                    "tính, hình ảnh không cần thiết, lưu thành .xlsx rồi gửi lại.",
                )
                up = await run_in_threadpool(_log_refusal, state, unit, finding, form)
                return await unit_page(request, token, unit, 413, refusal=finding, selected=up.id)
            if not form.has_file or (form.size == 0 and not form.client_name):
                finding = Finding("file-unreadable", "Chưa chọn tệp. Hãy chọn tệp Excel của đơn vị rồi bấm gửi.")
                return await unit_page(request, token, unit, 400, refusal=finding)
            try:
                async with state.semaphore():
                    up = await run_in_threadpool(
                        state.desk.accept, unit, staged, form.sha256, form.size, form.client_name
                    )
            except Exception:  # noqa: BLE001 - e.g. the disk is full: say so, keep serving
                log.exception("upload of %s failed", unit.code)
                return _message(
                    state,
                    request,
                    500,
                    "Chưa lưu được tệp",
                    "Máy chủ gặp lỗi khi lưu tệp này. Hãy thử gửi lại sau ít phút; nếu vẫn không được, hãy báo cho Sở.",
                )
        finally:
            if staged.parent.exists():
                shutil.rmtree(staged.parent, ignore_errors=True)
        if up.outcome == "refused":
            return await unit_page(request, token, unit, 400, refusal=up.findings[0], selected=up.id)
        if up.outcome == "accepted":
            await state.sync_registry()
        return RedirectResponse(f"{_prefix(request)}/u/{token}?lan={up.id}#ket-qua", status_code=303)

    @app.get("/u/{token}/annotated/{upload_id}")
    async def unit_annotated(request: Request, token: str, upload_id: int) -> Response:
        unit = await unit_of(request, token)
        if isinstance(unit, Response):
            return unit
        up = await run_in_threadpool(state.desk.log.get, rnd.id, unit.code, upload_id)
        path = state.desk.annotated_path(up) if up else None
        if path is None:
            return _message(
                state, request, 404, "Không có bản có chú thích", "Không tìm thấy bản có chú thích của lần gửi này."
            )
        return FileResponse(path, media_type=XLSX, filename=path.name)


def _log_refusal(state: ServerState, unit: Unit, finding: Finding, form: ReceivedForm) -> Upload:
    received = state.now().replace(microsecond=0)
    up = Upload.refused(state.rnd, unit, received, form.size, form.client_name, findings=[finding])
    state.desk.log.add(up)
    return up


# ------------------------------------------------------------------------------------------ province routes


@dataclass
class Board:
    rows: list[StatusRow]
    findings: dict[str, list[Finding]]
    unidentified: int
    other_unit: int
    uploads: int
    last_run: str | None


def _board(state: ServerState) -> Board:
    rnd = state.rnd
    other = state.inbox / OTHER_UNIT_DIR
    other_unit = (
        sum(1 for p in other.iterdir() if p.is_file() and p.name[0] != "." and p.suffix != ".yaml")
        if other.is_dir()
        else 0
    )
    uploads = state.desk.log.count(rnd.id)
    try:
        with Registry.open(state.registry_path, readonly=True) as reg:
            rows = status(rnd, reg)
            findings = {r.unit_code: reg.findings(rnd.id, r.sha256) for r in rows if r.sha256}
            known = {u.code for u in rnd.units}
            stray = [f for f in reg.files(rnd.id, present_only=True) if f.unit_code not in known]
            last = reg.last_run(rnd.id)
    except RegistryMissing:
        rows = [
            StatusRow(u.code, u.name, u.forms, None, None, None, None, None, 0, 0, "missing" if u.forms else "not-owed")
            for u in rnd.units
        ]
        return Board(rows, {}, 0, other_unit, uploads, None)
    return Board(rows, findings, len(stray), other_unit, uploads, last["at"] if last else None)


def _province_routes(app: FastAPI, state: ServerState) -> None:
    rnd = state.rnd

    def session_of(request: Request) -> str | None:
        return state.sessions.check(request.cookies.get(SESSION_COOKIE))

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    def login_page(request: Request, status_code: int = 200, error: str | None = None) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or ""
        if not well_formed(nonce):  # keep a live one: two open login tabs both work
            nonce = secrets.token_urlsafe(24)
        resp = _page(state, request, "province_login.html", status_code, title="Trang của Sở", csrf=nonce, error=error)
        resp.set_cookie(
            LOGIN_COOKIE,
            nonce,
            httponly=True,
            samesite="strict",
            secure=secure(request),
            path=f"{_prefix(request)}/tinh",
        )
        return resp

    async def board_page(request: Request, sid: str, status_code: int = 200, error: str | None = None) -> Response:
        await state.ensure_synced()
        try:
            board = await run_in_threadpool(_board, state)
        except RegistryError as exc:
            return _message(state, request, 503, "Không đọc được sổ theo dõi", str(exc))
        counts = collections.Counter(r.state for r in board.rows)
        return _page(
            state,
            request,
            "province.html",
            status_code,
            title=f"Tình hình nộp – {rnd.title}",
            board=board,
            counts=counts,
            csrf=state.signer.province_csrf(sid),
            error=error,
            now=state.now(),
        )

    @app.get("/tinh", response_class=HTMLResponse)
    async def province_home(request: Request) -> Response:
        sid = session_of(request)
        if sid is None:
            return login_page(request)
        return await board_page(request, sid)

    @app.post("/tinh/dang-nhap", response_class=HTMLResponse)
    async def province_login(request: Request) -> Response:
        if _cross_site(request):
            return _message(state, request, 403, "Yêu cầu bị từ chối", "Yêu cầu gửi từ trang web khác bị từ chối.")
        key = "tinh:" + _client(request)
        locked = _locked_out(
            state, request, key, "Tạm khóa đăng nhập", "Đã nhập sai mật khẩu quá nhiều lần. Hãy thử lại sau {wait}."
        )
        if locked:
            return locked
        form = await request.form()
        if not _same(str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE)):
            return login_page(request, 403, "Phiên đăng nhập đã hết hạn. Hãy nhập lại mật khẩu.")
        if not _password_ok(str(form.get("password") or ""), state.province_password):
            await state.limiter.failed(key)
            return login_page(request, 401, "Mật khẩu không đúng.")
        resp = RedirectResponse(f"{_prefix(request)}/tinh", status_code=303)
        path = f"{_prefix(request)}/tinh"
        resp.set_cookie(
            SESSION_COOKIE,
            state.sessions.create(),
            max_age=SESSION_TTL,
            httponly=True,
            samesite="strict",
            secure=secure(request),
            path=path,
        )
        resp.delete_cookie(LOGIN_COOKIE, path=path)
        return resp

    async def checked(request: Request) -> str | Response:
        if _cross_site(request):
            return _message(state, request, 403, "Yêu cầu bị từ chối", "Yêu cầu gửi từ trang web khác bị từ chối.")
        sid = session_of(request)
        if sid is None:
            return login_page(request, 401, "Hãy đăng nhập trước.")
        form = await request.form()
        if not _same(str(form.get("csrf") or ""), state.signer.province_csrf(sid)):
            return _message(
                state, request, 403, "Phiên làm việc đã hết hạn", "Hãy tải lại trang của Sở rồi thực hiện lại."
            )
        return sid

    @app.post("/tinh/dang-xuat")
    async def province_logout(request: Request) -> Response:
        sid = await checked(request)
        if isinstance(sid, Response):
            return sid
        state.sessions.end(sid)
        resp = RedirectResponse(f"{_prefix(request)}/tinh", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path=f"{_prefix(request)}/tinh")
        return resp

    @app.post("/tinh/tong-hop")
    async def province_consolidate(request: Request) -> Response:
        sid = await checked(request)
        if isinstance(sid, Response):
            return sid
        from ..pipeline import OutputError, consolidate_inbox

        stamp = state.now().strftime("%Y%m%d-%H%M%S")
        out_dir = state.data_dir / "tong-hop"
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"tong-hop-{rnd.id}-{stamp}.xlsx"
        try:
            run = await run_in_threadpool(consolidate_inbox, state.inbox, rnd, target, state.registry_path)
        except (OutputError, RegistryError) as exc:
            return await board_page(request, sid, 503, error=str(exc))
        return FileResponse(run.summary, media_type=XLSX, filename=target.name)


__all__ = ["FailureLimiter", "ServerState", "create_app", "receive_upload"]
