"""toolkit.normalize: TCVN3/VNI conversion, NFC, numbers typed as text.

The encoders below are built independently of the module's tables: from the TCVN 5712:1993 (VN3) code chart
read as a base-letter × tone grid, and from VNI's base letter + mark rule, with each Vietnamese letter composed by
unicodedata (base + combining tone mark), not written out. The TCVN3 table is also checked against the upper half
of GNU libiconv's TCVN-5712 (VN1) table, transcribed below.
"""

from __future__ import annotations

import unicodedata

import pytest

from toolkit.normalize import (
    TCVN3_TO_UNICODE,
    VNI_TO_UNICODE,
    NumberReading,
    convert_by_font,
    convert_legacy,
    detect_legacy_font,
    is_uppercase_font,
    normalise_text,
    parse_number_text,
    restore_lost_u,
)
from toolkit.text import fold


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


# Tones in the order of the TCVN3 chart: none, huyền, hỏi, ngã, sắc, nặng.
TONE_MARKS = ("", "\u0300", "\u0309", "\u0303", "\u0301", "\u0323")
BASES = "a ă â e ê i o ô ơ u ư y".split()

# TCVN 5712:1993 VN3: base letter → byte for (no tone, huyền, hỏi, ngã, sắc, nặng).
TCVN3_GRID = {
    "a": (0x61, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9),
    "ă": (0xA8, 0xBB, 0xBC, 0xBD, 0xBE, 0xC6),
    "â": (0xA9, 0xC7, 0xC8, 0xC9, 0xCA, 0xCB),
    "e": (0x65, 0xCC, 0xCE, 0xCF, 0xD0, 0xD1),
    "ê": (0xAA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6),
    "i": (0x69, 0xD7, 0xD8, 0xDC, 0xDD, 0xDE),
    "o": (0x6F, 0xDF, 0xE1, 0xE2, 0xE3, 0xE4),
    "ô": (0xAB, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9),
    "ơ": (0xAC, 0xEA, 0xEB, 0xEC, 0xED, 0xEE),
    "u": (0x75, 0xEF, 0xF1, 0xF2, 0xF3, 0xF4),
    "ư": (0xAD, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9),
    "y": (0x79, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE),
}
TCVN3_OTHERS = {"đ": 0xAE, "Ă": 0xA1, "Â": 0xA2, "Ê": 0xA3, "Ô": 0xA4, "Ơ": 0xA5, "Ư": 0xA6, "Đ": 0xA7}

# GNU libiconv lib/tcvn.h, tcvn_2uni_2 for bytes 0xA0–0xFF (TCVN 5712 VN1; VN3 uses its lower-case letters and
# the seven plain capitals at 0xA1–0xA7; VN1 alone puts toned capitals in the gaps).
LIBICONV_TCVN_A0_FF = [
    *(0x00A0, 0x0102, 0x00C2, 0x00CA, 0x00D4, 0x01A0, 0x01AF, 0x0110),
    *(0x0103, 0x00E2, 0x00EA, 0x00F4, 0x01A1, 0x01B0, 0x0111, 0x1EB0),
    *(0x0300, 0x0309, 0x0303, 0x0301, 0x0323, 0x00E0, 0x1EA3, 0x00E3),
    *(0x00E1, 0x1EA1, 0x1EB2, 0x1EB1, 0x1EB3, 0x1EB5, 0x1EAF, 0x1EB4),
    *(0x1EAE, 0x1EA6, 0x1EA8, 0x1EAA, 0x1EA4, 0x1EC0, 0x1EB7, 0x1EA7),
    *(0x1EA9, 0x1EAB, 0x1EA5, 0x1EAD, 0x00E8, 0x1EC2, 0x1EBB, 0x1EBD),
    *(0x00E9, 0x1EB9, 0x1EC1, 0x1EC3, 0x1EC5, 0x1EBF, 0x1EC7, 0x00EC),
    *(0x1EC9, 0x1EC4, 0x1EBE, 0x1ED2, 0x0129, 0x00ED, 0x1ECB, 0x00F2),
    *(0x1ED4, 0x1ECF, 0x00F5, 0x00F3, 0x1ECD, 0x1ED3, 0x1ED5, 0x1ED7),
    *(0x1ED1, 0x1ED9, 0x1EDD, 0x1EDF, 0x1EE1, 0x1EDB, 0x1EE3, 0x00F9),
    *(0x1ED6, 0x1EE7, 0x0169, 0x00FA, 0x1EE5, 0x1EEB, 0x1EED, 0x1EEF),
    *(0x1EE9, 0x1EF1, 0x1EF3, 0x1EF7, 0x1EF9, 0x00FD, 0x1EF5, 0x1ED0),
]

