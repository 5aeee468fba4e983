"""toolkit.safety: hostile and broken files are refused before parsing, good workbooks pass."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import shutil
import struct
import subprocess
import uuid
import zipfile
import zlib
from hashlib import md5
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from toolkit import safety
from toolkit.clock import VIETNAM_TIME
from toolkit.safety import SafetyResult, file_facts, inspect_workbook, is_probably_workbook

CT_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
CT_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
CT_XLSB = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"


# --------------------------------------------------------------------------------------------- builders


def write_xlsx(path: Path) -> Path:
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("PL01")
    ws.write("A1", "Xã Hòa Sơn")
    ws.write("B1", 12)
    ws.write("A2", "<!DOCTYPE html> <!ENTITY lol 'x'>")  # text in a cell is escaped: no false alarm
    wb.close()
    return path


def rezip(src: Path, dst: Path, replace: dict[str, bytes] | None = None, extra: dict[str, bytes] | None = None) -> Path:
    """Copy a zip member by member, replacing or adding members."""
    replace, extra = replace or {}, extra or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info.filename)))
        for name, data in extra.items():
            zout.writestr(name, data)
    return dst


def content_types(main_part: str, content_type: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{main_part}" ContentType="{content_type}"/></Types>'
    ).encode()


def write_ods(
    path: Path, mimetype: str = "application/vnd.oasis.opendocument.spreadsheet", manifest: bytes | None = None
):
    """A minimal but real OpenDocument spreadsheet (mimetype stored first, as ODF requires)."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="PL01"><table:table-row>'
        '<table:table-cell office:value-type="string"><text:p>Xã Hòa Sơn</text:p></table:table-cell>'
        '<table:table-cell office:value-type="float" office:value="12"><text:p>12</text:p></table:table-cell>'
        "</table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        manifest
        or (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
            f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
            "</manifest:manifest>"
        ).encode()
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        zf.writestr("content.xml", content)
        zf.writestr("META-INF/manifest.xml", manifest)
    return path


def soffice_convert(src: Path, fmt: str, outdir: Path) -> Path:
    profile = outdir / f"lo-profile-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            fmt,
            "--outdir",
            str(outdir),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    out = outdir / f"{src.stem}.{fmt}"
    if not out.exists():
        raise RuntimeError(f"LibreOffice did not write {out}")
    shutil.rmtree(profile, ignore_errors=True)
    return out


@pytest.fixture(scope="session")
def lo_files(tmp_path_factory) -> dict[str, Path]:
    """A .xls and an .ods saved by a real LibreOffice (skipped when soffice is not installed)."""
    if not shutil.which("soffice"):
        pytest.skip("LibreOffice (soffice) is not on PATH")
    outdir = tmp_path_factory.mktemp("lo")
    src = write_xlsx(outdir / "nguon.xlsx")
    try:
        return {fmt: soffice_convert(src, fmt, outdir) for fmt in ("xls", "ods")}
    except (subprocess.SubprocessError, RuntimeError, OSError) as exc:
        pytest.skip(f"LibreOffice conversion failed: {exc}")


def assert_refused(result: SafetyResult, code: str, *fragments: str) -> None:
    assert result.finding is not None, result
    assert result.finding.code == code
    assert result.finding.is_error
    assert result.format is None
    message = result.finding.message
    assert result.path.name in message
    assert "Hãy" in message or "đừng" in message  # says what to do
    for fragment in fragments:
        assert fragment in message, message


@pytest.fixture
def good_xlsx(tmp_path) -> Path:
    return write_xlsx(tmp_path / "218_luc-nam.xlsx")


