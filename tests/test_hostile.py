"""Issue 3 – hostile and broken files in an inbox: each becomes a finding, never a traceback, and the clean
return beside them is still valid.

One folder holds a clean return typed by LibreOffice and eight files that are not usable workbooks: an empty
file, a truncated .xlsx, a PDF and a CSV renamed .xlsx, a zip that is not a workbook, a password-protected
workbook, a decompression bomb (a small zip whose directory declares gigabytes) and an XML entity bomb inside
an otherwise valid .xlsx.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from msoffcrypto.format.ooxml import OOXMLFile
from support import libreoffice as lo
from support.returns import edits_for

from toolkit.cli import main
from toolkit.forms import get_form
from toolkit.round import Round

pytestmark = pytest.mark.libreoffice

CLEAN = "213_tp-bac-giang.xlsx"
ON_TIME = dt.datetime(2024, 5, 7, 10, 0)

BILLION_LAUGHS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n' for i in range(1, 10))
    + ']>\n<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
    "<si><t>&lol9;</t></si></sst>"
).encode()


def rezip(src: Path, dst: Path, replace: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info.filename)))
    return dst


def declare_huge_sizes(src: Path, dst: Path, member: str, size: int = 0xFFFF0000) -> Path:
    """A copy of a workbook whose zip directory says ``member`` inflates to ``size`` bytes (~4 GB).

    The file keeps its size (a few kB): only the uncompressed-size fields of the central directory entry and
    of the local header are rewritten, as a crafted bomb would declare them.
    """
    data = bytearray(src.read_bytes())
    name = member.encode()
    at = data.find(b"PK\x01\x02")
    patched = 0
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]) == name:
            struct.pack_into("<I", data, at + 24, size)  # central directory: uncompressed size
            local = struct.unpack_from("<I", data, at + 42)[0]
            assert data[local : local + 4] == b"PK\x03\x04"
            struct.pack_into("<I", data, local + 22, size)  # local header: uncompressed size
            patched += 1
        at = data.find(b"PK\x01\x02", at + 4)
    assert patched == 1
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def inbox(bac_giang_round: Round, templates_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rnd = bac_giang_round
    folder = tmp_path_factory.mktemp("hostile") / "inbox"
    folder.mkdir()
    unit = rnd.unit("213")
    edits = [e for f in unit.forms for e in edits_for(get_form(f), rnd, unit, seed=213)]
    clean = folder / CLEAN
    lo.run([{"input": str(templates_dir / f"{unit.file_stem}.xlsx"), "output": str(clean), "edits": edits}])
    good = clean.read_bytes()

    (folder / "rong.xlsx").write_bytes(b"")
    (folder / "tai-do-dang.xlsx").write_bytes(good[: len(good) // 2])
    (folder / "ban-pdf.xlsx").write_bytes(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    (folder / "bang-csv.xlsx").write_text(
        "TT,Xã,Ngày,Buổi\n1,Phường Thọ Xương,13/06/2024,Sáng\n2,Phường Ngô Quyền,13/06/2024,Chiều\n",
        encoding="utf-8",
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bao-cao/ghi-chu.txt", "Số liệu gửi kèm")
        zf.writestr("bao-cao/anh.jpg", b"\xff\xd8\xff\xe0" + bytes(200))
    (folder / "nen-zip.xlsx").write_bytes(buf.getvalue())
    with open(clean, "rb") as src, open(folder / "mat-khau.xlsx", "wb") as out:
        OOXMLFile(src).encrypt("matkhau123", out)
    with zipfile.ZipFile(clean) as zf:
        sheet = next(n for n in zf.namelist() if n.startswith("xl/worksheets/sheet"))
    bomb = declare_huge_sizes(clean, folder / "bom-giai-nen.xlsx", sheet)
    assert bomb.stat().st_size < 200 * 1024
    rezip(clean, folder / "bom-xml.xlsx", {"xl/sharedStrings.xml": BILLION_LAUGHS})

    names = sorted(p.name for p in folder.iterdir())
    (folder / "received.yaml").write_text(yaml.safe_dump(dict.fromkeys(names, ON_TIME)), encoding="utf-8")
    return folder


EXPECTED = {
    "rong.xlsx": "file-unreadable",
    "tai-do-dang.xlsx": "file-unreadable",
    "ban-pdf.xlsx": "file-unreadable",
    "bang-csv.xlsx": "file-unreadable",
    "nen-zip.xlsx": "file-unreadable",
    "mat-khau.xlsx": "file-encrypted",
    "bom-giai-nen.xlsx": "file-unreadable",
    "bom-xml.xlsx": "file-unreadable",
}
MESSAGE_HINTS = {  # a word of each message that shows the file was understood for what it is
    "rong.xlsx": "rỗng",
    "tai-do-dang.xlsx": "hỏng",
    "ban-pdf.xlsx": "PDF",
    "bang-csv.xlsx": "CSV",
    "nen-zip.xlsx": "ZIP",
    "mat-khau.xlsx": "mật khẩu",
    "bom-giai-nen.xlsx": "giải nén",
    "bom-xml.xlsx": "DOCTYPE/ENTITY",
}


def invoke(*args: str):
    result = CliRunner().invoke(main, ["validate", *args])
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), result.exception
    return result


def test_console_lists_every_hostile_file_and_the_clean_one_is_valid(inbox):
    result = invoke(str(inbox))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    for name, code in EXPECTED.items():
        assert f"✖ 1 lỗi, 0 cảnh báo – {inbox / name} – không rõ đơn vị" in lines, name
        assert any(line.startswith(f"  Lỗi [{code}] ") and name in line for line in lines), name
    assert f"✔ hợp lệ – {inbox / CLEAN} – Thành phố Bắc Giang (213)" in lines
    assert (
        lines[-1] == f"Tổng cộng: {len(EXPECTED) + 1} tệp, 1 hợp lệ, {len(EXPECTED)} không hợp lệ; 8 lỗi, 0 cảnh báo."
    )


def test_json_gives_one_finding_per_hostile_file(inbox):
    result = invoke(str(inbox), "--json")
    assert result.exit_code == 1
    files = {Path(f["path"]).name: f for f in json.loads(result.stdout)["files"]}
    assert sorted(files) == sorted([*EXPECTED, CLEAN])
    for name, code in EXPECTED.items():
        f = files[name]
        assert f["valid"] is False and f["unit_code"] is None, name
        assert [(x["code"], x["severity"], x["cell"]) for x in f["findings"]] == [(code, "error", None)], name
        message = f["findings"][0]["message"]
        assert name in message and MESSAGE_HINTS[name] in message, message
        assert len(f["sha256"]) == 64
    assert files[CLEAN]["valid"] is True and files[CLEAN]["findings"] == []
    assert files[CLEAN]["forms"] == ["PL01", "PL03"]


def test_annotate_survives_hostile_files(inbox, tmp_path):
    before = {p.name: p.read_bytes() for p in inbox.iterdir()}
    result = invoke(str(inbox), "--annotate", str(tmp_path / "kiem-tra"))
    assert result.exit_code == 1
    written = sorted(p.name for p in (tmp_path / "kiem-tra").iterdir())
    assert written == sorted(f"{Path(n).stem}_kiem-tra.xlsx" for n in [*EXPECTED, CLEAN])
    assert {p.name: p.read_bytes() for p in inbox.iterdir()} == before