# VNI Windows: mark characters after the base letter, per tone (none, huyền, hỏi, ngã, sắc, nặng).
VNI_TONE = ("", "ø", "û", "õ", "ù", "ï")
VNI_CIRCUMFLEX = ("â", "à", "å", "ã", "á", "ä")
VNI_BREVE = ("ê", "è", "ú", "ü", "é", "ë")
VNI_GRID = {
    "a": ["a" + m for m in VNI_TONE],
    "ă": ["a" + m for m in VNI_BREVE],
    "â": ["a" + m for m in VNI_CIRCUMFLEX],
    "e": ["e" + m for m in VNI_TONE],
    "ê": ["e" + m for m in VNI_CIRCUMFLEX],
    "i": ["i", "ì", "æ", "ó", "í", "ò"],
    "o": ["o" + m for m in VNI_TONE],
    "ô": ["o" + m for m in VNI_CIRCUMFLEX],
    "ơ": ["ô" + m for m in VNI_TONE],
    "u": ["u" + m for m in VNI_TONE],
    "ư": ["ö" + m for m in VNI_TONE],
    "y": ["y" + m for m in VNI_TONE[:5]] + ["î"],
}


def letters() -> list[tuple[str, str, int]]:
    """(letter, base, tone index) for the 72 lower-case Vietnamese vowels, composed by unicodedata."""
    return [(nfc(base + TONE_MARKS[t]), base, t) for base in BASES for t in range(6)]


def tcvn3_forward() -> dict[str, str]:
    table = {letter: chr(TCVN3_GRID[base][t]) for letter, base, t in letters()}
    table.update({k: chr(v) for k, v in TCVN3_OTHERS.items()})
    return table


def vni_forward() -> dict[str, str]:
    table = {letter: VNI_GRID[base][t] for letter, base, t in letters()}
    table["đ"] = "ñ"
    table.update({letter.upper(): seq.upper() for letter, seq in list(table.items())})
    return table


def encode(text: str, table: dict[str, str]) -> str:
    out = []
    for ch in nfc(text):
        if ch in table:
            out.append(table[ch])
        else:
            assert ch.isascii(), f"{ch!r} cannot be typed in this encoding"
            out.append(ch)
    return "".join(out)


def to_tcvn3(text: str) -> str:
    return encode(text, tcvn3_forward())


def to_vni(text: str) -> str:
    return encode(text, vni_forward())


# Names of the round (REPORTING.md) and common words of the forms.
NAMES = [
    "Bắc Giang",
    "TP. Bắc Giang",
    "Yên Thế",
    "Tân Yên",
    "Lạng Giang",
    "Lục Nam",
    "Lục Ngạn",
    "Sơn Động",
    "Yên Dũng",
    "Việt Yên",
    "Hiệp Hòa",
    "Phúc Sơn",
    "An Bá",
    "Kiên Thành",
    "Kiên Lao",
    "TT. Đồi Ngô",
    "Khám Lạng",
    "Tân Thanh",
    "Nghĩa Hưng",
    "Canh Nậu",
    "TT. Phồn Xương",
    "Thường Thắng",
    "Quang Minh",
    "Minh Đức",
    "Nghĩa Trung",
    "Đại Hóa",
    "Tân Trung",
    "TT. Tân An",
    "Quỳnh Sơn",
    "Thọ Xương",
    "Ngô Quyền",
    "Lạng Sơn",
    "Hữu Lũng",
    "Văn Lãng",
    "Bình Gia",
    "Đình Lập",
    "Lộc Bình",
    "Tràng Định",
    "Cao Lộc",
    "Văn Quan",
    "Bắc Sơn",
    "Chi Lăng",
    "Hà Nội",
    "Quảng Ngãi",
    "Trường",
    "người",
    "Hướng dẫn",
    "trẻ em",
    "bình đẳng giới",
    "Kế hoạch",
    "Phụ lục",
    "quý I/2024",
    "xâm hại",
    "đuối nước",
    "tai nạn thương tích",
    "Sở Lao động - Thương binh và Xã hội",
    "rượu",
    "khuyết tật",
    "Độc lập - Tự do - Hạnh phúc",
    "Thuỵ",
    "Thụy",
    "Hoà",
    "Hòa",
    "Kỳ",
    "Tỷ",
    "Mỹ",
    "quỹ",
    "thuở",
    "ngoằn ngoèo",
]
# Capitals with tone marks need the H fonts in TCVN3; VNI has them all.
NAMES_WITH_TONED_CAPITALS = ["Ủy ban nhân dân", "Ứng Hòa", "Ỷ La", "Ấp Bắc", "Ông Ích Khiêm", "Ở đâu", "Ý Yên"]