def forbid_inflating(monkeypatch) -> None:
    """From now on, any attempt to read a zip member fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a zip member was opened: the check must use the central directory only")

    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "read", refuse)


# ---------------------------------------------------------------------------------------------- good files


def test_good_xlsx_from_xlsxwriter(good_xlsx):
    result = inspect_workbook(good_xlsx)
    assert result.finding is None and result.ok
    assert result.format == "xlsx" and result.kind == "xlsx"
    data = good_xlsx.read_bytes()
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert isinstance(result.modified, dt.datetime)
    assert result.extension_matches


def test_good_xlsx_from_openpyxl(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "PL02"
    wb.active["A1"] = "Thị trấn Đồi Ngô"
    wb.save(tmp_path / "bao-cao.xlsx")
    result = inspect_workbook(tmp_path / "bao-cao.xlsx")
    assert result.finding is None and result.format == "xlsx"


def test_good_xlsm_detected_as_macro_enabled(tmp_path):
    vba = tmp_path / "vbaProject.bin"
    vba.write_bytes(b"\x00" * 512)  # xlsxwriter only copies it into the package
    wb = xlsxwriter.Workbook(str(tmp_path / "co-macro.xlsm"))
    wb.add_worksheet().write("A1", 1)
    wb.add_vba_project(str(vba))
    wb.close()
    result = inspect_workbook(tmp_path / "co-macro.xlsm")
    assert result.finding is None and result.format == "xlsm" and result.extension_matches


def test_good_minimal_ods(tmp_path):
    path = write_ods(tmp_path / "bao-cao.ods")
    result = inspect_workbook(path)
    assert result.finding is None and result.format == "ods"
    assert CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()[0][0] == "Xã Hòa Sơn"


@pytest.mark.libreoffice
@pytest.mark.parametrize("fmt", ["xls", "ods"])
def test_good_files_saved_by_libreoffice(lo_files, fmt):
    path = lo_files[fmt]
    result = inspect_workbook(path)
    assert result.finding is None, result.finding
    assert result.format == fmt and result.extension_matches
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()[0][0] == "Xã Hòa Sơn"


def test_xlsx_content_with_xls_extension_is_read_by_content(good_xlsx, tmp_path):
    lying = tmp_path / "bao-cao.xls"
    shutil.copy(good_xlsx, lying)
    result = inspect_workbook(lying)
    assert result.finding is None
    assert result.format == "xlsx"
    assert not result.extension_matches


# ------------------------------------------------------------------------------------- broken / not workbooks


def test_empty_file(tmp_path):
    path = tmp_path / "rong.xlsx"
    path.write_bytes(b"")
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "rỗng (0 byte)")
    assert result.size == 0 and result.kind == "empty"


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_zip(good_xlsx, tmp_path, keep):
    data = good_xlsx.read_bytes()
    path = tmp_path / "tai-do.xlsx"
    path.write_bytes(data[: int(len(data) * keep)])
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "bị hỏng hoặc chưa tải về hết")
    assert result.kind == "zip-truncated"


def test_zip_with_mangled_central_directory(good_xlsx, tmp_path):
    data = bytearray(good_xlsx.read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    data[cd : cd + 4] = b"XXXX"
    path = tmp_path / "hong.xlsx"
    path.write_bytes(bytes(data))
    assert_refused(inspect_workbook(path), "file-unreadable", "bị hỏng")


def test_pdf_renamed_to_xlsx(tmp_path):
    path = tmp_path / "bao-cao.xlsx"
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n")
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "thực chất là tệp PDF", "đuôi .xlsx", "không gửi bản PDF")
    assert result.kind == "pdf"


def test_pdf_with_pdf_extension_does_not_claim_a_lie(tmp_path):
    path = tmp_path / "bao-cao.pdf"
    path.write_bytes(b"%PDF-1.4\n%%EOF\n")
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "là tệp PDF, không phải sổ tính Excel")
    assert "thực chất" not in result.finding.message


def test_csv_renamed_to_xlsx(tmp_path):
    path = tmp_path / "bao-cao.xlsx"
    path.write_text("Mã xã;Tên xã;Tổng số\n01;Xã Hòa Sơn;12\n02;Thị trấn Đồi Ngô;7\n", encoding="utf-8")
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "thực chất là tệp CSV", "đuôi .xlsx")
    assert result.kind == "csv"


def test_html_saved_as_xls(tmp_path):
    path = tmp_path / "xuat-tu-phan-mem.xls"
    path.write_text(
        '<html xmlns:x="urn:schemas-microsoft-com:office:excel"><head><meta charset="utf-8"></head>'
        "<body><table><tr><td>Xã Hòa Sơn</td><td>12</td></tr></table></body></html>",
        encoding="utf-8",
    )
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "thực chất là trang web HTML", "đuôi .xls", "Lưu thành")
    assert result.kind == "html"


def test_spreadsheetml_2003_saved_as_xls(tmp_path):
    path = tmp_path / "xml2003.xls"
    path.write_text(
        '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="PL01"/></Workbook>',
        encoding="utf-8",
    )
    assert_refused(inspect_workbook(path), "file-unreadable", "Bảng tính XML 2003", "Lưu thành")


def test_plain_text_renamed_to_xlsx(tmp_path):
    path = tmp_path / "ghi-chu.xlsx"
    path.write_text("Kính gửi Sở, đơn vị xin gửi báo cáo chậm vì lý do khách quan.\n", encoding="utf-8")
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "thực chất là tệp văn bản thuần")


def test_image_and_unknown_binary(tmp_path):
    png = tmp_path / "chup-man-hinh.xlsx"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert_refused(inspect_workbook(png), "file-unreadable", "ảnh PNG", "không gửi ảnh chụp")
    junk = tmp_path / "rac.xlsx"
    junk.write_bytes(bytes(range(256)) * 4)
    assert_refused(inspect_workbook(junk), "file-unreadable", "tệp không rõ định dạng")


def test_zip_that_is_not_a_workbook(tmp_path):
    path = tmp_path / "bao-cao.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "xin chào")
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "tệp nén ZIP", "[Content_Types].xml")
    assert result.kind == "zip"


def test_zip_holding_workbooks_says_to_unzip(good_xlsx, tmp_path):
    path = tmp_path / "bao-cao-cac-xa.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(good_xlsx, "Hoa Son/218_luc-nam.xlsx")
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "chứa 218_luc-nam.xlsx", "giải nén")
    assert result.kind == "zip-of-workbooks"
    assert is_probably_workbook(path)


def test_workbook_xml_without_content_types(good_xlsx, tmp_path):
    path = tmp_path / "thieu.xlsx"
    with zipfile.ZipFile(good_xlsx) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            if info.filename != "[Content_Types].xml":
                zout.writestr(info.filename, zin.read(info.filename))
    assert_refused(inspect_workbook(path), "file-unreadable", "thiếu phần [Content_Types].xml")


def test_word_document_renamed_to_xlsx(tmp_path):
    path = tmp_path / "cong-van.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", content_types("word/document.xml", CT_DOCX))
        zf.writestr("word/document.xml", "<w:document/>")
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "thực chất là văn bản Word (.docx)")


def test_office_package_without_workbook_part(tmp_path):
    path = tmp_path / "rong-ruot.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", content_types("xl/workbook.xml", CT_XLSX))
    assert_refused(inspect_workbook(path), "file-unreadable", "thiếu xl/workbook.xml")


def test_xlsb_is_refused_with_save_as_advice(tmp_path):
    path = tmp_path / "nhi-phan.xlsb"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", content_types("xl/workbook.bin", CT_XLSB))
        zf.writestr("xl/workbook.bin", b"\x83\x01\x00")
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", ".xlsb", "Lưu thành")
    assert result.kind == "xlsb"


def test_ods_with_wrong_mimetype(tmp_path):
    odt = write_ods(tmp_path / "van-ban.ods", mimetype="application/vnd.oasis.opendocument.text")
    assert_refused(inspect_workbook(odt), "file-unreadable", "thực chất là văn bản OpenDocument (.odt)")
    junk = write_ods(tmp_path / "la.ods", mimetype="application/x-something")
    result = inspect_workbook(junk)
    assert_refused(result, "file-unreadable", "không phải bảng tính OpenDocument")
    assert "giải nén" not in result.finding.message


@pytest.mark.libreoffice
def test_ole_container_that_is_not_a_workbook(lo_files, tmp_path):
    data = bytearray(lo_files["xls"].read_bytes())
    old = "Workbook".encode("utf-16-le")
    at = data.find(old + b"\x00\x00")
    assert at > 0
    new = "WordDocument".encode("utf-16-le") + b"\x00\x00"
    data[at : at + 64] = new.ljust(64, b"\x00")
    data[at + 64 : at + 66] = struct.pack("<H", len(new))
    path = tmp_path / "cong-van.xls"
    path.write_bytes(bytes(data))
    assert_refused(inspect_workbook(path), "file-unreadable", "thực chất là văn bản Word 97–2003 (.doc)")


def test_corrupt_ole_container(tmp_path):
    path = tmp_path / "hong.xls"
    path.write_bytes(safety.OLE_MAGIC + b"\xff" * 600)
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "bị hỏng", "Office 97–2003")


# ------------------------------------------------------------------------------------------------- encrypted


def test_password_protected_xlsx(good_xlsx, tmp_path):
    from msoffcrypto.format.ooxml import OOXMLFile

    encrypted = tmp_path / "ma-hoa" / "218_luc-nam.xlsx"
    encrypted.parent.mkdir()
    with open(good_xlsx, "rb") as src, open(encrypted, "wb") as out:
        OOXMLFile(src).encrypt("matkhau123", out)
    assert encrypted.read_bytes().startswith(safety.OLE_MAGIC)
    result = inspect_workbook(encrypted)
    assert_refused(result, "file-encrypted")
    assert result.finding.message == (
        "Tệp 218_luc-nam.xlsx có mật khẩu nên không đọc được. "
        "Hãy gỡ mật khẩu (Tệp → Thông tin → Bảo vệ sổ làm việc) rồi gửi lại."
    )
    assert result.kind == "encrypted-ooxml"
    assert result.sha256 == hashlib.sha256(encrypted.read_bytes()).hexdigest()
    # the same file named .xls is still an encrypted workbook, not a broken .xls
    renamed = tmp_path / "218_luc-nam.xls"
    shutil.copy(encrypted, renamed)
    assert_refused(inspect_workbook(renamed), "file-encrypted", "có mật khẩu")


def _rc4_filepass(password: str) -> bytes:
    """A FILEPASS record body (RC4, MS-XLS 2.4.117) whose verifier matches ``password``."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
    from cryptography.hazmat.primitives.ciphers import Cipher

    salt, verifier = os.urandom(16), os.urandom(16)
    h0 = md5(password.encode("utf-16-le")).digest()[:5]
    h1 = md5((h0 + salt) * 16).digest()[:5]
    key = md5(h1 + struct.pack("<I", 0)).digest()[:16]
    encrypted = Cipher(ARC4(key), mode=None).encryptor().update(verifier + md5(verifier).digest())
    return struct.pack("<HHH", 1, 1, 1) + salt + encrypted  # RC4, version 1.1


