"""Findings: errors and warnings as data (stable codes, locations), rendered separately.

A finding is what baocao found wrong or suspicious in a returned workbook. ``cell`` is an A1 address in the
returned workbook (None when the finding is about the whole file); ``message`` is Vietnamese, names the cell
and says what to do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

ERROR, WARNING = "error", "warning"

# code -> (default severity, short Vietnamese title). Codes are stable: never rename one.
CATALOG: dict[str, tuple[str, str]] = {
    "file-unreadable": (ERROR, "Không đọc được tệp"),
    "file-encrypted": (ERROR, "Tệp có mật khẩu"),
    "unknown-template": (ERROR, "Không nhận ra biểu mẫu"),
    "template-outdated": (WARNING, "Biểu mẫu phiên bản cũ"),
    "metadata-missing": (WARNING, "Mất thông tin nhận dạng biểu mẫu"),
    "unit-mismatch": (ERROR, "Sai đơn vị"),
    "round-mismatch": (ERROR, "Sai đợt báo cáo"),
    "structure-changed": (WARNING, "Cấu trúc biểu bị thay đổi"),
    "missing-value": (ERROR, "Thiếu số liệu"),
    "not-a-number": (ERROR, "Không phải là số"),
    "number-as-text": (WARNING, "Số được gõ dạng chữ"),
    "not-integer": (ERROR, "Không phải số nguyên"),
    "out-of-range": (ERROR, "Giá trị ngoài khoảng cho phép"),
    "rule-violation": (ERROR, "Số liệu không khớp"),
    "formula-in-input": (WARNING, "Ô nhập chứa công thức"),
    "date-as-text": (WARNING, "Ngày được gõ dạng chữ"),
    "not-a-date": (ERROR, "Không phải là ngày"),
    "legacy-encoding": (WARNING, "Phông chữ cũ (TCVN3/VNI)"),
    "text-normalised": (WARNING, "Chữ tiếng Việt được chuẩn hóa"),
    "duplicate-submission": (WARNING, "Nộp trùng"),
    "late-submission": (WARNING, "Nộp muộn"),
    "received-time-invalid": (WARNING, "Không đọc được thời điểm nhận tệp"),
    "large-change": (WARNING, "Thay đổi lớn so với kỳ trước"),
    "missing-form": (ERROR, "Thiếu biểu"),
    "unexpected-form": (WARNING, "Biểu không phải nộp"),
}


@dataclass
class Finding:
    code: str
    message: str
    severity: str = ""
    form: str | None = None
    sheet: str | None = None
    cell: str | None = None
    indicator: str | None = None
    field: str | None = None
    value: Any = None
    expected: Any = None
    period: str | None = None
    cells: list[str] = dataclasses.field(default_factory=list)  # every cell involved (rules span several)

    def __post_init__(self) -> None:
        if self.code not in CATALOG:
            raise ValueError(f"unknown finding code {self.code!r}")
        if not self.severity:
            self.severity = CATALOG[self.code][0]
        if self.cell and not self.cells:
            self.cells = [self.cell]

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    @property
    def title(self) -> str:
        return CATALOG[self.code][1]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of DESIGN.md (plus ``period`` and ``cells``)."""
        d = asdict(self)
        for key in ("value", "expected"):
            v = d[key]
            if v is not None and not isinstance(v, (str, int, float, bool)):
                d[key] = str(v)
        return d