# ----------------------------------------------------------------------------------------- the tables


def test_tcvn3_table_matches_the_grid_exactly():
    expected = {legacy: letter for letter, legacy in tcvn3_forward().items() if not legacy.isascii()}
    assert TCVN3_TO_UNICODE == expected
    assert len(TCVN3_TO_UNICODE) == 74  # 60 toned vowels + ă â ê ô ơ ư đ + 7 capitals (0xFD ý is ý)


def test_tcvn3_table_agrees_with_libiconv():
    vn1 = {chr(0xA0 + i): chr(cp) for i, cp in enumerate(LIBICONV_TCVN_A0_FF)}
    for legacy, letter in TCVN3_TO_UNICODE.items():
        assert vn1[legacy] == letter, hex(ord(legacy))
    # … and every lower-case letter / plain capital of VN1's upper half is in VN3.
    in_vn3 = {b for b, u in vn1.items() if u.islower() or u in "ĂÂÊÔƠƯĐ"}
    assert in_vn3 == set(TCVN3_TO_UNICODE)


def test_tcvn3_table_is_a_bijection_onto_vietnamese_letters():
    assert len(set(TCVN3_TO_UNICODE.values())) == len(TCVN3_TO_UNICODE)
    assert all(0xA1 <= ord(k) <= 0xFE for k in TCVN3_TO_UNICODE)
    vietnamese = {letter for letter, _, _ in letters() if not letter.isascii()} | {"đ"}
    assert vietnamese <= set(TCVN3_TO_UNICODE.values())


def test_vni_table_matches_the_grid_exactly():
    expected = {seq: letter for letter, seq in vni_forward().items() if seq != letter}
    assert VNI_TO_UNICODE == expected
    assert len(VNI_TO_UNICODE) == 2 * (67 - 2)  # 67 letters per case, ì and í are themselves


def test_vni_table_is_a_bijection_onto_vietnamese_letters():
    assert len(set(VNI_TO_UNICODE.values())) == len(VNI_TO_UNICODE)
    all_letters = {letter for letter, _, _ in letters() if not letter.isascii()} | {"đ"}
    all_letters |= {x.upper() for x in all_letters}
    assert set(VNI_TO_UNICODE.values()) == all_letters - {"ì", "í", "Ì", "Í"}
    assert all(unicodedata.is_normalized("NFC", v) for v in VNI_TO_UNICODE.values())


@pytest.mark.parametrize(("letter", "base", "tone"), letters())
def test_every_letter_every_tone(letter, base, tone):
    assert convert_legacy(chr(TCVN3_GRID[base][tone]), "tcvn3") == letter
    assert convert_legacy(chr(TCVN3_GRID[base][tone]), "tcvn3", uppercase=True) == letter.upper()
    assert convert_legacy(VNI_GRID[base][tone], "vni") == letter
    assert convert_legacy(VNI_GRID[base][tone].upper(), "vni") == letter.upper()


def test_every_letter_inside_a_word():
    for letter, _, _ in letters():
        for word in (f"Ng{letter}n", f"{letter}ng", f"Tr{letter}"):
            assert convert_legacy(to_tcvn3(word), "tcvn3", restore_u=False) == word
            assert convert_legacy(to_vni(word), "vni") == word
            assert convert_legacy(to_vni(word.upper()), "vni") == word.upper()


# ------------------------------------------------------------------------------------------- real words