def make_encrypted_xls(src: Path, dst: Path, password: str) -> Path:
    """Put a FILEPASS record right after BOF in a real .xls (replacing records of the same total length)."""
    import olefile

    shutil.copy(src, dst)
    with olefile.OleFileIO(str(dst), write_mode=True) as ole:
        stream = ole.openstream("Workbook").read()
        num, size = struct.unpack("<HH", stream[:4])
        assert num == 0x0809
        start = pos = 4 + size
        body = _rc4_filepass(password)
        need = 4 + len(body)
        while pos - start < need or 0 < pos - start - need < 4:
            pos += 4 + struct.unpack("<HH", stream[pos : pos + 4])[1]
        filler = pos - start - need
        new = struct.pack("<HH", 0x002F, len(body)) + body
        if filler:
            new += struct.pack("<HH", 0x005C, filler - 4) + b"\x20" * (filler - 4)
        ole.write_stream("Workbook", stream[:start] + new + stream[pos:])
    return dst


@pytest.mark.libreoffice
def test_password_protected_xls(lo_files, tmp_path):
    path = make_encrypted_xls(lo_files["xls"], tmp_path / "218_luc-nam.xls", "matkhau123")
    result = inspect_workbook(path)
    assert_refused(result, "file-encrypted")
    assert result.finding.message == (
        "Tệp 218_luc-nam.xls có mật khẩu nên không đọc được. "
        "Hãy gỡ mật khẩu (Tệp → Thông tin → Bảo vệ sổ làm việc) rồi gửi lại."
    )
    assert result.kind == "encrypted-xls"


