"""Vietnamese text helpers: NFC, folding for matching, slugs."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """A matching key: NFC, lower case, accents and đ removed, spaces collapsed.

    “Hòa”, “Hoà” and “HOÀ” (and their NFD forms) all fold to “hoa”. Show names as written; compare folded.
    """
    text = unicodedata.normalize("NFD", str(text).lower().replace("đ", "d").replace("Đ", "d"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", text).strip()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")


_ADMIN_PREFIXES = (
    "thanh pho ",
    "thi xa ",
    "thi tran ",
    "huyen ",
    "quan ",
    "phuong ",
    "xa ",
    "tp. ",
    "tp ",
    "tt. ",
    "tt ",
)


@lru_cache(maxsize=65536)
def fold_place(name: str) -> str:
    """Fold a place name and drop its administrative prefix: “TT. Đồi Ngô” ~ “Thị trấn Đồi Ngô”."""
    key = fold(name)
    for prefix in _ADMIN_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :].strip()
    return key