TCVN3_SAMPLES = [
    ("Hµ Néi", "Hà Nội"),
    ("Lôc Nam", "Lục Nam"),
    ("B¾c Giang", "Bắc Giang"),
    ("Thµnh phè B¾c Giang", "Thành phố Bắc Giang"),
    ("Tr\u00ad\u00eang", "Trường"),
    ("ng\xadêi", "người"),
    ("H\xadíng dÉn", "Hướng dẫn"),
    ("Yªn ThÕ", "Yên Thế"),
    ("T©n Yªn", "Tân Yên"),
    ("L¹ng Giang", "Lạng Giang"),
    ("Lôc Ng¹n", "Lục Ngạn"),
    ("S¬n §éng", "Sơn Động"),
    ("Yªn Dòng", "Yên Dũng"),
    ("ViÖt Yªn", "Việt Yên"),
    ("HiÖp Hßa", "Hiệp Hòa"),
    ("HiÖp Hoµ", "Hiệp Hoà"),
    ("TT. §åi Ng«", "TT. Đồi Ngô"),
    ("Kh¸m L¹ng", "Khám Lạng"),
    ("NghÜa H\xadng", "Nghĩa Hưng"),
    ("Canh NËu", "Canh Nậu"),
    ("TT. Phån X\xad¬ng", "TT. Phồn Xương"),
    ("Th\xadêng Th¾ng", "Thường Thắng"),
    ("Minh §øc", "Minh Đức"),
    ("§¹i Hãa", "Đại Hóa"),
    ("Quúnh S¬n", "Quỳnh Sơn"),
    ("Thä X\xad¬ng", "Thọ Xương"),
    ("Ng« QuyÒn", "Ngô Quyền"),
    ("Phóc S¬n", "Phúc Sơn"),
    ("An B¸", "An Bá"),
    ("Kiªn Thµnh", "Kiên Thành"),
    ("H÷u Lòng", "Hữu Lũng"),
    ("V¨n L·ng", "Văn Lãng"),
    ("§×nh LËp", "Đình Lập"),
    ("Trµng §Þnh", "Tràng Định"),
    ("Chi L¨ng", "Chi Lăng"),
    ("b×nh ®¼ng giíi", "bình đẳng giới"),
    ("trÎ em bÞ x©m h¹i", "trẻ em bị xâm hại"),
    ("Së Lao ®éng - Th\xad¬ng binh vµ X· héi", "Sở Lao động - Thương binh và Xã hội"),
    ("§éc lËp - Tù do - H¹nh phóc", "Độc lập - Tự do - Hạnh phúc"),
    ("KÕ ho¹ch sè 12/KH-SL§TBXH", "Kế hoạch số 12/KH-SLĐTBXH"),
    ("Phô lôc 02", "Phụ lục 02"),
    ("¡n, ¢m, £m, ¤ng, ¥n, ¦ng", "Ăn, Âm, Êm, Ông, Ơn, Ưng"),
]

