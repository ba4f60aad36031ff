"""Dataclasses to JSON values and back, checked against their type hints.

What crosses the engine's socket is the api's frozen dataclasses, enums and plain values.
Decoding checks every field against its annotation and says which one is wrong, so a
malformed request is refused with a clear message instead of failing deep in the engine.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar

from mfx.errors import BadRequestError

T = TypeVar("T")


def encode(value: Any) -> Any:
    """A JSON-ready value: dataclasses become objects of their fields, enums their values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(kind: Any, value: Any, where: str = "") -> Any:
    """``value`` (parsed JSON) as ``kind``; BadRequestError naming the field when it is not."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return value
    if kind is None or kind is type(None):
        if value is not None:
            raise _wrong(where, "null", value)
        return None
    if origin is typing.Union or origin is types.UnionType:
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        problems = []
        for option in options:
            if option is type(None):
                continue
            try:
                return decode(option, value, where)
            except BadRequestError as exc:
                problems.append(str(exc))
        raise BadRequestError("; ".join(problems) or _wrong(where, str(kind), value).message)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, value, where)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in kind)
            raise BadRequestError(f"{where or 'value'}: {value!r} is not one of {allowed}") from None
    if kind is bool:
        if not isinstance(value, bool):
            raise _wrong(where, "a boolean", value)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(where, "an integer", value)
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(where, "a number", value)
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise _wrong(where, "a string", value)
        return value
    if origin in (Mapping, dict, typing.Mapping) or kind in (dict, Mapping):
        if not isinstance(value, dict):
            raise _wrong(where, "an object", value)
        pair = typing.get_args(kind)
        item = pair[1] if len(pair) == 2 else Any
        return {str(k): decode(item, v, f"{where}.{k}") for k, v in value.items()}
    if origin in (Sequence, list, tuple, typing.Sequence) or kind in (list, tuple):
        if not isinstance(value, list):
            raise _wrong(where, "an array", value)
        element = [a for a in typing.get_args(kind) if a is not Ellipsis]
        item = element[0] if element else Any
        items: list[Any] = [decode(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list or kind is list else tuple(items)
    raise TypeError(f"wire.decode cannot decode {kind!r}")


def decode_as(kind: type[T], value: Any, where: str = "") -> T:
    return typing.cast(T, decode(kind, value, where))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode_dataclass(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _wrong(where, f"an object ({cls.__name__})", value)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise BadRequestError(f"{where or cls.__name__}: unknown field(s) {', '.join(unknown)}; "
                              f"expected {', '.join(fields)}")
    hints = _hints(cls)
    args = {}
    for name, f in fields.items():
        path = f"{where}.{name}" if where else name
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise BadRequestError(f"{path}: missing (a {cls.__name__} needs it)")
            continue
        args[name] = decode(hints[name], value[name], path)
    return cls(**args)


def _wrong(where: str, expected: str, value: Any) -> BadRequestError:
    return BadRequestError(f"{where or 'value'}: expected {expected}, got {type(value).__name__} {value!r:.80}")