@pytest.mark.libreoffice
def test_xls_encrypted_with_excel_builtin_password(lo_files, tmp_path):
    path = make_encrypted_xls(lo_files["xls"], tmp_path / "chi-doc.xls", "VelvetSweatshop")
    result = inspect_workbook(path)
    assert_refused(result, "file-encrypted", "không cần mật khẩu để mở", "bỏ bảo vệ", ".xlsx")


@pytest.mark.libreoffice
def test_xls_check_survives_a_strict_msoffcrypto(lo_files, tmp_path, monkeypatch):
    from msoffcrypto.format.xls97 import Xls97File

    encrypted = make_encrypted_xls(lo_files["xls"], tmp_path / "218_luc-nam.xls", "matkhau123")

    def strict(self):
        raise ValueError("Incomplete BIFF record payload")

    monkeypatch.setattr(Xls97File, "is_encrypted", strict)
    assert inspect_workbook(lo_files["xls"]).finding is None  # our own FILEPASS scan takes over
    assert_refused(inspect_workbook(encrypted), "file-encrypted", "có mật khẩu")


@pytest.mark.libreoffice
def test_xls_whose_workbook_stream_is_not_biff(lo_files, tmp_path):
    import olefile

    path = tmp_path / "hong.xls"
    shutil.copy(lo_files["xls"], path)
    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        stream = ole.openstream("Workbook").read()
        ole.write_stream("Workbook", b"\xff" * len(stream))
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "bị hỏng", "Excel 97–2003")
    assert result.kind == "xls-corrupt"


