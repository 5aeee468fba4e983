"""YAML loading that remembers where every value came from, so errors can name the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .fsutil import os_reason


class ConfigError(Exception):
    """A configuration file (round, form, rules) is wrong. The message is Vietnamese and user-facing."""

    def __init__(self, path: str | Path, line: int | None, message: str, fix: str = "") -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.path}" + (f", dòng {self.line}" if self.line else "")
        text = f"Lỗi trong tệp {where}: {self.message}"
        if self.fix:
            text += f"\nCách sửa: {self.fix}"
        return text


class LinedDict(dict):
    """A dict that knows the source line of itself and of each key."""

    line: int | None = None
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key, self.line)


class LinedList(list):
    line: int | None = None
    item_lines: list[int]

    def line_of(self, index: int) -> int | None:
        try:
            return self.item_lines[index]
        except IndexError:
            return self.line


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LinedDict:
    loader.flatten_mapping(node)
    result = LinedDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:  # "[a, b]: …" or "{a: b}: …" as a key
            raise yaml.constructor.ConstructorError(
                None, None, "tên mục không hợp lệ (một danh sách hay bảng khóa đứng ở chỗ tên mục)", key_node.start_mark
            ) from None
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"khóa “{key}” bị lặp lại", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LinedList:
    result = LinedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode):
    """A date that does not exist (2024-02-30) stays text, so the caller can say which line is wrong."""
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


# PyYAML's problems, said in Vietnamese (unknown ones are shown as PyYAML words them).
_YAML_PROBLEMS = (
    ("could not find expected ':'", "thiếu dấu hai chấm “:” sau tên mục"),
    ("mapping values are not allowed here", "có dấu hai chấm “:” trong giá trị; hãy đặt giá trị trong ngoặc kép"),
    ("cannot start any token", "có ký tự tab; YAML chỉ thụt lề bằng dấu cách"),
    ("found duplicate anchor", "trùng tên neo (&)"),
    ("found undefined alias", "tham chiếu (*) tới neo không tồn tại"),
    ("expected <block end>", "thụt lề không khớp với các dòng phía trên"),
    ("did not find expected key", "thụt lề không khớp với các dòng phía trên"),
    ("found unexpected end of stream", "thiếu dấu ngoặc kép đóng"),
    ("while scanning a quoted scalar", "thiếu dấu ngoặc kép đóng"),
)


def load_yaml(path: str | Path) -> Any:
    """Load a YAML file; any problem becomes a ConfigError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "không tìm thấy tệp.", "Kiểm tra lại đường dẫn.") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, "tệp không phải văn bản UTF-8.", "Lưu lại tệp với bảng mã UTF-8.") from None
    except OSError as exc:
        raise ConfigError(path, None, f"không đọc được tệp ({os_reason(exc)}).") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark and "expected ':'" in str(exc.problem):
            mark = exc.context_mark  # a key without its colon: the key's own line, not the next one
        line = mark.line + 1 if mark else None
        problem = str(exc.problem or exc)
        explained = next((vi for en, vi in _YAML_PROBLEMS if en in problem), None)
        raise ConfigError(
            path,
            line,
            f"cú pháp YAML không hợp lệ: {explained}." if explained else f"cú pháp YAML không hợp lệ ({problem}).",
            "Kiểm tra thụt lề, dấu hai chấm và dấu ngoặc kép ở dòng này.",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"cú pháp YAML không hợp lệ ({exc}).") from None
    return data


def line_of(node: Any, key: str | int | None = None) -> int | None:
    if key is not None and isinstance(node, (LinedDict, LinedList)):
        return node.line_of(key)  # type: ignore[arg-type]
    return getattr(node, "line", None)
