"""Text as units type it: legacy Vietnamese encodings (TCVN3, VNI), Unicode NFC, numbers typed as text.

Everything here is pure (stdlib only, no I/O). The reader decides which findings to raise:

- ``detect_legacy_font`` / ``convert_legacy`` (or ``convert_by_font``): a cell whose font is a TCVN3 (.Vn…) or
  VNI (VNI-…) font holds legacy-encoded text; the *font name* says which, never the text (a converter that
  guesses from the text alone is wrong on short cells). → finding ``legacy-encoding``.
- ``normalise_text``: Unicode NFC; "changed" means the cell arrived decomposed (NFD). → ``text-normalised``.
  Matching of names ("Hòa" ~ "Hoà" ~ "HOÀ") is ``toolkit.text.fold``'s job, not this module's.
- ``parse_number_text``: a number typed as text ("1.234", "12,5", "0012"), with every reading it can have.
  → ``number-as-text`` (one reading), or ``not-a-number`` (no reading, or ambiguous: never guessed silently).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .text import nfc

TCVN3 = "tcvn3"
VNI = "vni"
ENCODINGS = (TCVN3, VNI)

# ------------------------------------------------------------------------------------------ legacy fonts


def detect_legacy_font(font_name: str | None) -> str | None:
    """The legacy encoding a font implies: "tcvn3", "vni" or None.

    TCVN3 (ABC) fonts are named ".Vn…" (".VnTime", ".VnArial", ".VnTimeH" …); VNI fonts "VNI-…" ("VNI-Times",
    "VNI-Helve" …). The case of the name does not matter.
    """
    if not font_name:
        return None
    name = font_name.strip().lower()
    if name.startswith(".vn"):
        return TCVN3
    if re.match(r"vni[-_ ]", name):
        return VNI
    return None


def is_uppercase_font(font_name: str | None) -> bool:
    """True for the upper-case TCVN3 fonts (".VnTimeH", ".VnArialH" …: the name ends in a capital H).

    Those fonts draw every letter as a capital, so the same code points that are "à", "ư" … in ".VnTime" are
    "À", "Ư" … there, and plain "a" shows as "A".
    """
    return detect_legacy_font(font_name) == TCVN3 and font_name is not None and font_name.strip().endswith("H")


# TCVN3 = TCVN 5712:1993, level VN3 (the ".Vn…" / ABC fonts), as the text appears in a cell: each byte of the
# font read as a cp1252 / Latin-1 code point (identical in 0xA1–0xFE). VN3 has only the 7 plain capitals
# Ă Â Ê Ô Ơ Ư Đ; capitals with a tone mark are typed with the upper-case ("…H") fonts at the lower-case code
# points (see ``is_uppercase_font``). 0xAD, the letter "ư", is U+00AD SOFT HYPHEN, which many tools drop.
# Checked against libiconv lib/tcvn.h (TCVN-5712, the VN1 superset: same lower-case positions) and UniKey's
# VnConv tables (unikey/data.cpp, "TCVN3"); tests/test_normalize.py rebuilds it from a base × tone grid.
# fmt: off
TCVN3_TO_UNICODE: dict[str, str] = {
    "\xa1": "Ă", "\xa2": "Â", "\xa3": "Ê", "\xa4": "Ô", "\xa5": "Ơ", "\xa6": "Ư", "\xa7": "Đ",
    "\xa8": "ă", "\xa9": "â", "\xaa": "ê", "\xab": "ô", "\xac": "ơ", "\xad": "ư", "\xae": "đ",
    # columns: huyền, hỏi, ngã, sắc, nặng
    "\xb5": "à", "\xb6": "ả", "\xb7": "ã", "\xb8": "á", "\xb9": "ạ",  # a
    "\xbb": "ằ", "\xbc": "ẳ", "\xbd": "ẵ", "\xbe": "ắ", "\xc6": "ặ",  # ă
    "\xc7": "ầ", "\xc8": "ẩ", "\xc9": "ẫ", "\xca": "ấ", "\xcb": "ậ",  # â
    "\xcc": "è", "\xce": "ẻ", "\xcf": "ẽ", "\xd0": "é", "\xd1": "ẹ",  # e
    "\xd2": "ề", "\xd3": "ể", "\xd4": "ễ", "\xd5": "ế", "\xd6": "ệ",  # ê
    "\xd7": "ì", "\xd8": "ỉ", "\xdc": "ĩ", "\xdd": "í", "\xde": "ị",  # i
    "\xdf": "ò", "\xe1": "ỏ", "\xe2": "õ", "\xe3": "ó", "\xe4": "ọ",  # o
    "\xe5": "ồ", "\xe6": "ổ", "\xe7": "ỗ", "\xe8": "ố", "\xe9": "ộ",  # ô
    "\xea": "ờ", "\xeb": "ở", "\xec": "ỡ", "\xed": "ớ", "\xee": "ợ",  # ơ
    "\xef": "ù", "\xf1": "ủ", "\xf2": "ũ", "\xf3": "ú", "\xf4": "ụ",  # u
    "\xf5": "ừ", "\xf6": "ử", "\xf7": "ữ", "\xf8": "ứ", "\xf9": "ự",  # ư
    "\xfa": "ỳ", "\xfb": "ỷ", "\xfc": "ỹ", "\xfd": "ý", "\xfe": "ỵ",  # y
}
# fmt: on

# VNI Windows (the "VNI-…" fonts): a letter is its base letter followed by one mark character; ơ, ư, đ, the
# toned i's and ỵ are single characters. Mark characters, lower case (upper case: the same letter in capitals):
#   tone only:         ù sắc, ø huyền, û hỏi, õ ngã, ï nặng
#   circumflex + tone: â —, á sắc, à huyền, å hỏi, ã ngã, ä nặng
#   breve + tone:      ê —, é sắc, è huyền, ú hỏi, ü ngã, ë nặng
# "ì" and "í" are themselves. Checked against UniKey's VnConv tables (unikey/data.cpp, "VNI-WIN") and xvnkb's
# vni.h; tests/test_normalize.py rebuilds it from a base × mark grid.
# fmt: off
VNI_TO_UNICODE: dict[str, str] = {
    "aù": "á", "aø": "à", "aû": "ả", "aõ": "ã", "aï": "ạ",  # a
    "aâ": "â", "aá": "ấ", "aà": "ầ", "aå": "ẩ", "aã": "ẫ", "aä": "ậ",  # â
    "aê": "ă", "aé": "ắ", "aè": "ằ", "aú": "ẳ", "aü": "ẵ", "aë": "ặ",  # ă
    "eù": "é", "eø": "è", "eû": "ẻ", "eõ": "ẽ", "eï": "ẹ",  # e
    "eâ": "ê", "eá": "ế", "eà": "ề", "eå": "ể", "eã": "ễ", "eä": "ệ",  # ê
    "æ": "ỉ", "ó": "ĩ", "ò": "ị",  # i (ì, í are themselves)
    "où": "ó", "oø": "ò", "oû": "ỏ", "oõ": "õ", "oï": "ọ",  # o
    "oâ": "ô", "oá": "ố", "oà": "ồ", "oå": "ổ", "oã": "ỗ", "oä": "ộ",  # ô
    "ô": "ơ", "ôù": "ớ", "ôø": "ờ", "ôû": "ở", "ôõ": "ỡ", "ôï": "ợ",  # ơ
    "uù": "ú", "uø": "ù", "uû": "ủ", "uõ": "ũ", "uï": "ụ",  # u
    "ö": "ư", "öù": "ứ", "öø": "ừ", "öû": "ử", "öõ": "ữ", "öï": "ự",  # ư
    "yù": "ý", "yø": "ỳ", "yû": "ỷ", "yõ": "ỹ", "î": "ỵ",  # y
    "ñ": "đ",  # đ
    "AÙ": "Á", "AØ": "À", "AÛ": "Ả", "AÕ": "Ã", "AÏ": "Ạ",  # A
    "AÂ": "Â", "AÁ": "Ấ", "AÀ": "Ầ", "AÅ": "Ẩ", "AÃ": "Ẫ", "AÄ": "Ậ",  # Â
    "AÊ": "Ă", "AÉ": "Ắ", "AÈ": "Ằ", "AÚ": "Ẳ", "AÜ": "Ẵ", "AË": "Ặ",  # Ă
    "EÙ": "É", "EØ": "È", "EÛ": "Ẻ", "EÕ": "Ẽ", "EÏ": "Ẹ",  # E
    "EÂ": "Ê", "EÁ": "Ế", "EÀ": "Ề", "EÅ": "Ể", "EÃ": "Ễ", "EÄ": "Ệ",  # Ê
    "Æ": "Ỉ", "Ó": "Ĩ", "Ò": "Ị",  # I (Ì, Í are themselves)
    "OÙ": "Ó", "OØ": "Ò", "OÛ": "Ỏ", "OÕ": "Õ", "OÏ": "Ọ",  # O
    "OÂ": "Ô", "OÁ": "Ố", "OÀ": "Ồ", "OÅ": "Ổ", "OÃ": "Ỗ", "OÄ": "Ộ",  # Ô
    "Ô": "Ơ", "ÔÙ": "Ớ", "ÔØ": "Ờ", "ÔÛ": "Ở", "ÔÕ": "Ỡ", "ÔÏ": "Ợ",  # Ơ
    "UÙ": "Ú", "UØ": "Ù", "UÛ": "Ủ", "UÕ": "Ũ", "UÏ": "Ụ",  # U
    "Ö": "Ư", "ÖÙ": "Ứ", "ÖØ": "Ừ", "ÖÛ": "Ử", "ÖÕ": "Ữ", "ÖÏ": "Ự",  # Ư
    "YÙ": "Ý", "YØ": "Ỳ", "YÛ": "Ỷ", "YÕ": "Ỹ", "Î": "Ỵ",  # Y
    "Ñ": "Đ",  # Đ
}
# fmt: on

_TCVN3_TABLE = {ord(k): v for k, v in TCVN3_TO_UNICODE.items()}


# Tolerated VNI slips: a capital base letter with a lower-case mark ("Aø") or the reverse; the base decides the
# case. Never overrides a proper entry.
def _with_case_slips(table: dict[str, str]) -> dict[str, str]:
    out = dict(table)
    for seq, letter in table.items():
        if len(seq) == 2:
            out.setdefault(seq[0] + seq[1].swapcase(), letter)
    return out


_VNI_ALL = _with_case_slips(VNI_TO_UNICODE)
_VNI_RE = re.compile("|".join(re.escape(k) for k in sorted(_VNI_ALL, key=len, reverse=True)))

# Letters (and combining tone marks) that no TCVN3 or VNI text read as cp1252 can contain: a cell holding one
# was typed in Unicode despite its legacy font, and is left as it is.
_UNICODE_ONLY = re.compile("[ĂăĐđĨĩŨũƠơƯư\u1ea0-\u1ef9\u0300\u0301\u0303\u0309\u0323]")

# TCVN3 "ư" (U+00AD) dropped by some tool: "Trường" arrives as "Trêng" → "Trờng". The rimes ơng, ơc and ơu do
# not exist in Vietnamese (only ương, ước, ươu do), so there the lost "ư" can be put back. Other losses
# ("người" → "ngời", "như" → "nh") cannot be told from real words and stay as they are.
_LOST_U = re.compile(r"(?<![uUưƯ])([ơờớởỡợƠỜỚỞỠỢ])(?=(?i:ng|c|u)\b)")


def restore_lost_u(text: str) -> str:
    """Put back a TCVN3 "ư" (soft hyphen) that was dropped before an ơ in ương / ước / ươu (converted text)."""
    return _LOST_U.sub(lambda m: ("Ư" if m.group(1).isupper() else "ư") + m.group(1), text)


def convert_legacy(text: str, encoding: str, *, uppercase: bool = False, restore_u: bool = True) -> str:
    """Legacy-encoded cell text → Unicode NFC Vietnamese.

    ``encoding`` is "tcvn3" or "vni" (see ``detect_legacy_font``). ``uppercase``: the font is an upper-case
    TCVN3 font (``is_uppercase_font``), so the result is put in capitals. For TCVN3 text in which no soft hyphen
    survived, ``restore_u`` puts back the "ư" of ương / ước / ươu (``restore_lost_u``).

    Convert before any other cleaning (U+00AD is the letter ư). Decomposed input is recomposed first. Text that
    contains a letter only Unicode has (ơ, ư, đ, ạ …) was typed in Unicode and is returned as it is (NFC).
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown legacy encoding {encoding!r} (expected one of {ENCODINGS})")
    text = nfc(text)
    if _UNICODE_ONLY.search(text):
        return text
    if encoding == TCVN3:
        out = text.translate(_TCVN3_TABLE)
        if restore_u and "\xad" not in text:
            out = restore_lost_u(out)
        if uppercase:
            out = out.upper()
    else:
        out = _VNI_RE.sub(lambda m: _VNI_ALL[m.group(0)], text)
    return nfc(out)