def test_password_protected_ods(tmp_path):
    manifest = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        b'<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        b'<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml" manifest:size="900">'
        b'<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA">'
        b'<manifest:algorithm manifest:algorithm-name="Blowfish CFB" manifest:initialisation-vector="AAAA"/>'
        b'<manifest:key-derivation manifest:key-derivation-name="PBKDF2" manifest:iteration-count="1024" '
        b'manifest:salt="AAAA"/></manifest:encryption-data></manifest:file-entry></manifest:manifest>'
    )
    path = write_ods(tmp_path / "bao-cao.ods", manifest=manifest)
    result = inspect_workbook(path)
    assert_refused(result, "file-encrypted", "có mật khẩu", "Lưu với mật khẩu")


def test_zip_with_encrypted_members(good_xlsx, tmp_path):
    data = bytearray(good_xlsx.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:  # set "encrypted" in every central directory entry's flags
        data[at + 8] |= 0x01
        at = data.find(b"PK\x01\x02", at + 4)
    path = tmp_path / "nen-mat-khau.xlsx"
    path.write_bytes(bytes(data))
    assert_refused(inspect_workbook(path), "file-encrypted", "tệp nén có đặt mật khẩu")


# --------------------------------------------------------------------------------------------- hostile files


def write_bomb(path: Path, megabytes: int = 100) -> Path:
    """An .xlsx-looking zip whose sheet inflates to ``megabytes`` MB of zeros (~100 KB on disk per 100 MB)."""
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", content_types("xl/workbook.xml", CT_XLSX))
        zf.writestr("xl/workbook.xml", "<workbook/>")
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            for _ in range(megabytes):
                member.write(zeros)
    return path


def test_decompression_bomb_by_ratio_is_refused_from_the_directory(tmp_path, monkeypatch):
    path = write_bomb(tmp_path / "bom.xlsx")
    assert path.stat().st_size < 1024 * 1024
    forbid_inflating(monkeypatch)
    result = inspect_workbook(path)
    assert_refused(
        result, "file-unreadable", "bom giải nén", "xl/worksheets/sheet1.xml", "KB trong tệp", "100 MB", "đừng mở"
    )
    assert result.kind == "zip-bomb"


def test_decompression_bomb_by_total_size(tmp_path, monkeypatch):
    path = tmp_path / "lon.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", content_types("xl/workbook.xml", CT_XLSX))
        zf.writestr("xl/workbook.xml", "<workbook/>")
        for i in range(3):
            zf.writestr(f"xl/worksheets/sheet{i + 1}.xml", os.urandom(300_000))  # ratio ~1: only the total trips
    forbid_inflating(monkeypatch)
    result = inspect_workbook(path, max_uncompressed=500_000)
    assert_refused(result, "file-unreadable", "khi giải nén sẽ chiếm tới", "giới hạn")
    assert result.kind == "zip-bomb"


def test_directory_declaring_members_beyond_the_file(good_xlsx, tmp_path):
    data = bytearray(good_xlsx.read_bytes())
    at = data.rfind(b"PK\x01\x02")
    data[at + 20 : at + 24] = struct.pack("<I", 10_000_000)  # compressed size of the last member
    path = tmp_path / "lech.xlsx"
    path.write_bytes(bytes(data))
    assert_refused(inspect_workbook(path), "file-unreadable", "bị hỏng")


