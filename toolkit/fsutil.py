"""Atomic output: write to a temporary file in the target folder, then rename it into place."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str | Path, target: str | Path) -> None:
    """Give the temporary file ordinary permissions (mkstemp makes it owner-only) and rename it to target."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_file(target: str | Path, suffix: str = "", prefix: str = ".tmp-") -> Iterator[Path]:
    """A temporary path beside ``target`` to write to: when the block ends normally it becomes ``target``
    (:func:`publish`); on any failure it is removed, so a crash never leaves half a file or a stray one."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_OS_REASON_BY_NAME = {
    "ENOENT": "không tìm thấy tệp hoặc thư mục",
    "EACCES": "không có quyền truy cập",
    "EPERM": "không được phép",
    "ENOSPC": "ổ đĩa đã đầy",
    "EDQUOT": "đã hết dung lượng được cấp trên ổ đĩa",
    "EROFS": "ổ đĩa chỉ cho phép đọc",
    "EISDIR": "đây là một thư mục",
    "ENOTDIR": "một phần của đường dẫn không phải là thư mục",
    "ENAMETOOLONG": "tên tệp hoặc đường dẫn quá dài",
    "EBUSY": "tệp đang được một chương trình khác dùng",
    "ETXTBSY": "tệp đang được một chương trình khác dùng",
    "EIO": "lỗi đọc ghi ổ đĩa",
    "EMFILE": "quá nhiều tệp đang mở",
    "ENFILE": "quá nhiều tệp đang mở",
    "EINVAL": "tên tệp hoặc đường dẫn không hợp lệ",
    "EEXIST": "đã có tệp trùng tên",
}
_OS_REASONS = {getattr(errno, name): text for name, text in _OS_REASON_BY_NAME.items() if hasattr(errno, name)}
_BUSY = tuple(getattr(errno, name) for name in ("EBUSY", "ETXTBSY") if hasattr(errno, name))
_IN_USE = (32, 33)  # Windows: ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION (the file is open in Excel, say)


def in_use(exc: OSError) -> bool:
    """Whether the error says another program holds the file (on Windows, a workbook open in Excel)."""
    return getattr(exc, "winerror", None) in _IN_USE or exc.errno in _BUSY


def os_reason(exc: OSError) -> str:
    """What went wrong, in Vietnamese (the system's own text is English): for messages to staff."""
    if getattr(exc, "winerror", None) in _IN_USE:
        return "tệp đang mở trong một chương trình khác (có thể là Excel)"
    reason = _OS_REASONS.get(exc.errno)
    if reason is not None:
        return reason
    return f"lỗi hệ thống (mã {exc.errno})" if exc.errno else "lỗi hệ thống"