def convert_by_font(text: str, font_name: str | None) -> str | None:
    """Convert ``text`` by its cell's font: the Unicode text, or None when the font is not a legacy font."""
    encoding = detect_legacy_font(font_name)
    if encoding is None:
        return None
    return convert_legacy(text, encoding, uppercase=is_uppercase_font(font_name))


# ------------------------------------------------------------------------------------------------ NFC


def normalise_text(value: str) -> tuple[str, bool]:
    """(the NFC form of ``value``, whether that differs from ``value``). Nothing else is touched."""
    out = nfc(value)
    return out, out != value


# ------------------------------------------------------------------------------------- numbers as text

INTEGER, AMBIGUOUS, DECIMAL, NOT_NUMBER = "integer", "ambiguous", "decimal", "not-number"
READING_VN = "cách viết Việt Nam"  # 1.234.567,5: dot groups thousands, comma before decimals
READING_EN = "cách viết tiếng Anh"  # 1,234,567.5: comma groups thousands, dot before decimals
READING_PLAIN = "số nguyên"  # no dot or comma: both conventions read it the same


@dataclass
class NumberReading:
    """What a text cell says as a number.

    ``kind``:
      - "integer" / "decimal": exactly one reading (``value``, an int or a float), e.g. "12", "0012", "-5",
        "(5)", "1.234.567", "1,234,567", "1 234", "1.234,5", "1,234.5", "12,5", "12.5";
      - "ambiguous": the Vietnamese and the English convention both accept the text with different values
        ("1.234" = 1234 or 1.234; "1,234"; "1.000"); ``value`` is None, ``readings`` has both;
      - "not-number": neither accepts it ("", "N/A", "—", "12 người", "mười", "1.2.3").
    ``readings``: [(label, value)], Vietnamese first.
    """

    kind: str
    value: int | float | None = None
    readings: list[tuple[str, int | float]] = field(default_factory=list)

    @property
    def is_number(self) -> bool:
        return self.kind in (INTEGER, DECIMAL)