@pytest.mark.parametrize(
    "part",
    ["xl/workbook.xml", "xl/sharedStrings.xml", "xl/worksheets/sheet1.xml", "[Content_Types].xml", "_rels/.rels"],
)
def test_billion_laughs_is_refused(good_xlsx, tmp_path, part):
    laughs = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- chú thích -->\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        + "".join(f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n' for i in range(1, 10))
        + ']>\n<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&lol9;</t></si></sst>'
    ).encode()
    path = rezip(good_xlsx, tmp_path / "bom-xml.xlsx", replace={part: laughs})
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "DOCTYPE/ENTITY", part, "bom XML")
    assert result.kind == "xml-bomb"


def test_doctype_after_a_long_prolog_and_in_utf16(good_xlsx, tmp_path):
    long_comment = "<!--" + "x" * 20_000 + "-->"
    part = f'<?xml version="1.0"?>{long_comment}<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode()
    path = rezip(good_xlsx, tmp_path / "dai.xlsx", replace={"xl/styles.xml": part})
    assert_refused(inspect_workbook(path), "file-unreadable", "DOCTYPE/ENTITY", "xl/styles.xml")
    utf16 = '\ufeff<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x/>'.encode("utf-16-le")
    path = rezip(good_xlsx, tmp_path / "utf16.xlsx", replace={"docProps/app.xml": utf16})
    assert_refused(inspect_workbook(path), "file-unreadable", "DOCTYPE/ENTITY", "docProps/app.xml")


def test_endless_prolog_is_refused(good_xlsx, tmp_path):
    part = ("<!--" + "x" * (safety.PROLOG_LIMIT + 10) + "-->" + "<x/>").encode()
    path = rezip(good_xlsx, tmp_path / "chu-thich.xlsx", replace={"xl/styles.xml": part})
    assert_refused(inspect_workbook(path), "file-unreadable", "bất thường", "xl/styles.xml")


def test_doctype_in_a_part_with_an_unusual_name(good_xlsx, tmp_path):
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><worksheet>&a;</worksheet>'
    path = rezip(good_xlsx, tmp_path / "ten-la.xlsx", extra={"xl/worksheets/sheet9.dat": bomb})
    assert_refused(inspect_workbook(path), "file-unreadable", "DOCTYPE/ENTITY", "xl/worksheets/sheet9.dat")


def test_doctype_in_ods_content(tmp_path):
    path = write_ods(tmp_path / "bao-cao.ods")
    bomb = rezip(path, tmp_path / "bom.ods", replace={"content.xml": b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>'})
    assert_refused(inspect_workbook(bomb), "file-unreadable", "DOCTYPE/ENTITY", "content.xml")


def test_file_too_big(good_xlsx):
    result = inspect_workbook(good_xlsx, max_bytes=1000)
    assert_refused(result, "file-unreadable", "quá lớn", "KB, giới hạn 1000 byte")
    assert result.size == good_xlsx.stat().st_size
    assert result.sha256 is None  # not even hashed
    assert result.kind == "too-big"


def test_absurd_member_count_is_refused_before_reading_the_directory(tmp_path, monkeypatch):
    path = tmp_path / "nhieu.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", content_types("xl/workbook.xml", CT_XLSX))
        zf.writestr("xl/workbook.xml", "<workbook/>")
        for i in range(safety.DEFAULT_MAX_MEMBERS + 1):
            zf.writestr(f"x/{i}", b"")

    def refuse(*args, **kwargs):
        raise AssertionError("zipfile parsed the whole directory")

    monkeypatch.setattr(zipfile, "ZipFile", refuse)
    result = inspect_workbook(path)
    assert_refused(result, "file-unreadable", "chứa tới 10.003 thành phần, giới hạn 10.000")
    assert result.kind == "zip-members"


def test_member_count_that_lies_in_the_end_record(tmp_path):
    path = tmp_path / "noi-doi.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", content_types("xl/workbook.xml", CT_XLSX))
        zf.writestr("xl/workbook.xml", "<workbook/>")
        for i in range(200):
            zf.writestr(f"x/{i}", b"")
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    data[eocd + 8 : eocd + 12] = struct.pack("<HH", 2, 2)  # "2 members"
    path.write_bytes(bytes(data))
    assert_refused(inspect_workbook(path, max_members=100), "file-unreadable", "202 thành phần")


