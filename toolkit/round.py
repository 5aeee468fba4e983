"""The reporting round: who reports what, for which periods, by when (``round.yaml``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .resources import default_round_path
from .text import fold_place, nfc, slug
from .yamlio import ConfigError, LinedDict, line_of, load_yaml

LEVELS = {"district": "cấp huyện", "commune": "cấp xã"}


@dataclass(frozen=True)
class Period:
    id: str
    label: str


@dataclass(frozen=True)
class PlannedVisit:
    communes: tuple[str, ...]
    date: dt.date | None
    session: str | None = None


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    short_name: str
    forms: tuple[str, ...]
    communes: tuple[str, ...]
    planned: PlannedVisit | None = None

    @property
    def slug(self) -> str:
        return slug(self.short_name)

    @property
    def file_stem(self) -> str:
        return f"{self.code}_{self.slug}"

    def owns_commune(self, name: str) -> bool:
        key = fold_place(name)
        return any(fold_place(c) == key for c in self.communes)


@dataclass(frozen=True)
class Inspection:
    start: dt.date
    end: dt.date
    one_team: bool = True
    sessions: tuple[str, ...] = ("Sáng", "Chiều")
    hours: str = ""


@dataclass(frozen=True)
class Round:
    id: str
    path: Path
    province_code: str
    province_name: str
    issuing_body: tuple[str, ...]
    issuer: str
    place: str
    plan_number: str
    plan_date: dt.date
    title: str
    periods: tuple[Period, ...]
    deadline: dt.date
    level: str
    units: tuple[Unit, ...]
    inspection: Inspection
    contact: dict[str, str] = field(default_factory=dict)
    password: str | None = None
    server_url: str | None = None
    previous_round: str | None = None

    @property
    def level_label(self) -> str:
        return LEVELS[self.level]

    def unit(self, code: str) -> Unit | None:
        return self._units_by_code.get(str(code))

    @cached_property
    def _units_by_code(self) -> dict[str, Unit]:
        index: dict[str, Unit] = {}
        for unit in self.units:
            index.setdefault(unit.code, unit)  # the first unit of a code, as a linear search finds it
        return index

    def units_owing(self) -> list[Unit]:
        return [u for u in self.units if u.forms]

    def expected_forms(self) -> set[str]:
        return {f for u in self.units for f in u.forms}


def _fmt_date(value: dt.date) -> str:
    return value.strftime("%d/%m/%Y")


class _Reader:
    """Typed access to a YAML mapping with Vietnamese errors that name the file and line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: Any, key: Any, message: str, fix: str = "") -> None:
        line = line_of(node, key)  # the key's line in a mapping, the item's line in a list
        raise ConfigError(self.path, line, message, fix)

    def mapping(self, node: Any, key: str, parent: Any = None) -> LinedDict:
        if not isinstance(node, dict):
            self.fail(parent or node, key, f"mục “{key}” phải là một bảng khóa: giá trị.")
        return node

    def text(self, node: LinedDict, key: str, *, required: bool = True, default: str | None = None):
        value = node.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(node, key, f"thiếu mục “{key}”.", f"Thêm dòng “{key}: …” vào tệp.")
            return default
        if isinstance(value, (dict, list)):
            self.fail(node, key, f"mục “{key}” phải là một chuỗi văn bản.")
        return nfc(str(value).strip())

    def date(self, node: LinedDict, key: str, *, required: bool = True) -> dt.date | None:
        value = node.get(key)
        if value is None:
            if required:
                self.fail(node, key, f"thiếu mục “{key}”.", f"Thêm “{key}: YYYY-MM-DD”, ví dụ 2024-05-10.")
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
                try:
                    return dt.datetime.strptime(value.strip(), fmt).date()
                except ValueError:
                    pass
        self.fail(
            node,
            key,
            f"“{key}” phải là một ngày hợp lệ, nhưng đang là “{value}”.",
            "Viết ngày theo dạng YYYY-MM-DD (ví dụ 2024-05-10) hoặc dd/mm/yyyy (10/05/2024).",
        )
        return None

    def text_list(self, node: LinedDict, key: str, *, required: bool = False) -> tuple[str, ...]:
        value = node.get(key)
        if value is None:
            if required:
                self.fail(node, key, f"thiếu mục “{key}”.")
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail(node, key, f"mục “{key}” phải là một danh sách.")
        return tuple(nfc(str(v).strip()) for v in value if v is not None and str(v).strip())