TCVN3_H_SAMPLES = [
    ("céng hßa x· héi chñ nghÜa viÖt nam", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
    ("CéNG HßA X· HéI CHñ NGHÜA VIÖT NAM", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
    ("phô lôc sè 01", "PHỤ LỤC SỐ 01"),
    ("tr\xadêng", "TRƯỜNG"),
    ("ñy ban nh©n d©n huyÖn lôc nam", "ỦY BAN NHÂN DÂN HUYỆN LỤC NAM"),
    ("§¤NG", "ĐÔNG"),
    ("lÞch kiÓm tra c«ng t¸c trÎ em", "LỊCH KIỂM TRA CÔNG TÁC TRẺ EM"),
]

VNI_SAMPLES = [
    ("Haø Noäi", "Hà Nội"),
    ("Baéc Giang", "Bắc Giang"),
    ("Vieät Nam", "Việt Nam"),
    ("Hoaø", "Hoà"),
    ("Hoøa", "Hòa"),
    ("Tröôøng", "Trường"),
    ("ngöôøi", "người"),
    ("Höôùng daãn", "Hướng dẫn"),
    ("Luïc Nam", "Lục Nam"),
    ("Luïc Ngaïn", "Lục Ngạn"),
    ("Sôn Ñoäng", "Sơn Động"),
    ("Yeân Theá", "Yên Thế"),
    ("Taân Yeân", "Tân Yên"),
    ("Laïng Giang", "Lạng Giang"),
    ("Yeân Duõng", "Yên Dũng"),
    ("Vieät Yeân", "Việt Yên"),
    ("Hieäp Hoøa", "Hiệp Hòa"),
    ("TT. Ñoài Ngoâ", "TT. Đồi Ngô"),
    ("Khaùm Laïng", "Khám Lạng"),
    ("Nghóa Höng", "Nghĩa Hưng"),
    ("Canh Naäu", "Canh Nậu"),
    ("TT. Phoàn Xöông", "TT. Phồn Xương"),
    ("Thöôøng Thaéng", "Thường Thắng"),
    ("Minh Ñöùc", "Minh Đức"),
    ("Ñaïi Hoùa", "Đại Hóa"),
    ("Quyønh Sôn", "Quỳnh Sơn"),
    ("Thoï Xöông", "Thọ Xương"),
    ("Ngoâ Quyeàn", "Ngô Quyền"),
    ("Phuùc Sôn", "Phúc Sơn"),
    ("Thò traán", "Thị trấn"),
    ("Thuî", "Thuỵ"),
    ("Thuïy", "Thụy"),
    ("Kyø, Tyû, Myõ, Quyù", "Kỳ, Tỷ, Mỹ, Quý"),
    ("Ñoäc laäp - Töï do - Haïnh phuùc", "Độc lập - Tự do - Hạnh phúc"),
    ("COÄNG HOØA XAÕ HOÄI CHUÛ NGHÓA VIEÄT NAM", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
    ("UÛy ban nhaân daân", "Ủy ban nhân dân"),
    ("ÖÙng Hoøa", "Ứng Hòa"),
    ("Taêng cöôøng", "Tăng cường"),
    ("khuyeát taät, röôïu", "khuyết tật, rượu"),
    ("Æ, Ó, Ò, Î, æ", "Ỉ, Ĩ, Ị, Ỵ, ỉ"),
]


@pytest.mark.parametrize(("legacy", "unicode"), TCVN3_SAMPLES)
def test_tcvn3_words(legacy, unicode):
    assert convert_legacy(legacy, "tcvn3") == unicode
    assert convert_by_font(legacy, ".VnTime") == unicode
    assert to_tcvn3(unicode) == legacy


@pytest.mark.parametrize(("legacy", "unicode"), TCVN3_H_SAMPLES)
def test_tcvn3_uppercase_fonts(legacy, unicode):
    assert convert_legacy(legacy, "tcvn3", uppercase=True) == unicode
    for font in (".VnTimeH", ".VnArialH", ".VnArial NarrowH"):
        assert convert_by_font(legacy, font) == unicode


@pytest.mark.parametrize(("legacy", "unicode"), VNI_SAMPLES)
def test_vni_words(legacy, unicode):
    assert convert_legacy(legacy, "vni") == unicode
    assert convert_by_font(legacy, "VNI-Times") == unicode
    assert to_vni(unicode) == legacy


@pytest.mark.parametrize("name", NAMES)
def test_names_round_trip(name):
    assert convert_legacy(to_tcvn3(name), "tcvn3") == name
    assert convert_legacy(to_tcvn3(name.lower()), "tcvn3", uppercase=True) == name.upper()
    assert convert_legacy(to_vni(name), "vni") == name
    assert convert_legacy(to_vni(name.upper()), "vni") == name.upper()


@pytest.mark.parametrize("name", NAMES_WITH_TONED_CAPITALS)
def test_toned_capitals(name):
    assert convert_legacy(to_vni(name), "vni") == name
    assert convert_legacy(to_tcvn3(name.lower()), "tcvn3", uppercase=True) == name.upper()


def test_old_and_new_accent_placement_are_kept_and_fold_alike():
    hoa_old, hoa_new = convert_legacy("Hoµ", "tcvn3"), convert_legacy("Hßa", "tcvn3")
    assert (hoa_old, hoa_new) == ("Hoà", "Hòa")
    assert (convert_legacy("Hoaø", "vni"), convert_legacy("Hoøa", "vni")) == ("Hoà", "Hòa")
    assert fold(hoa_old) == fold(hoa_new) == fold("HOÀ") == "hoa"


def test_vni_capital_base_with_small_mark_is_read_by_the_base():
    assert convert_legacy("HAø NOäI", "vni") == "HÀ NỘI"
    assert convert_legacy("haØ", "vni") == "hà"


def test_ascii_and_other_text_pass_through():
    assert convert_legacy("An Lao 2024 (TT)", "tcvn3") == "An Lao 2024 (TT)"
    assert convert_legacy("An Lao 2024 (TT)", "vni") == "An Lao 2024 (TT)"
    assert convert_legacy("Tổng: 12 người", "tcvn3") == "Tổng: 12 người"  # already Unicode: left alone
    assert convert_legacy("Hà Nội", "vni") == "Hà Nội"
    assert convert_legacy("", "tcvn3") == ""


def test_unknown_encoding():
    with pytest.raises(ValueError):
        convert_legacy("x", "viscii")


def test_legacy_text_arriving_decomposed():
    assert convert_legacy(nfd("Hµ Néi"), "tcvn3") == "Hà Nội"
    assert convert_legacy(nfd("Haø Noäi"), "vni") == "Hà Nội"
    assert convert_legacy(nfd("Tröôøng"), "vni") == "Trường"


def test_soft_hyphen_is_the_letter_u_horn():
    assert convert_legacy("\xad", "tcvn3") == "ư"
    assert convert_legacy("Nh\xad", "tcvn3") == "Như"
    assert convert_legacy("nh\xad", "tcvn3", uppercase=True) == "NHƯ"
    assert convert_legacy("X\xad¬ng", "tcvn3") == "Xương"


def test_lost_soft_hyphen_is_restored_where_the_rime_proves_it():
    assert convert_legacy("Trêng", "tcvn3") == "Trường"
    assert convert_legacy("X¬ng", "tcvn3") == "Xương"
    assert convert_legacy("n\xadíc, níc", "tcvn3") == "nước, nớc"  # a surviving ư: nothing is guessed
    assert convert_legacy("níc", "tcvn3") == "nước"
    assert convert_legacy("rîu", "tcvn3") == "rượu"
    assert convert_legacy("trêng", "tcvn3", uppercase=True) == "TRƯỜNG"
    assert convert_legacy("ngêi", "tcvn3") == "ngời"  # "ngời" is a word too: cannot be told
    assert convert_legacy("S¬n, thuë", "tcvn3") == "Sơn, thuở"
    assert convert_legacy("Trêng", "tcvn3", restore_u=False) == "Trờng"
    assert restore_lost_u("TRỜNG") == "TRƯỜNG"
    assert restore_lost_u("quờng") == "quờng"


# ------------------------------------------------------------------------------------------------ fonts


@pytest.mark.parametrize(
    ("font", "encoding", "upper"),
    [
        (".VnTime", "tcvn3", False),
        (".VnTimeH", "tcvn3", True),
        (".VnArial", "tcvn3", False),
        (".VnArialH", "tcvn3", True),
        (".VnArial Narrow", "tcvn3", False),
        (".VnCentury Schoolbook", "tcvn3", False),
        (".VnBook-AntiquaH", "tcvn3", True),
        (".vntime", "tcvn3", False),
        (" .VnTime ", "tcvn3", False),
        ("VNI-Times", "vni", False),
        ("VNI-Helve", "vni", False),
        ("VNI-Helve-Condense", "vni", False),
        ("vni-times", "vni", False),
        ("Times New Roman", None, False),
        ("Arial", None, False),
        ("Calibri", None, False),
        ("VNIX", None, False),
        ("", None, False),
        (None, None, False),
    ],
)
def test_detect_legacy_font(font, encoding, upper):
    assert detect_legacy_font(font) == encoding
    assert is_uppercase_font(font) is upper


def test_convert_by_font_without_legacy_font():
    assert convert_by_font("Hµ Néi", "Times New Roman") is None
    assert convert_by_font("Hµ Néi", None) is None


# -------------------------------------------------------------------------------------------------- NFC


def test_normalise_text_nfd_input():
    for word in ["Hòa", "Hoà", "Thụy", "Thuỵ", "Nghĩa Hưng", "Đồi Ngô", "Sở Lao động - Thương binh và Xã hội"]:
        assert normalise_text(nfd(word)) == (word, True)
        assert normalise_text(word) == (word, False)


def test_normalise_text_keeps_everything_else():
    assert normalise_text("  Lục Nam ") == ("  Lục Nam ", False)
    assert normalise_text("") == ("", False)
    assert normalise_text(nfd("Hòa")) != normalise_text(nfd("Hoà"))  # old and new placement stay distinct
    assert fold(normalise_text(nfd("Hòa"))[0]) == fold("Hoà")


# ---------------------------------------------------------------------------------------------- numbers

VN, EN, PLAIN = "cách viết Việt Nam", "cách viết tiếng Anh", "số nguyên"


@pytest.mark.parametrize(
    ("text", "kind", "value", "readings"),
    [
        ("12", "integer", 12, [(PLAIN, 12)]),
        ("0012", "integer", 12, [(PLAIN, 12)]),
        ("0", "integer", 0, [(PLAIN, 0)]),
        (" 12\u00a0", "integer", 12, [(PLAIN, 12)]),
        ("\u202f1\u00a0234\u2009", "integer", 1234, [(PLAIN, 1234)]),
        ("1 234 567", "integer", 1234567, [(PLAIN, 1234567)]),
        ("-5", "integer", -5, [(PLAIN, -5)]),
        ("\u22125", "integer", -5, [(PLAIN, -5)]),
        ("- 5", "integer", -5, [(PLAIN, -5)]),
        ("+5", "integer", 5, [(PLAIN, 5)]),
        ("(5)", "integer", -5, [(PLAIN, -5)]),
        ("( 5 )", "integer", -5, [(PLAIN, -5)]),
        # both conventions accept it, with different values
        ("1.234", "ambiguous", None, [(VN, 1234), (EN, 1.234)]),
        ("1,234", "ambiguous", None, [(VN, 1.234), (EN, 1234)]),
        ("1.000", "ambiguous", None, [(VN, 1000), (EN, 1)]),
        ("999,999", "ambiguous", None, [(VN, 999.999), (EN, 999999)]),
        ("-1.234", "ambiguous", None, [(VN, -1234), (EN, -1.234)]),
        ("(1,234)", "ambiguous", None, [(VN, -1.234), (EN, -1234)]),
        ("\u00a01.234 ", "ambiguous", None, [(VN, 1234), (EN, 1.234)]),
        # only one convention accepts it
        ("1.234.567", "integer", 1234567, [(VN, 1234567)]),
        ("1,234,567", "integer", 1234567, [(EN, 1234567)]),
        ("1.234,5", "decimal", 1234.5, [(VN, 1234.5)]),
        ("1,234.5", "decimal", 1234.5, [(EN, 1234.5)]),
        ("1.234.567,25", "decimal", 1234567.25, [(VN, 1234567.25)]),
        ("1,234,567.25", "decimal", 1234567.25, [(EN, 1234567.25)]),
        ("12,5", "decimal", 12.5, [(VN, 12.5)]),
        ("12.5", "decimal", 12.5, [(EN, 12.5)]),
        ("0,5", "decimal", 0.5, [(VN, 0.5)]),
        ("0.5", "decimal", 0.5, [(EN, 0.5)]),
        (",5", "decimal", 0.5, [(VN, 0.5)]),
        ("1234,56", "decimal", 1234.56, [(VN, 1234.56)]),
        ("0.123", "decimal", 0.123, [(EN, 0.123)]),
        ("12,0", "integer", 12, [(VN, 12)]),
        ("1 234,5", "decimal", 1234.5, [(VN, 1234.5)]),
        ("1 234.5", "decimal", 1234.5, [(EN, 1234.5)]),
        ("(1.234,5)", "decimal", -1234.5, [(VN, -1234.5)]),
        ("-12,5", "decimal", -12.5, [(VN, -12.5)]),
        # neither
        ("", "not-number", None, []),
        ("   ", "not-number", None, []),
        ("N/A", "not-number", None, []),
        ("—", "not-number", None, []),
        ("-", "not-number", None, []),
        ("12 người", "not-number", None, []),
        ("mười", "not-number", None, []),
        ("x", "not-number", None, []),
        ("1.2.3", "not-number", None, []),
        ("1,2,3", "not-number", None, []),
        ("12.34.567", "not-number", None, []),
        ("1.234,567.8", "not-number", None, []),
        ("1,234.567,8", "not-number", None, []),
        ("5.", "not-number", None, []),
        ("1 2", "not-number", None, []),
        ("12%", "not-number", None, []),
        ("1e5", "not-number", None, []),
        ("--5", "not-number", None, []),
        ("-(5)", "not-number", None, []),
        ("(-5)", "not-number", None, []),
        ("(5", "not-number", None, []),
        ("١٢", "not-number", None, []),
        ("１２", "not-number", None, []),
    ],
)
def test_parse_number_text(text, kind, value, readings):
    reading = parse_number_text(text)
    assert reading == NumberReading(kind, value, readings)
    assert [type(v) for _, v in reading.readings] == [type(v) for _, v in readings]
    assert reading.is_number == (kind in ("integer", "decimal"))