def test_many_members_with_long_names_pass(tmp_path):
    path = tmp_path / "ten-dai.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    for i in range(40):
        wb.add_worksheet(f"Xã số {i}").write("A1", i)
    wb.close()
    rezip(path, path.with_name("them.xlsx"), extra={f"customXml/{'x' * 200}{i}.bin": b"" for i in range(100)})
    result = inspect_workbook(path.with_name("them.xlsx"), max_members=150)
    assert result.finding is None, result.finding


def test_member_count_limit_is_a_parameter(good_xlsx):
    assert_refused(inspect_workbook(good_xlsx, max_members=3), "file-unreadable", "thành phần")


def test_unusual_compression_method(tmp_path):
    path = tmp_path / "bzip2.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("[Content_Types].xml", content_types("xl/workbook.xml", CT_XLSX))
        zf.writestr("xl/workbook.xml", "<workbook/>")
    assert_refused(inspect_workbook(path), "file-unreadable", "kiểu nén")


# ------------------------------------------------------------------------------------------ cannot be opened


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_file_without_read_permission(good_xlsx):
    good_xlsx.chmod(0)
    try:
        result = inspect_workbook(good_xlsx)
    finally:
        good_xlsx.chmod(0o644)
    assert_refused(result, "file-unreadable", "không có quyền đọc")


def test_permission_error_on_open(good_xlsx, monkeypatch):
    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(safety, "_open", denied)
    result = inspect_workbook(good_xlsx)
    assert_refused(result, "file-unreadable", "Không mở được tệp 218_luc-nam.xlsx", "không có quyền đọc")
    assert result.size is None and result.kind == "os-error"


def test_missing_file_and_directory(tmp_path):
    assert_refused(inspect_workbook(tmp_path / "khong-co.xlsx"), "file-unreadable", "không tìm thấy tệp")
    folder = tmp_path / "thu-muc.xlsx"
    folder.mkdir()
    assert_refused(inspect_workbook(folder), "file-unreadable", "thư mục")