_STRIP = " \t\r\n\u00a0\u2007\u2009\u202f\u200b\ufeff"
_INNER_SPACE = re.compile(r"[ \u00a0\u2007\u2009\u202f]+")
_MINUS = "-\u2212\u2013"  # hyphen-minus, minus sign, en dash (Word's autocorrect)


def _grammar(thousands: str, decimal: str) -> re.Pattern[str]:
    t, d = re.escape(thousands), re.escape(decimal)
    grouped = rf"[1-9][0-9]{{0,2}}(?:{t}[0-9]{{3}})+|[1-9][0-9]{{0,2}}(?: [0-9]{{3}})+"
    return re.compile(rf"(?P<int>{grouped}|[0-9]+)(?:{d}(?P<frac>[0-9]+))?|{d}(?P<frac_only>[0-9]+)")


_VN_NUMBER = _grammar(".", ",")
_EN_NUMBER = _grammar(",", ".")


def _read(pattern: re.Pattern[str], text: str) -> int | float | None:
    m = pattern.fullmatch(text)
    if m is None:
        return None
    whole = re.sub(r"[^0-9]", "", m.group("int") or "") or "0"
    frac = m.group("frac") or m.group("frac_only") or ""
    if frac.strip("0") == "":
        return int(whole)
    return float(f"{whole}.{frac}")