def load_round(path: str | Path | None = None, known_forms: set[str] | None = None) -> Round:
    """Read and check a ``round.yaml``. Raises ConfigError (Vietnamese, with file and line)."""
    if known_forms is None:
        from .forms import available_forms

        known_forms = set(available_forms())
    path = Path(path) if path else default_round_path()
    data = load_yaml(path)
    r = _Reader(path)
    if not isinstance(data, dict):
        raise ConfigError(path, None, "tệp đợt báo cáo phải là một bảng khóa: giá trị (id, units, …).")

    round_id = r.text(data, "id")
    province = r.mapping(data.get("province"), "province", data)
    province_code = r.text(province, "code")
    province_name = r.text(province, "name")
    body = data.get("issuing_body")
    issuing_body = (nfc(body),) if isinstance(body, str) else r.text_list(data, "issuing_body", required=True)
    plan = r.mapping(data.get("plan"), "plan", data)
    level = r.text(data, "level")
    if level not in LEVELS:
        r.fail(
            data,
            "level",
            f"cấp báo cáo “{level}” không hợp lệ.",
            "Dùng “district” (cấp huyện, trước 2025) hoặc “commune” (cấp xã, sau cải cách 2025).",
        )

    periods_node = data.get("periods")
    if not isinstance(periods_node, list) or not periods_node:
        r.fail(data, "periods", "thiếu danh sách kỳ báo cáo “periods”.", "Ví dụ: - {id: Y2023, label: Năm 2023}")
    periods = []
    for i, p in enumerate(periods_node):
        if not isinstance(p, dict):
            r.fail(periods_node, i, "mỗi kỳ báo cáo cần có “id” và “label”.")
        periods.append(Period(r.text(p, "id"), r.text(p, "label")))
    if len({p.id for p in periods}) != len(periods):
        r.fail(data, "periods", "hai kỳ báo cáo trùng mã “id”.", "Mỗi kỳ cần một mã riêng.")

    insp = r.mapping(data.get("inspection"), "inspection", data)
    start, end = r.date(insp, "start"), r.date(insp, "end")
    if end < start:
        r.fail(insp, "end", "ngày kết thúc kiểm tra trước ngày bắt đầu.", "Sửa lại “start” và “end”.")
    inspection = Inspection(
        start=start,
        end=end,
        one_team=bool(insp.get("one_team", True)),
        sessions=r.text_list(insp, "sessions") or ("Sáng", "Chiều"),
        hours=r.text(insp, "hours", required=False, default="") or "",
    )

    units_node = data.get("units")
    if not isinstance(units_node, list) or not units_node:
        r.fail(data, "units", "thiếu danh sách đơn vị “units”.")
    units: list[Unit] = []
    seen: dict[str, int | None] = {}
    for i, u in enumerate(units_node):
        if not isinstance(u, dict):
            r.fail(units_node, i, "mỗi đơn vị phải có “code”, “name” và “forms”.")
        if u.get("code") is None or not str(u["code"]).strip():
            r.fail(
                u,
                "name" if "name" in u else None,
                f"đơn vị “{u.get('name', '?')}” chưa có mã (code).",
                'Thêm “code:” với mã đơn vị hành chính chính thức (mã GSO), ví dụ code: "218".',
            )
        code = str(u["code"]).strip()
        if code in seen:
            r.fail(
                u,
                "code",
                f"mã đơn vị “{code}” bị trùng (đã dùng ở dòng {seen[code]}).",
                "Mỗi đơn vị phải có một mã riêng; kiểm tra lại mã GSO.",
            )
        seen[code] = u.line_of("code")
        forms = r.text_list(u, "forms")
        for form_id in forms:
            if form_id not in known_forms:
                r.fail(
                    u,
                    "forms",
                    f"đơn vị “{code}” khai báo biểu “{form_id}” không có trong bộ biểu mẫu.",
                    f"Dùng một trong các biểu: {', '.join(sorted(known_forms))}.",
                )
        name = r.text(u, "name")
        planned = None
        if isinstance(u.get("planned"), dict):
            pn = u["planned"]
            planned = PlannedVisit(
                communes=r.text_list(pn, "communes"),
                date=r.date(pn, "date", required=False),
                session=r.text(pn, "session", required=False),
            )
        communes = r.text_list(u, "communes") or (name,)
        units.append(
            Unit(
                code=code,
                name=name,
                short_name=r.text(u, "short_name", required=False) or name,
                forms=forms,
                communes=communes,
                planned=planned,
            )
        )
        if planned and planned.date and not (start <= planned.date <= end):
            r.fail(
                u["planned"],
                "date",
                f"ngày dự kiến {_fmt_date(planned.date)} của “{name}” nằm ngoài thời gian kiểm tra "
                f"({_fmt_date(start)} – {_fmt_date(end)}).",
                "Sửa ngày dự kiến hoặc thời gian kiểm tra (inspection).",
            )

    contact = data.get("contact") or {}
    if not isinstance(contact, dict):
        r.fail(data, "contact", "mục “contact” phải là bảng khóa: giá trị (name, phone, email).")
    return Round(
        id=round_id,
        path=path.resolve(),
        province_code=province_code,
        province_name=province_name,
        issuing_body=issuing_body,
        issuer=r.text(data, "issuer"),
        place=r.text(data, "place", required=False) or province_name,
        plan_number=r.text(plan, "number"),
        plan_date=r.date(plan, "date"),
        title=r.text(plan, "title"),
        periods=tuple(periods),
        deadline=r.date(data, "deadline"),
        level=level,
        units=tuple(units),
        inspection=inspection,
        contact={str(k): nfc(str(v)) for k, v in contact.items() if v is not None},
        password=r.text(data, "password", required=False),
        server_url=r.text(data, "server_url", required=False),
        previous_round=r.text(data, "previous_round", required=False),
    )
