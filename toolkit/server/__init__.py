"""The optional web server (``pip install "baocao[server]"``): unit upload pages and the province's board.

Importing this package needs nothing beyond the core: FastAPI, uvicorn, python-multipart and Jinja2 are only
imported by :func:`create_app` and :func:`serve` (``toolkit.server.app``). The unit links
(:mod:`toolkit.server.tokens`) need no extra either, so ``baocao links`` works without it.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

SERVER_MODULES = ("fastapi", "uvicorn", "python_multipart", "jinja2")
INSTALL_HINT = (
    'Máy chủ web của baocao cần gói bổ sung. Hãy cài bằng lệnh: pip install "baocao[server]" '
    "(cài FastAPI, uvicorn, python-multipart và Jinja2), rồi chạy lại “baocao serve”."
)
DEFAULT_INBOX = "hop-thu"


def missing_modules() -> list[str]:
    """The server's dependencies that are not installed (empty when ``baocao serve`` can run)."""
    return [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]


def default_inbox(round_path: str | Path | None) -> Path:
    """Where uploads go when ``--inbox`` is not given: ``inbox/`` beside the round file, or ``./hop-thu`` for the
    shipped example round (never inside the installed package)."""
    if round_path:
        return Path(round_path).resolve().parent / "inbox"
    return Path(DEFAULT_INBOX).resolve()


def create_app(*args: Any, **kwargs: Any) -> FastAPI:
    """See :func:`toolkit.server.app.create_app` (imported on first use)."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)


_TOKEN_IN_PATH = re.compile(r"/u/[A-Za-z0-9_-]+")


class RedactTokens(logging.Filter):
    """Access-log filter: ``/u/<token>…`` is logged as ``/u/…`` so that log files never hold a unit's link."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_PATH.sub("/u/…", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = _TOKEN_IN_PATH.sub("/u/…", record.msg)
        return True


def serve(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 8000,
    proxy_headers: bool = False,
    forwarded_allow_ips: str = "127.0.0.1",
) -> None:
    """Run ``app`` with uvicorn until interrupted; unit tokens are redacted from the access log."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        log_level="info",
    )
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    uvicorn.Server(config).run()


__all__ = ["INSTALL_HINT", "RedactTokens", "create_app", "default_inbox", "missing_modules", "serve"]