def test_unexpected_error_is_a_finding_not_a_crash(good_xlsx, monkeypatch):
    def boom(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(safety, "_inspect_zip", boom)
    result = inspect_workbook(good_xlsx)
    assert_refused(result, "file-unreadable", "Không kiểm tra được tệp 218_luc-nam.xlsx", "RecursionError")
    assert result.kind == "internal-error"


def test_read_error_midway_is_a_finding(good_xlsx, monkeypatch):
    class Flaky(io.FileIO):  # e.g. a network share that drops while the file is read
        def read(self, *args):
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(safety, "_open", lambda path: Flaky(path, "rb"))
    assert_refused(inspect_workbook(good_xlsx), "file-unreadable", "lỗi đọc ghi ổ đĩa")


# ------------------------------------------------------------------------------------------------- helpers


def test_file_facts(good_xlsx):
    """The file time is read as Vietnam's wall clock (what the deadline means), whatever the machine's zone."""
    stamp = dt.datetime(2024, 5, 23, 16, 30, 5, tzinfo=VIETNAM_TIME).timestamp()
    os.utime(good_xlsx, (stamp, stamp))
    facts = file_facts(good_xlsx)
    data = good_xlsx.read_bytes()
    assert facts.size == len(data)
    assert facts.sha256 == hashlib.sha256(data).hexdigest()
    assert facts.modified == dt.datetime(2024, 5, 23, 16, 30, 5)
    result = inspect_workbook(good_xlsx)
    assert (result.size, result.sha256, result.modified) == (facts.size, facts.sha256, facts.modified)


def test_file_facts_streams_large_files(tmp_path):
    path = tmp_path / "lon.bin"
    with open(path, "wb") as fh:
        for _ in range(3):
            fh.write(os.urandom(safety.CHUNK))
        fh.write(b"cuoi")
    assert file_facts(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_file_facts_raises_for_missing_file(tmp_path):
    with pytest.raises(OSError):
        file_facts(tmp_path / "khong-co.xlsx")


def test_is_probably_workbook(good_xlsx, tmp_path):
    assert is_probably_workbook(good_xlsx)
    # a spreadsheet extension is enough: a PDF named .xlsx is a failed submission to report
    pdf = tmp_path / "nham.xlsx"
    pdf.write_bytes(b"%PDF-1.4\n")
    assert is_probably_workbook(pdf)
    # content decides for other names
    no_ext = tmp_path / "bao-cao"
    shutil.copy(good_xlsx, no_ext)
    assert is_probably_workbook(no_ext)
    docx = tmp_path / "cong-van.docx"
    with zipfile.ZipFile(docx, "w") as zf:
        zf.writestr("[Content_Types].xml", content_types("word/document.xml", CT_DOCX))
        zf.writestr("word/document.xml", "<w:document/>")
    assert not is_probably_workbook(docx)
    note = tmp_path / "ghi-chu.txt"
    note.write_text("xin chào", encoding="utf-8")
    assert not is_probably_workbook(note)
    # lock files, directories, missing files
    for lock in ("~$218_luc-nam.xlsx", ".~lock.218_luc-nam.xlsx#"):
        (tmp_path / lock).write_bytes(b"\x00" * 165)
        assert not is_probably_workbook(tmp_path / lock)
    (tmp_path / "thu-muc.xlsx").mkdir()
    assert not is_probably_workbook(tmp_path / "thu-muc.xlsx")
    assert not is_probably_workbook(tmp_path / "khong-co.pdf")


def test_is_probably_workbook_for_encrypted_without_extension(good_xlsx, tmp_path):
    from msoffcrypto.format.ooxml import OOXMLFile

    path = tmp_path / "bao-cao.bin"
    with open(good_xlsx, "rb") as src, open(path, "wb") as out:
        OOXMLFile(src).encrypt("1234", out)
    assert is_probably_workbook(path)


# ------------------------------------------------------------------------ members read from the file's bytes


def test_members_read_from_the_bytes_match_zipfile(good_xlsx, tmp_path):
    stored = tmp_path / "stored.xlsx"
    with zipfile.ZipFile(good_xlsx) as zin, zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    for path in (good_xlsx, stored):
        result = inspect_workbook(path, keep_data=True)
        assert result.ok and result.data == path.read_bytes()
        with zipfile.ZipFile(path) as z:
            assert set(result.members) == set(z.namelist())
            for name in z.namelist():
                assert safety.read_member(result.data, result.members[name]) == z.read(name)
    assert inspect_workbook(good_xlsx).data is None  # only kept when asked for


def test_a_damaged_member_is_not_returned_silently(good_xlsx):
    result = inspect_workbook(good_xlsx, keep_data=True)
    info = result.members["xl/worksheets/sheet1.xml"]
    data = bytearray(result.data)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.compress_size // 2] ^= 0xFF  # flip a byte in the middle of the deflated data
    with pytest.raises((zipfile.BadZipFile, zlib.error)):
        safety.read_member(bytes(data), info)


def test_doctype_in_a_stored_member_is_refused(good_xlsx, tmp_path):
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><styleSheet>&a;</styleSheet>'
    path = tmp_path / "stored-bomb.xlsx"
    with zipfile.ZipFile(good_xlsx) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, bomb if info.filename == "xl/styles.xml" else zin.read(info.filename))
    assert_refused(inspect_workbook(path), "file-unreadable", "DOCTYPE/ENTITY", "xl/styles.xml")


def _central_entries(data: bytes) -> list[int]:
    out, at = [], data.find(b"PK\x01\x02")
    while at >= 0:
        out.append(at)
        at = data.find(b"PK\x01\x02", at + 4)
    return out


def test_members_over_the_same_bytes_are_refused(good_xlsx, tmp_path):
    data = bytearray(good_xlsx.read_bytes())
    first, second = _central_entries(bytes(data))[:2]
    struct.pack_into("<I", data, second + 42, struct.unpack_from("<I", data, first + 42)[0])
    path = tmp_path / "chong.xlsx"
    path.write_bytes(bytes(data))
    result = inspect_workbook(path)
    assert result.kind == "zip-overlap"
    assert_refused(result, "file-unreadable", "chồng lên nhau")


def test_a_local_header_naming_another_part_is_refused(good_xlsx, tmp_path):
    data = bytearray(good_xlsx.read_bytes())
    at = 0  # the first local header starts the file
    assert data[:4] == b"PK\x03\x04"
    name_len = struct.unpack_from("<H", data, at + 26)[0]
    assert name_len > 1
    data[at + 30] = ord("Z") if data[at + 30] != ord("Z") else ord("Y")  # its name, one letter changed
    path = tmp_path / "ten-khac.xlsx"
    path.write_bytes(bytes(data))
    assert_refused(inspect_workbook(path), "file-unreadable")
