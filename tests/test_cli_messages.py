"""click's own texts (usage, help, usage errors) come out in Vietnamese, word for word (``toolkit.cli_text``)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from toolkit.cli import main

COMMANDS = ["templates", "validate", "consolidate", "status", "demo", "serve", "links"]


def run(*args: str):
    return CliRunner().invoke(main, list(args), prog_name="baocao")


def test_a_missing_argument():
    result = run("consolidate")
    assert result.exit_code == 2
    assert result.output == (
        "Cách dùng: baocao consolidate [TÙY_CHỌN] HỘP_THƯ\n"
        "Gõ 'baocao consolidate --help' để xem hướng dẫn.\n"
        "\n"
        "Lỗi: Thiếu tham số 'HỘP_THƯ'.\n"
    )


def test_a_missing_required_option():
    result = run("consolidate", "hop-thu")
    assert result.exit_code == 2
    assert result.output.endswith("Lỗi: Thiếu tùy chọn '-o' / '--output'.\n")


def test_an_unknown_option_and_a_mistyped_command():
    result = run("consolidate", "hop-thu", "--bogus")
    assert result.exit_code == 2
    assert result.output.endswith("Lỗi: Không có tùy chọn '--bogus'.\n")
    result = run("consolidate", "hop-thu", "--registr", "x.sqlite")
    assert result.output.endswith("Lỗi: Không có tùy chọn '--registr'. Có phải ý bạn là '--registry'?\n")
    result = run("consolid")
    assert result.exit_code == 2
    assert result.output == (
        "Cách dùng: baocao [TÙY_CHỌN] LỆNH [THAM_SỐ]...\n"
        "Gõ 'baocao --help' để xem hướng dẫn.\n"
        "\n"
        "Lỗi: Không có lệnh 'consolid'. Có phải ý bạn là 'consolidate'?\n"
    )


def test_an_option_without_its_value_and_a_value_out_of_range():
    result = run("consolidate", "hop-thu", "-o")
    assert result.exit_code == 2
    assert result.output.endswith("Lỗi: Tùy chọn '-o' cần một giá trị.\n")
    result = run("serve", "--port", "0")
    assert result.exit_code == 2
    assert result.output.endswith("Lỗi: Giá trị không hợp lệ cho '--port': 0 nằm ngoài khoảng 1<=x<=65535.\n")
    result = run("serve", "--max-upload-mb", "mười")
    assert result.output.endswith("Lỗi: Giá trị không hợp lệ cho '--max-upload-mb': 'mười' không phải là số hợp lệ.\n")


def test_extra_arguments():
    result = run("status", "a", "b")
    assert result.exit_code == 2
    assert result.output.endswith("Lỗi: Thừa tham số (b)\n")


def test_the_main_help():
    result = run("--help")
    assert result.exit_code == 0
    assert result.output.startswith(
        "Cách dùng: baocao [TÙY_CHỌN] LỆNH [THAM_SỐ]...\n"
        "\n"
        "  baocao – tạo biểu mẫu, kiểm tra và tổng hợp báo cáo Excel của các đơn vị.\n"
        "\n"
        "Tùy chọn:\n"
        "  --version   Hiện phiên bản rồi thoát.\n"
        "  -h, --help  Hiện hướng dẫn này rồi thoát.\n"
        "\n"
        "Lệnh:\n"
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_no_english_is_left_in_a_commands_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert result.output.startswith(f"Cách dùng: baocao {command} [TÙY_CHỌN]")
    assert "\nTùy chọn:\n" in result.output
    assert "  -h, --help" in result.output and "Hiện hướng dẫn này rồi thoát." in result.output
    english = re.compile(
        r"\b(Usage|Options|Commands|Show this|default|required|TEXT|INTEGER|FILE|DIRECTORY|PATH|RANGE)\b"
    )
    assert not english.search(result.output), english.search(result.output)


def test_the_help_of_serve_names_its_values_in_vietnamese():
    out = run("serve", "--help").output
    for line in ("--host ĐỊA_CHỈ", "--port SỐ", "--password MẬT_KHẨU", "--inbox THƯ_MỤC", "--registry TỆP"):
        assert line in out
    assert "[mặc định: 8000; 1<=x<=65535]" in out


def test_a_file_where_a_folder_is_wanted(tmp_path):
    f = tmp_path / "hop-thu.xlsx"
    f.write_bytes(b"")
    result = run("consolidate", str(f), "-o", str(tmp_path / "s.xlsx"))
    assert result.exit_code == 2
    assert result.output.endswith(f"Lỗi: Giá trị không hợp lệ cho 'HỘP_THƯ': '{f}' là một tệp, không phải thư mục.\n")
    result = run("consolidate", str(tmp_path), "-o", str(tmp_path))
    assert result.output.endswith(
        f"Lỗi: Giá trị không hợp lệ cho '-o' / '--output': '{tmp_path}' là một thư mục, không phải tệp.\n"
    )


def test_a_full_disk_or_a_workbook_open_in_excel_is_said_in_vietnamese(tmp_path, monkeypatch):
    """The system's own error text is English: a summary that cannot be written says why in Vietnamese, and
    advises closing Excel only when another program holds the file."""
    import errno

    import toolkit.pipeline as pipeline
    from toolkit.resources import examples_dir

    inbox = examples_dir() / "bac-giang-2024" / "inbox"
    target = tmp_path / "tong-hop.xlsx"
    for error, said in [
        (OSError(errno.ENOSPC, "No space left on device"), "ổ đĩa đã đầy. Hãy chọn thư mục khác."),
        (OSError(errno.EROFS, "Read-only file system"), "ổ đĩa chỉ cho phép đọc. Hãy chọn thư mục khác."),
        (OSError(errno.EBUSY, "Device or resource busy"), "tệp đang được một chương trình khác dùng. Hãy đóng tệp "
         "nếu đang mở trong Excel, hoặc chọn đường dẫn khác."),
        (OSError(errno.EOVERFLOW, "Value too large"), f"lỗi hệ thống (mã {errno.EOVERFLOW}). Hãy chọn thư mục khác."),
    ]:  # fmt: skip

        def fail(cons, path, temp_prefix=".tmp-", error=error):
            raise error

        monkeypatch.setattr(pipeline, "write_summary", fail)
        result = run("consolidate", str(inbox), "-o", str(target), "--registry", str(tmp_path / "r.sqlite"))
        assert result.exit_code == 2
        assert result.stderr == f"Không ghi được tệp tổng hợp {target}: {said}\n"


def test_templates_on_a_full_disk_say_so_in_vietnamese(tmp_path, monkeypatch):
    """XlsxWriter wraps the system's error when it stores a workbook: ``baocao templates`` still says why, in
    Vietnamese, and exits 2 (no traceback), leaving no half-written template."""
    import errno
    import zipfile

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zipfile._ZipWriteFile, "write", full)
    out = tmp_path / "bieu-mau"
    result = run("templates", "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == f"Không ghi được vào thư mục {out}: ổ đĩa đã đầy. Hãy chọn thư mục khác.\n"
    assert list(out.iterdir()) == []


def test_an_annotate_folder_that_cannot_be_made_is_said_before_any_work(tmp_path):
    from toolkit.resources import examples_dir

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    target = tmp_path / "tong-hop.xlsx"
    result = run(
        "consolidate",
        str(examples_dir() / "bac-giang-2024" / "inbox"),
        "-o",
        str(target),
        "--registry",
        str(tmp_path / "r.sqlite"),
        "--annotate",
        str(a_file / "kiem-tra"),
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"Không tạo được thư mục bản sao có chú thích {a_file / 'kiem-tra'}: một phần của đường dẫn không phải là "
        "thư mục. Hãy chọn thư mục khác (--annotate).\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
