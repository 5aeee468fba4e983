"""Safety gate: decide cheaply whether a returned file may be parsed, and as what.

Units return whatever they have: real workbooks, but also PDFs and CSVs renamed to ``.xlsx``, HTML pages
that some software saves as ``.xls``, half-downloaded files, password-protected workbooks and, now and
then, something hostile (a decompression bomb, an XML entity bomb). :func:`inspect_workbook` looks at a
file *before* any workbook library touches it, with bounded time and memory:

* the file type is taken from the content (magic bytes, zip directory, OLE streams), never from the
  extension alone; when the extension lies, the message says so;
* a zip is judged from its central directory (member count, declared sizes, per-member compression
  ratio, compression methods, encryption flags) before a single byte is inflated; only then are a few
  small parts read (``[Content_Types].xml``, ``mimetype``, the ODS manifest) and the prolog of every XML
  part scanned (bounded reads) for ``<!DOCTYPE``/``<!ENTITY``, which Excel and LibreOffice never write;
* an OLE (compound file) container is either a legacy ``.xls`` (checked for a ``FILEPASS`` record with
  msoffcrypto-tool) or an encrypted OOXML package (``EncryptionInfo`` + ``EncryptedPackage`` streams).

The file is read once, into memory (it is at most ``max_bytes``), and inspected from those bytes. The result
carries the facts of the file (size, SHA-256, modification time) and at most one
finding (``file-unreadable`` or ``file-encrypted``); ``finding is None`` means the file may be parsed as
``format``.

Limitation: sizes are taken from the zip central directory. Python's :mod:`zipfile` (used by openpyxl)
never returns more bytes than a member declares, so a directory that under-declares cannot inflate
beyond what was checked here through it; other readers may not have that guarantee.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .clock import vietnam_time
from .findings import Finding
from .fsutil import os_reason

MB = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * MB
DEFAULT_MAX_UNCOMPRESSED = 200 * MB
DEFAULT_MAX_RATIO = 200
DEFAULT_MAX_MEMBERS = 10_000

RATIO_FLOOR = 1 * MB  # the per-member ratio is only judged for members declaring more than this
SMALL_PART_LIMIT = 4 * MB  # [Content_Types].xml, the ODS manifest: read whole, but never more than this
DIRECTORY_BYTES_PER_MEMBER = 256  # a zip directory entry is 46 bytes + name (+ extras); xlsx ones ~100-150
PROLOG_LIMIT = 64 * 1024  # bytes of an XML part read while looking for its root element
CHUNK = 1 * MB

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# extension -> the format a file with that extension should contain
WORKBOOK_EXTENSIONS = {
    ".xlsx": "xlsx",
    ".xltx": "xlsx",
    ".xlsm": "xlsm",
    ".xltm": "xlsm",
    ".xls": "xls",
    ".xlt": "xls",
    ".ods": "ods",
    ".ots": "ods",
}
_FAMILY = {"xlsx": "ooxml", "xlsm": "ooxml", "xls": "xls", "ods": "ods"}

# kinds (SafetyResult.kind) that make a file with another extension count as a submission
SUBMISSION_KINDS = frozenset(
    {
        "xlsx",
        "xlsm",
        "xls",
        "ods",
        "xlsb",
        "encrypted-ooxml",
        "encrypted-xls",
        "encrypted-ods",
        "encrypted-zip",
        "zip-of-workbooks",
    }
)

_OOXML_MAIN_TYPES = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": "xlsx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.main+xml": "xlsm",
    "application/vnd.ms-excel.template.macroenabled.main+xml": "xlsm",
    "application/vnd.ms-excel.sheet.binary.macroenabled.main": "xlsb",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": "docx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml": "docx",
    "application/vnd.ms-word.document.macroenabled.main+xml": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": "pptx",
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml": "pptx",
    "application/vnd.ms-powerpoint.presentation.macroenabled.main+xml": "pptx",
}
ODS_MIMETYPES = {
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.spreadsheet-template",
}

# magic bytes of common non-workbook files -> kind
_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x1f\x8b", "gzip"),
    (b"{\\rtf", "rtf"),
    (b"MZ", "exe"),
)

# kind -> how to name it in a message
_KIND_NAMES = {
    "pdf": "tệp PDF",
    "png": "ảnh PNG",
    "jpeg": "ảnh JPEG",
    "gif": "ảnh GIF",
    "rar": "tệp nén RAR",
    "7z": "tệp nén 7-Zip",
    "gzip": "tệp nén gzip",
    "zip": "tệp nén ZIP",
    "rtf": "văn bản RTF",
    "exe": "tệp chương trình (.exe)",
    "html": "trang web HTML",
    "spreadsheetml2003": "tệp “Bảng tính XML 2003” của Excel",
    "fods": "bảng tính OpenDocument dạng phẳng (.fods)",
    "xml": "tệp XML",
    "csv": "tệp CSV",
    "text": "tệp văn bản thuần",
    "docx": "văn bản Word (.docx)",
    "doc": "văn bản Word 97–2003 (.doc)",
    "pptx": "bản trình chiếu PowerPoint (.pptx)",
    "ppt": "bản trình chiếu PowerPoint 97–2003 (.ppt)",
    "odt": "văn bản OpenDocument (.odt)",
    "odp": "bản trình chiếu OpenDocument (.odp)",
    "odf": "tài liệu OpenDocument không phải bảng tính",
    "ole": "tệp Office cũ không phải sổ tính Excel",
    "binary": "tệp không rõ định dạng",
}

_SAVE_AS_XLSX = "Hãy mở tệp bằng Excel, chọn Tệp → Lưu thành → Sổ làm việc Excel (*.xlsx) rồi gửi lại tệp mới."
_RESEND_ORIGINAL = "Hãy gửi lại đúng tệp Excel (.xlsx) của biểu mẫu đã điền số liệu."
_UNZIP = "Hãy giải nén và gửi từng tệp Excel (.xlsx) bên trong."
_KIND_ADVICE = {
    "pdf": "Hãy gửi lại tệp Excel gốc (.xlsx) của biểu mẫu, không gửi bản PDF hay bản chụp.",
    "png": "Hãy gửi lại tệp Excel gốc (.xlsx) của biểu mẫu, không gửi ảnh chụp.",
    "jpeg": "Hãy gửi lại tệp Excel gốc (.xlsx) của biểu mẫu, không gửi ảnh chụp.",
    "gif": "Hãy gửi lại tệp Excel gốc (.xlsx) của biểu mẫu, không gửi ảnh chụp.",
    "html": _SAVE_AS_XLSX,
    "spreadsheetml2003": _SAVE_AS_XLSX,
    "fods": "Hãy mở tệp bằng LibreOffice hoặc Excel và lưu thành .xlsx hoặc .ods rồi gửi lại.",
    "csv": "Hãy điền số liệu vào đúng biểu mẫu Excel đã được gửi (không xuất ra CSV) và gửi lại tệp .xlsx.",
    "text": _RESEND_ORIGINAL,
    "rar": _UNZIP,
    "7z": _UNZIP,
    "gzip": _UNZIP,
    "zip": _RESEND_ORIGINAL,
}


@dataclass(frozen=True)
class FileFacts:
    size: int
    sha256: str | None  # None when the file was too big to be hashed
    modified: dt.datetime  # naive local time, from the file's mtime


@dataclass
class SafetyResult:
    """What :func:`inspect_workbook` decided about one file.

    ``format`` is the readable workbook format found in the content (``None`` when the file must not be
    parsed); ``finding`` is the error to report (``None`` when the file may be parsed); ``kind`` is a
    short tag for what the content turned out to be (``"xlsx"``, ``"pdf"``, ``"encrypted-ooxml"``,
    ``"zip-bomb"``, ``"empty"``...), for logs and tests.
    """

    path: Path
    format: str | None
    finding: Finding | None
    size: int | None = None
    sha256: str | None = None
    modified: dt.datetime | None = None
    kind: str | None = None
    data: bytes | None = field(default=None, repr=False)  # the file's bytes, when asked for (``keep_data``)
    members: dict[str, zipfile.ZipInfo] = field(default_factory=dict, repr=False)  # zip directory (``keep_data``)

    @property
    def ok(self) -> bool:
        return self.finding is None

    @property
    def extension_matches(self) -> bool:
        """Whether the extension agrees with the content (.xlsx and .xlsm count as one family)."""
        expected = WORKBOOK_EXTENSIONS.get(self.path.suffix.lower())
        return bool(expected and self.format and _FAMILY[expected] == _FAMILY[self.format])


class _Reject(Exception):
    """Internal: stop inspecting with this finding."""

    def __init__(self, kind: str, code: str, message: str):
        super().__init__(message)
        self.kind, self.code, self.message = kind, code, message


# ---------------------------------------------------------------------------------------------- helpers


def _open(path: Path) -> BinaryIO:
    return open(path, "rb")  # the caller closes it


def _size(n: float) -> str:
    """A size as people read it: "850 byte", "97 KB", "62,5 MB" (Vietnamese decimal comma)."""
    if n < 1024:
        return f"{int(n)} byte"
    if n < MB:
        return f"{max(1, round(n / 1024))} KB"
    value = n / MB
    if value >= 100:
        return f"{_int(round(value))} MB"
    return f"{value:.1f}".removesuffix(".0").replace(".", ",") + " MB"


def _int(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def _ext_phrase(path: Path) -> str:
    return f"đuôi {path.suffix}" if path.suffix else "không có đuôi"


def _not_a_workbook(path: Path, kind: str, detail: str = "", advice: str | None = None) -> _Reject:
    """A file whose content is something else than a spreadsheet; say so, and whether the extension lies."""
    what = _KIND_NAMES.get(kind, _KIND_NAMES["binary"])
    advice = advice or _KIND_ADVICE.get(kind, _RESEND_ORIGINAL)
    if path.suffix.lower() in WORKBOOK_EXTENSIONS:
        head = (
            f"Tệp {path.name} thực chất là {what}{detail}, chỉ mang {_ext_phrase(path)} nên không phải sổ tính Excel."
        )
    else:
        head = f"Tệp {path.name} là {what}{detail}, không phải sổ tính Excel."
    return _Reject(kind, "file-unreadable", f"{head} {advice}")


def _corrupt(path: Path, kind: str, what: str) -> _Reject:
    return _Reject(
        kind,
        "file-unreadable",
        f"Tệp {path.name} bị hỏng hoặc chưa tải về hết ({what}) nên không đọc được. "
        "Hãy mở thử bằng Excel; nếu không mở được, xin đơn vị gửi lại tệp.",
    )


def _suspicious(path: Path, kind: str, what: str) -> _Reject:
    return _Reject(
        kind,
        "file-unreadable",
        f"Tệp {path.name} có cấu trúc bất thường ({what}), có thể là tệp độc hại, nên không được mở. "
        "Nếu tệp do đơn vị tự lập, hãy mở bằng Excel, lưu thành một tệp .xlsx mới rồi gửi lại; "
        "nếu không rõ nguồn gốc, đừng mở tệp.",
    )


def _encrypted_message(path: Path) -> str:
    return (
        f"Tệp {path.name} có mật khẩu nên không đọc được. "
        "Hãy gỡ mật khẩu (Tệp → Thông tin → Bảo vệ sổ làm việc) rồi gửi lại."
    )


def _os_error_message(path: Path, exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        reason = "không có quyền đọc tệp"
        advice = "Hãy cấp quyền đọc cho tệp (hoặc đóng chương trình đang khóa tệp) rồi chạy lại."
    elif isinstance(exc, FileNotFoundError):
        reason = "không tìm thấy tệp"
        advice = "Hãy kiểm tra lại đường dẫn hoặc chép lại tệp vào thư mục rồi chạy lại."
    elif isinstance(exc, IsADirectoryError):
        reason = "đây là một thư mục, không phải tệp"
        advice = "Hãy chọn tệp Excel nằm trong thư mục đó."
    else:
        reason = os_reason(exc)
        advice = "Hãy chép lại tệp vào máy rồi chạy lại."
    return f"Không mở được tệp {path.name}: {reason}. {advice}"


def _hash_handle(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    fh.seek(0)
    for chunk in iter(lambda: fh.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _facts_from_handle(fh: BinaryIO, max_bytes: int | None) -> FileFacts:
    st = os.fstat(fh.fileno())
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "Is a directory")
    size = st.st_size
    sha = _hash_handle(fh) if max_bytes is None or size <= max_bytes else None
    return FileFacts(size=size, sha256=sha, modified=vietnam_time(st.st_mtime))


def file_facts(path: Path | str) -> FileFacts:
    """Size, SHA-256 (streamed in 1 MB chunks, constant memory) and modification time of a file.

    Raises OSError when the file cannot be opened.
    """
    with _open(Path(path)) as fh:
        return _facts_from_handle(fh, None)


# --------------------------------------------------------------------------------------- non-zip content


def _looks_like_text(head: bytes) -> str | None:
    """The text (decoded) of a head that looks like a text file, else None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head[2 : len(head) - (len(head) % 2)].decode("utf-16-le" if head[0] == 0xFF else "utf-16-be", "replace")
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if b"\x00" in head:
        # UTF-16 without a BOM: every other byte is NUL
        if len(head) >= 4 and head[1::2].count(0) > len(head) // 3:
            return head[: len(head) - (len(head) % 2)].decode("utf-16-le", "replace")
        if len(head) >= 4 and head[0::2].count(0) > len(head) // 3:
            return head[: len(head) - (len(head) % 2)].decode("utf-16-be", "replace")
        return None
    controls = sum(1 for b in head if b < 0x20 and b not in (0x09, 0x0A, 0x0D, 0x0C))
    if controls > max(1, len(head) // 100):
        return None
    return head.decode("utf-8", "replace")


def _text_kind(text: str) -> str:
    start = text.lstrip("\ufeff \t\r\n").lower()
    if start.startswith("<"):
        sample = start[:8192]
        if "urn:schemas-microsoft-com:office:spreadsheet" in sample or 'progid="excel.sheet"' in sample:
            return "spreadsheetml2003"
        if "<html" in sample or "<!doctype html" in sample or "<table" in sample or "<head" in sample:
            return "html"
        if "office:document" in sample and "opendocument.spreadsheet" in sample:
            return "fods"
        return "xml"
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if len(lines) >= 2:
        for sep in (",", ";", "\t", "|"):
            counts = [line.count(sep) for line in lines[:-1] or lines]  # the last line may be cut
            if counts[0] >= 1 and all(c == counts[0] for c in counts):
                return "csv"
    elif len(lines) == 1 and any(lines[0].count(sep) >= 2 for sep in (",", ";", "\t")):
        return "csv"
    return "text"


def _classify_other(path: Path, head: bytes) -> _Reject:
    if b"%PDF-" in head[:1024]:
        return _not_a_workbook(path, "pdf")
    for magic, kind in _MAGICS:
        if head.startswith(magic):
            return _not_a_workbook(path, kind)
    text = _looks_like_text(head)
    if text is None:
        return _not_a_workbook(path, "binary")
    kind = _text_kind(text)
    if kind == "html" and path.suffix.lower() == ".xls":
        detail = " (nhiều phần mềm xuất báo cáo lưu trang web thành tệp .xls)"
        return _not_a_workbook(path, kind, detail)
    return _not_a_workbook(path, kind)


# --------------------------------------------------------------------------------------------------- OLE


def _inspect_ole(path: Path, fh: BinaryIO) -> str:
    import olefile

    fh.seek(0)
    try:
        ole = olefile.OleFileIO(fh)
    except Exception as exc:  # olefile raises many kinds on malformed input
        raise _corrupt(path, "ole-corrupt", "cấu trúc tệp Office 97–2003 không hợp lệ") from exc
    try:
        if ole.exists("EncryptionInfo") or ole.exists("EncryptedPackage"):
            raise _Reject("encrypted-ooxml", "file-encrypted", _encrypted_message(path))
        for stream in ("Workbook", "Book"):  # BIFF8 (Excel 97–2003), BIFF5 (Excel 5.0/95)
            if ole.exists(stream):
                _check_xls_encryption(path, fh, ole, stream)
                return "xls"
        if ole.exists("WordDocument"):
            raise _not_a_workbook(path, "doc")
        if ole.exists("PowerPoint Document"):
            raise _not_a_workbook(path, "ppt")
        raise _not_a_workbook(path, "ole")
    finally:
        ole.close()


_BIFF_BOF = (0x0809, 0x0409, 0x0209, 0x0009)
_BIFF_FILEPASS, _BIFF_EOF = 0x002F, 0x000A


def _biff_has_filepass(data: bytes) -> bool | None:
    """Whether the globals substream holds a FILEPASS record; None when the stream does not start with BOF."""
    if len(data) < 4 or struct.unpack_from("<H", data)[0] not in _BIFF_BOF:
        return None
    pos = 0
    while pos + 4 <= len(data):
        num, size = struct.unpack_from("<HH", data, pos)
        if num == _BIFF_FILEPASS:
            return True
        if num == _BIFF_EOF:
            return False
        pos += 4 + size
    return False


def _check_xls_encryption(path: Path, fh: BinaryIO, ole, stream: str) -> None:
    """Raise file-encrypted when the legacy workbook has a FILEPASS record (RC4 or XOR obfuscation)."""
    from msoffcrypto.format.xls97 import Xls97File

    xls = None
    encrypted: bool | None
    if stream == "Workbook":
        fh.seek(0)
        try:
            xls = Xls97File(fh)
            encrypted = xls.is_encrypted()
        except Exception:  # msoffcrypto is strict (e.g. a globals substream without EOF): look ourselves
            xls = None
    if xls is None:
        try:
            data = ole.openstream(stream).read()
        except Exception as exc:
            raise _corrupt(path, "xls-corrupt", "không đọc được dữ liệu của sổ tính Excel 97–2003") from exc
        encrypted = _biff_has_filepass(data)
        if encrypted is None:
            raise _corrupt(path, "xls-corrupt", "bản ghi đầu của sổ tính Excel 97–2003 không hợp lệ")
    if not encrypted:
        return
    # Excel encrypts "read-only recommended"/structure-protected .xls files with the built-in password
    # "VelvetSweatshop": the unit never typed a password, so give different advice.
    builtin = False
    if xls is not None:
        try:
            xls.load_key(password="VelvetSweatshop")
            builtin = True
        except Exception:
            builtin = False
    if builtin:
        raise _Reject(
            "encrypted-xls",
            "file-encrypted",
            f"Tệp {path.name} được Excel mã hóa do bật chế độ bảo vệ (không cần mật khẩu để mở) nên công cụ "
            "không đọc được. Hãy mở tệp bằng Excel, bỏ bảo vệ (Xem lại → Bảo vệ sổ làm việc; Tệp → Lưu thành → "
            "Công cụ → Tùy chọn chung, bỏ “Khuyến nghị chỉ đọc”), lưu thành .xlsx rồi gửi lại.",
        )
    raise _Reject("encrypted-xls", "file-encrypted", _encrypted_message(path))


# --------------------------------------------------------------------------------------------------- zip


def _zip_end_record(fh: BinaryIO, size: int) -> tuple[int, int, int]:
    """(member count, central directory size, central directory offset) from the end-of-central-directory record.

    Reads at most 64 KB + 98 bytes from the end of the file. Raises ValueError when there is none.
    """
    tail_len = min(size, 65535 + 22 + 20 + 56)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    while pos >= 0 and len(tail) - pos < 22:
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    if pos < 0:
        raise ValueError("no end of central directory")
    _sig, _disk, _cd_disk, _n_disk, count, cd_size, cd_offset, _clen = struct.unpack("<4s4H2LH", tail[pos : pos + 22])
    if count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        loc = pos - 20
        if loc < 0 or tail[loc : loc + 4] != b"PK\x06\x07":
            raise ValueError("zip64 locator missing")
        (eocd64,) = struct.unpack("<Q", tail[loc + 8 : loc + 16])
        if eocd64 + 56 > size:
            raise ValueError("zip64 record out of file")
        fh.seek(eocd64)
        rec = fh.read(56)
        if len(rec) < 56 or rec[:4] != b"PK\x06\x06":
            raise ValueError("zip64 record missing")
        count, cd_size, cd_offset = struct.unpack("<3Q", rec[32:56])
    return count, cd_size, cd_offset


def _check_directory(
    path: Path, infos: list[zipfile.ZipInfo], size: int, cd_offset: int, max_uncompressed: int, max_ratio: int
) -> None:
    """Judge the zip from its central directory alone: nothing is inflated here."""
    total = 0
    for info in infos:
        if info.header_offset + 30 > max(cd_offset, 0) or info.header_offset + info.compress_size > size:
            raise _corrupt(path, "zip-truncated", f"phần {info.filename} nằm ngoài phạm vi tệp")
        total += info.file_size
        if info.file_size > RATIO_FLOOR:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > max_ratio:
                raise _Reject(
                    "zip-bomb",
                    "file-unreadable",
                    f"Tệp {path.name} có dấu hiệu là “bom giải nén”: phần {info.filename} chỉ chiếm "
                    f"{_size(info.compress_size)} trong tệp nhưng khai báo tới {_size(info.file_size)} khi giải nén "
                    f"(gấp {_int(round(ratio))} lần, giới hạn {_int(max_ratio)} lần), nên không được mở. "
                    "Nếu tệp do đơn vị tự lập, hãy mở bằng Excel, lưu thành một tệp .xlsx mới rồi gửi lại; "
                    "nếu không rõ nguồn gốc, đừng mở tệp.",
                )
    if total > max_uncompressed:
        raise _Reject(
            "zip-bomb",
            "file-unreadable",
            f"Tệp {path.name} khi giải nén sẽ chiếm tới {_size(total)} (giới hạn {_size(max_uncompressed)}), "
            "có thể là “bom giải nén”, nên không được mở. Hãy xóa bớt các trang tính, hình ảnh không cần thiết, "
            "lưu thành một tệp .xlsx mới rồi gửi lại.",
        )
    # Members whose data overlap (several entries over the same compressed bytes: a known way to build a zip
    # bomb out of a small file) are never written by Excel or LibreOffice.
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for a, b in zip(ordered, ordered[1:]):
        if a.header_offset + 30 + len(a.orig_filename) + a.compress_size > b.header_offset:
            raise _suspicious(path, "zip-overlap", f"phần {a.filename} và phần {b.filename} chồng lên nhau")
    for info in infos:
        if info.flag_bits & 0x1:
            raise _Reject(
                "encrypted-zip",
                "file-encrypted",
                f"Tệp {path.name} là tệp nén có đặt mật khẩu (phần {info.filename} bị mã hóa) nên không đọc được. "
                "Hãy gửi lại tệp Excel không đặt mật khẩu.",
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _suspicious(
                path, "zip-method", f"phần {info.filename} dùng kiểu nén {info.compress_type} mà Excel không dùng"
            )


def _read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    if info.file_size > SMALL_PART_LIMIT:
        raise _suspicious(path, "zip-part-too-big", f"phần {info.filename} lớn bất thường: {_size(info.file_size)}")
    try:
        with zf.open(info) as member:
            return member.read(SMALL_PART_LIMIT + 1)
    except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError on a cut member...
        raise _corrupt(path, "zip-corrupt", f"không giải nén được phần {info.filename}") from exc


def _dtd_reject(path: Path, part: str) -> _Reject:
    return _Reject(
        "xml-bomb",
        "file-unreadable",
        f"Tệp {path.name} chứa khai báo DOCTYPE/ENTITY trong phần {part} — điều Excel và LibreOffice không bao giờ "
        "tạo ra, dấu hiệu của tệp độc hại (“bom XML”) — nên không được mở. Nếu tệp do đơn vị tự lập, hãy mở bằng "
        "Excel, lưu thành một tệp .xlsx mới rồi gửi lại; nếu không rõ nguồn gốc, đừng mở tệp.",
    )


def _parse_small_xml(data: bytes, path: Path, part: str):
    from xml.etree.ElementTree import ParseError

    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise _dtd_reject(path, part) from exc
    except ParseError as exc:
        raise _corrupt(path, "zip-corrupt", f"phần {part} không phải XML hợp lệ") from exc


def _prolog_verdict(buf: bytes, final: bool) -> str:
    """Scan an XML part's prolog: "dtd" when a markup declaration comes before the root, "root", or "more"."""
    if buf.startswith((b"\xff\xfe", b"\xfe\xff")):
        body = buf[2 : len(buf) - (len(buf) % 2)]
        text = body.decode("utf-16-le" if buf[0] == 0xFF else "utf-16-be", "ignore")
    elif buf.startswith(b"<\x00") or buf.startswith(b"\x00<"):
        text = buf[: len(buf) - (len(buf) % 2)].decode("utf-16-le" if buf[0] else "utf-16-be", "ignore")
    else:
        text = buf.decode("latin-1")
    i = 3 if text.startswith("\xef\xbb\xbf") else (1 if text.startswith("\ufeff") else 0)
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            return "root" if final else "more"
        if not final and n - i < 4:  # "<", "<!", "<!-": a comment or a declaration? read on
            return "more"
        if text.startswith("<?", i):
            end, close = text.find("?>", i + 2), 2
        elif text.startswith("<!--", i):
            end, close = text.find("-->", i + 4), 3
        elif text.startswith("<!", i):
            return "dtd"  # <!DOCTYPE, <!ENTITY...: a markup declaration before the root element
        else:
            return "root"  # the root element (or junk the parser will reject): the prolog is over
        if end < 0:
            return "root" if final else "more"
        i = end + close


def _member_head(data: bytes, info: zipfile.ZipInfo, n: int) -> tuple[bytes, bool] | None:
    """The first ``n`` bytes of a member inflated straight from the file's bytes, and whether that is the whole
    member; ``None`` when the local header is not as expected or the data does not inflate (the caller then goes
    through :mod:`zipfile`, which says what is wrong). Several times cheaper than ``ZipFile.open`` per member, and
    the prolog of every part of every file is looked at."""
    h = info.header_offset
    if data[h : h + 4] != b"PK\x03\x04" or len(data) < h + 30:
        return None
    name_len, extra_len = struct.unpack_from("<HH", data, h + 26)
    name = data[h + 30 : h + 30 + name_len]
    try:  # the local header must name the member as the directory does (zipfile checks this too)
        local_name = name.decode("utf-8" if info.flag_bits & 0x800 else "cp437")
    except UnicodeDecodeError:
        return None
    if local_name != info.orig_filename:
        return None
    start = h + 30 + name_len + extra_len
    body = memoryview(data)[start : start + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        return bytes(body[:n]), len(body) <= n
    # n bytes of output never take much more than n bytes of deflate input (stored blocks add 5 bytes per 64 KB);
    # a member that would (empty blocks, padding) is simply not "complete" here, and zipfile reads it.
    bound = n + n // 4096 + 1024
    feed = body if len(body) <= bound else body[:bound]
    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        head = inflater.decompress(feed, max(n, 1))  # (0 would mean no limit)
    except zlib.error:
        return None
    return head, inflater.eof and not inflater.unconsumed_tail and len(feed) == len(body)


def read_member(data: bytes, info: zipfile.ZipInfo) -> bytes:
    """A whole member of a zip that passed :func:`inspect_workbook`, inflated from the file's bytes.

    Its size is bounded by the directory (checked by the gate) and its CRC is checked; anything unexpected goes
    through :mod:`zipfile` instead, which raises ``BadZipFile`` (or ``zlib.error``) for a damaged member.
    """
    got = _member_head(data, info, info.file_size + 1)  # one byte more than declared: a lie shows
    if got is not None and got[1] and len(got[0]) == info.file_size and zlib.crc32(got[0]) == info.CRC:
        return got[0]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.read(info)


def _scan_xml_prologs(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], path: Path, data: bytes | None = None) -> None:
    """Read each part only until its root element starts; refuse any DOCTYPE/ENTITY declaration.

    Every member is looked at, whatever its name (a worksheet part may be called anything the content types
    say); a binary member stops the scan at its first chunk. With the file's bytes at hand, the first 512 bytes of
    each member are inflated directly (:func:`_member_head`); a prolog longer than that, or a member that does
    not inflate that way, is read through :mod:`zipfile` in 4 KB chunks.
    """
    for info in infos:
        if info.is_dir() or info.file_size == 0:
            continue
        head = _member_head(data, info, 512) if data is not None else None
        if head is not None:
            verdict = _prolog_verdict(head[0], final=head[1])
            if verdict == "dtd":
                raise _dtd_reject(path, info.filename)
            if verdict == "root":
                continue
        buf = b""
        try:
            with zf.open(info) as member:
                while True:
                    chunk = member.read(4096)
                    buf += chunk
                    verdict = _prolog_verdict(buf, final=not chunk)
                    if verdict == "dtd":
                        raise _dtd_reject(path, info.filename)
                    if verdict == "root":
                        break
                    if len(buf) >= PROLOG_LIMIT:
                        raise _suspicious(
                            path, "xml-prolog", f"phần {info.filename} mở đầu bằng {_int(len(buf))} byte chú thích"
                        )
        except _Reject:
            raise
        except Exception as exc:
            raise _corrupt(path, "zip-corrupt", f"không giải nén được phần {info.filename}") from exc


def _inspect_zip(
    path: Path,
    fh: BinaryIO,
    size: int,
    max_uncompressed: int,
    max_ratio: int,
    max_members: int,
    data: bytes | None,
    members: dict[str, zipfile.ZipInfo] | None = None,
) -> str:
    try:
        count, cd_size, cd_offset = _zip_end_record(fh, size)
    except (ValueError, struct.error, OSError) as exc:
        raise _corrupt(path, "zip-truncated", "thiếu phần mục lục ở cuối tệp nén") from exc
    if count > max_members:
        raise _suspicious(path, "zip-members", f"chứa tới {_int(count)} thành phần, giới hạn {_int(max_members)}")
    if cd_size > max_members * DIRECTORY_BYTES_PER_MEMBER:  # the count may lie; the directory size bounds memory
        raise _suspicious(path, "zip-members", f"mục lục tệp nén lớn bất thường: {_size(cd_size)}")
    if cd_offset + cd_size > size:
        raise _corrupt(path, "zip-truncated", "mục lục của tệp nén bị cắt cụt")
    fh.seek(0)
    try:
        zf = zipfile.ZipFile(fh)
    except Exception as exc:  # BadZipFile, or struct/value errors on a mangled directory
        raise _corrupt(path, "zip-truncated", "mục lục của tệp nén không hợp lệ") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise _suspicious(
                path, "zip-members", f"chứa tới {_int(len(infos))} thành phần, giới hạn {_int(max_members)}"
            )
        _check_directory(path, infos, size, getattr(zf, "start_dir", cd_offset), max_uncompressed, max_ratio)
        fmt = _identify_zip(path, zf, infos)
        _scan_xml_prologs(zf, infos, path, data)
        if members is not None:
            members.update((info.filename, info) for info in infos)
        return fmt


def _identify_zip(path: Path, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> str:
    by_name = {info.filename.lower().lstrip("/"): info for info in infos}
    if "[content_types].xml" in by_name:
        return _identify_ooxml(path, zf, by_name)
    if "mimetype" in by_name:
        return _identify_odf(path, zf, by_name)
    if "xl/workbook.xml" in by_name:
        raise _not_a_workbook(
            path, "zip", " (giống sổ tính Excel nhưng thiếu phần [Content_Types].xml)", advice=_SAVE_AS_XLSX
        )
    inner = [i.filename.rsplit("/", 1)[-1] for i in infos if Path(i.filename).suffix.lower() in WORKBOOK_EXTENSIONS]
    if inner:
        shown = ", ".join(inner[:5]) + (", …" if len(inner) > 5 else "")
        reject = _not_a_workbook(path, "zip", f" chứa {shown}", advice=_UNZIP)
        reject.kind = "zip-of-workbooks"
        raise reject
    raise _not_a_workbook(path, "zip", " (không có phần [Content_Types].xml và xl/workbook.xml của sổ tính Excel)")


def _identify_ooxml(path: Path, zf: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]) -> str:
    root = _parse_small_xml(_read_small(zf, by_name["[content_types].xml"], path), path, "[Content_Types].xml")
    found: list[tuple[str, str]] = []
    for el in root:
        if el.tag.rsplit("}", 1)[-1] == "Override":
            kind = _OOXML_MAIN_TYPES.get((el.get("ContentType") or "").strip().lower())
            if kind:
                found.append((kind, (el.get("PartName") or "").lower().lstrip("/")))
    for kind, part in found:
        if kind in ("xlsx", "xlsm", "xlsb") and part in by_name:
            if kind == "xlsb":
                raise _Reject(
                    "xlsb",
                    "file-unreadable",
                    f"Tệp {path.name} là sổ làm việc nhị phân của Excel (.xlsb), công cụ không đọc được dạng này. "
                    + _SAVE_AS_XLSX,
                )
            if kind == "xlsx" and "xl/vbaproject.bin" in by_name:
                kind = "xlsm"
            return kind
    for kind, _part in found:
        if kind in ("docx", "pptx"):
            raise _not_a_workbook(path, kind)
    if "xl/workbook.xml" in by_name:
        return "xlsm" if "xl/vbaproject.bin" in by_name else "xlsx"
    raise _not_a_workbook(path, "zip", " (gói Office không chứa sổ tính: thiếu xl/workbook.xml)")


def _identify_odf(path: Path, zf: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]) -> str:
    info = by_name["mimetype"]
    if info.file_size > 256:
        raise _not_a_workbook(path, "zip", " (phần mimetype không hợp lệ)")
    mimetype = _read_small(zf, info, path).decode("ascii", "replace").strip()
    if mimetype not in ODS_MIMETYPES:
        if mimetype.startswith("application/vnd.oasis.opendocument."):
            sub = mimetype.rsplit(".", 1)[-1]
            kind = {"text": "odt", "presentation": "odp"}.get(sub, "odf")
            raise _not_a_workbook(path, kind, "" if kind != "odf" else f" ({sub})")
        raise _not_a_workbook(path, "zip", f" (mimetype “{mimetype[:80]}” không phải bảng tính OpenDocument)")
    manifest = by_name.get("meta-inf/manifest.xml")
    if manifest is not None:
        data = _read_small(zf, manifest, path)
        _parse_small_xml(data, path, "META-INF/manifest.xml")
        if b"encryption-data" in data:
            raise _Reject(
                "encrypted-ods",
                "file-encrypted",
                f"Tệp {path.name} có mật khẩu nên không đọc được. Hãy gỡ mật khẩu (trong LibreOffice: Tệp → Lưu thành, "
                "bỏ chọn “Lưu với mật khẩu”) rồi gửi lại.",
            )
    if "content.xml" not in by_name:
        raise _corrupt(path, "zip-corrupt", "bảng tính OpenDocument thiếu phần content.xml")
    return "ods"


# ------------------------------------------------------------------------------------------------ public


def inspect_workbook(
    path: Path | str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
    max_ratio: int = DEFAULT_MAX_RATIO,
    *,
    max_members: int = DEFAULT_MAX_MEMBERS,
    keep_data: bool = False,
) -> SafetyResult:
    """Decide, before any parsing, whether ``path`` can be read and as which format.

    Never raises for a bad file: problems come back as ``result.finding`` (``file-unreadable`` or
    ``file-encrypted``). The file is read once, whole, into memory (never more than ``max_bytes``; a bigger file
    is refused from its size alone), hashed, and inspected from those bytes: the head, the zip directory, a few
    small parts, the first 4 KB of every XML part. With ``keep_data`` the bytes of a file that may be parsed are
    kept in ``result.data``, so that the reader does not read the file again.
    """
    path = Path(path)
    result = SafetyResult(path=path, format=None, finding=None)
    try:
        fh = _open(path)
    except OSError as exc:
        result.kind = "os-error"
        result.finding = Finding("file-unreadable", _os_error_message(path, exc))
        return result
    try:
        with fh:
            facts, data = _read_facts(fh, max_bytes)
            result.size, result.sha256, result.modified = facts.size, facts.sha256, facts.modified
            source: BinaryIO = io.BytesIO(data) if data is not None else fh
            members: dict[str, zipfile.ZipInfo] = {}
            result.format = _inspect_handle(
                path, source, facts.size, max_bytes, max_uncompressed, max_ratio, max_members, data, members
            )
            result.kind = result.format
            if keep_data:
                result.data, result.members = data, members
    except _Reject as rej:
        result.format, result.kind = None, rej.kind
        result.finding = Finding(rej.code, rej.message)
    except OSError as exc:
        result.format, result.kind = None, "os-error"
        result.finding = Finding("file-unreadable", _os_error_message(path, exc))
    except Exception as exc:  # a gate must not crash a whole batch on one strange file
        result.format, result.kind = None, "internal-error"
        result.finding = Finding(
            "file-unreadable",
            f"Không kiểm tra được tệp {path.name} (lỗi {type(exc).__name__}) nên không đọc tệp này. Hãy mở tệp bằng "
            "Excel, lưu thành một tệp .xlsx mới rồi gửi lại.",
        )
    return result


def _read_facts(fh: BinaryIO, max_bytes: int) -> tuple[FileFacts, bytes | None]:
    """The file's facts and, when it is not bigger than ``max_bytes``, its bytes (hashed from them)."""
    st = os.fstat(fh.fileno())
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "Is a directory")
    modified = vietnam_time(st.st_mtime)
    if st.st_size > max_bytes:
        return FileFacts(size=st.st_size, sha256=None, modified=modified), None
    data = fh.read(st.st_size + 1)  # (not read(max_bytes + 1): that would allocate max_bytes for every file)
    if len(data) > st.st_size:  # the file grew since fstat: what it holds now, up to the limit
        data += fh.read(max_bytes + 1 - len(data))
    if len(data) > max_bytes:
        return FileFacts(size=len(data), sha256=None, modified=modified), None
    return FileFacts(size=len(data), sha256=hashlib.sha256(data).hexdigest(), modified=modified), data