def parse_number_text(text: str) -> NumberReading:
    """Read a number typed as text, keeping every reading (see ``NumberReading``).

    Spaces (also non-breaking and thin ones) around the number are ignored; inside it, a space may only group
    thousands ("1 234 567"). A sign may be "-", "−", "–" or "+"; "(5)" is −5. A reading is valid only if the text
    follows that convention exactly: thousands groups of three digits after a first group of 1–3 digits not
    starting with 0, at most one decimal separator, after the groups. So "1.234.567" (only Vietnamese), "1,234.5"
    (only English), "12,5" (only Vietnamese: English never groups two digits) and "0.5" have one reading and are
    "integer"/"decimal"; "1.234" and "1,234" have two and are "ambiguous". Either way the caller still reports
    the number as typed in text: nothing here is guessed silently.
    """
    s = _INNER_SPACE.sub(" ", text.strip(_STRIP))
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1].strip()
    if s[:1] and s[0] in _MINUS + "+":
        if negative:
            return NumberReading(NOT_NUMBER)
        negative, s = s[0] != "+", s[1:].lstrip()
    if not s or not s[0].isascii() or not (s[0].isdigit() or s[0] in ".,"):
        return NumberReading(NOT_NUMBER)
    vn, en = _read(_VN_NUMBER, s), _read(_EN_NUMBER, s)
    if negative:
        vn = -vn if vn is not None else None
        en = -en if en is not None else None
    if vn is not None and en is not None and vn == en:
        readings = [(READING_PLAIN if isinstance(vn, int) else READING_VN, vn)]
    else:
        readings = [(label, v) for label, v in ((READING_VN, vn), (READING_EN, en)) if v is not None]
    if not readings:
        return NumberReading(NOT_NUMBER)
    if len(readings) > 1:
        return NumberReading(AMBIGUOUS, None, readings)
    value = readings[0][1]
    return NumberReading(INTEGER if isinstance(value, int) else DECIMAL, value, readings)
