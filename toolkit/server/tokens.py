"""Unit links: one secret token per unit, of which only the SHA-256 is kept.

The hashes live in their own table (``server_tokens``) of the registry's SQLite file, beside the registry's own
tables (which this module never touches). A token is random (``secrets.token_urlsafe(24)``, 192 bits), shown once
when it is issued (``baocao links``) and never stored: printing links again issues new tokens and leaves the
earlier ones valid, unless ``rotate`` revokes them first. A revoked token stays in the table (``revoked`` set),
so the history of who could reach a unit's page is kept.

Writes take the registry's lock (:meth:`toolkit.registry.Registry.open`) and run in one transaction; the lookup
a server does on every request opens the file read-only and never waits for that lock (SQLite WAL).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..registry import Registry
from ..round import Round, Unit

TOKENS_SQL = """
CREATE TABLE IF NOT EXISTS server_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    round_id TEXT NOT NULL,
    unit_code TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,   -- sha256 of the token, hex; the token itself is never stored
    created TEXT NOT NULL,
    revoked TEXT                         -- when it was revoked; NULL while it is valid
);
CREATE INDEX IF NOT EXISTS server_tokens_by_unit ON server_tokens(round_id, unit_code);
"""

TOKEN_BYTES = 24
# what a token looks like (token_urlsafe of 24 bytes is 32 characters); anything else is refused unhashed
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def well_formed(token: str) -> bool:
    return bool(_TOKEN_SHAPE.match(token or ""))


def link_for(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/u/{token}"


@dataclass(frozen=True)
class IssuedToken:
    unit: Unit
    token: str  # shown once: only its hash is stored

    def url(self, base_url: str) -> str:
        return link_for(base_url, self.token)


class UnknownUnit(ValueError):
    """A unit code that is not in the round (message in Vietnamese)."""


class TokenStore:
    """The ``server_tokens`` table of the registry file at ``registry_path``."""

    def __init__(self, registry_path: str | Path) -> None:
        self.registry_path = Path(registry_path)

    # -- writing (under the registry's lock, one transaction)

    def _write(self, work):
        with Registry.open(self.registry_path) as reg:
            conn = reg.conn
            conn.executescript(TOKENS_SQL)
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return out

    def issue(
        self,
        rnd: Round,
        unit_codes: Iterable[str] | None = None,
        *,
        rotate: bool = False,
        now: dt.datetime | None = None,
    ) -> list[IssuedToken]:
        """A new token for each unit owing forms (or each of ``unit_codes``). ``rotate`` revokes the units'
        earlier tokens first; otherwise they stay valid."""
        units = _units(rnd, unit_codes)
        at = (now or dt.datetime.now()).isoformat(timespec="seconds")
        issued = [IssuedToken(u, secrets.token_urlsafe(TOKEN_BYTES)) for u in units]

        def work(conn: sqlite3.Connection) -> list[IssuedToken]:
            if rotate:
                conn.executemany(
                    "UPDATE server_tokens SET revoked = ? WHERE round_id = ? AND unit_code = ? AND revoked IS NULL",
                    [(at, rnd.id, u.code) for u in units],
                )
            conn.executemany(
                "INSERT INTO server_tokens (round_id, unit_code, token_sha256, created) VALUES (?, ?, ?, ?)",
                [(rnd.id, t.unit.code, hash_token(t.token), at) for t in issued],
            )
            return issued

        return self._write(work)

    def revoke(self, rnd: Round, unit_code: str, now: dt.datetime | None = None) -> int:
        """Revoke every valid token of a unit; returns how many were revoked."""
        unit = rnd.unit(str(unit_code))
        if unit is None:
            raise UnknownUnit(
                f"Mã đơn vị {unit_code} không có trong đợt báo cáo {rnd.id}. Hãy kiểm tra lại mã (xem round.yaml)."
            )
        at = (now or dt.datetime.now()).isoformat(timespec="seconds")

        def work(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE server_tokens SET revoked = ? WHERE round_id = ? AND unit_code = ? AND revoked IS NULL",
                (at, rnd.id, unit.code),
            )
            return cur.rowcount

        return self._write(work)

    # -- reading (read-only, no lock)

    def _read(self, sql: str, args: tuple) -> list[tuple]:
        if not self.registry_path.is_file():
            return []
        try:
            conn = sqlite3.connect(f"{self.registry_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error:
            return []
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:  # no token table yet: no link was ever issued
            return []
        finally:
            conn.close()

    def unit_for(self, rnd: Round, token: str) -> Unit | None:
        """The unit a valid (issued, not revoked) token of this round opens, or None."""
        if not well_formed(token):
            return None
        rows = self._read(
            "SELECT unit_code FROM server_tokens WHERE token_sha256 = ? AND round_id = ? AND revoked IS NULL",
            (hash_token(token), rnd.id),
        )
        return rnd.unit(rows[0][0]) if rows else None

    def active_counts(self, rnd: Round) -> dict[str, int]:
        """Unit code -> number of valid tokens."""
        rows = self._read(
            "SELECT unit_code, COUNT(*) FROM server_tokens WHERE round_id = ? AND revoked IS NULL GROUP BY unit_code",
            (rnd.id,),
        )
        return {code: n for code, n in rows}


def _units(rnd: Round, unit_codes: Iterable[str] | None) -> list[Unit]:
    if unit_codes is None:
        return rnd.units_owing()
    out = []
    for code in unit_codes:
        unit = rnd.unit(str(code))
        if unit is None:
            raise UnknownUnit(
                f"Mã đơn vị {code} không có trong đợt báo cáo {rnd.id}. Hãy kiểm tra lại mã (xem round.yaml)."
            )
        out.append(unit)
    return out


__all__ = ["IssuedToken", "TokenStore", "UnknownUnit", "hash_token", "link_for", "well_formed"]