def _inspect_handle(
    path: Path,
    fh: BinaryIO,
    size: int,
    max_bytes: int,
    max_uncompressed: int,
    max_ratio: int,
    max_members: int,
    data: bytes | None = None,
    members: dict[str, zipfile.ZipInfo] | None = None,
) -> str:
    if size == 0:
        raise _Reject(
            "empty",
            "file-unreadable",
            f"Tệp {path.name} rỗng (0 byte), có thể do tải về hoặc sao chép bị lỗi. Hãy xin đơn vị gửi lại tệp.",
        )
    if size > max_bytes:
        raise _Reject(
            "too-big",
            "file-unreadable",
            f"Tệp {path.name} quá lớn ({_size(size)}, giới hạn {_size(max_bytes)}) nên không được mở. Hãy xóa bớt "
            "các trang tính, hình ảnh không cần thiết, lưu thành .xlsx rồi gửi lại.",
        )
    fh.seek(0)
    head = fh.read(8192)
    if head.startswith(ZIP_MAGICS):
        return _inspect_zip(path, fh, size, max_uncompressed, max_ratio, max_members, data, members)
    if head.startswith(OLE_MAGIC):
        return _inspect_ole(path, fh)
    if head.startswith(b"PK"):
        raise _corrupt(path, "zip-truncated", "phần đầu tệp nén không hợp lệ")
    raise _classify_other(path, head)


_LOCK_FILE = re.compile(r"^(~\$|\.~lock\.)")


def is_probably_workbook(path: Path | str) -> bool:
    """Whether a file in an inbox should be treated as a submitted workbook (and then inspected).

    True for any file with a spreadsheet extension, whatever its content (a PDF renamed to .xlsx is a failed
    submission to report, not a file to skip); for a file with another or no extension whose content is a
    spreadsheet, possibly encrypted (an .xlsx saved as ``bao-cao`` or ``bao-cao.dat``); and for a zip holding
    workbooks (reported as "unzip and send each workbook"). False for Excel/LibreOffice lock files (``~$…``,
    ``.~lock.…#``), directories, other files and unreadable non-spreadsheet names. Never raises.
    """
    path = Path(path)
    if _LOCK_FILE.match(path.name):
        return False
    if path.suffix.lower() in WORKBOOK_EXTENSIONS:
        return not path.is_dir()
    try:
        with _open(path) as fh:
            head = fh.read(8)
    except OSError:
        return False
    if not head.startswith(ZIP_MAGICS + (OLE_MAGIC,)):
        return False
    return inspect_workbook(path).kind in SUBMISSION_KINDS
