"""Where the typed spec models (``mfx.api.models``) and the CRD schemas (``crds/``) disagree.

The CRDs are the source: the API server and kubectl validate against them and ``mfx explain``
reads them. The models give controllers typed access and are written by hand, so a test holds
each model to its CRD: the same fields under the same names, the same required ones, the
same JSON types and enum values. (A test of its own holds the defaults together.)
"""

from __future__ import annotations

import enum
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from mfx.api.field_paths import join_key
from mfx.api.schema import INT_OR_STRING, PRESERVE, Schema

_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def spec_model_drift(model: type[BaseModel], schema: Schema, path: str = "spec") -> list[str]:
    """Every difference between ``model`` and the object schema at ``path``; [] when they agree."""
    problems: list[str] = []
    props: dict[str, Schema] = schema.get("properties") or {}
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    problems.extend(f"{join_key(path, name)}: in the CRD, not in {model.__name__}"
                    for name in sorted(props.keys() - fields.keys()))
    problems.extend(f"{join_key(path, name)}: in {model.__name__}, not in the CRD"
                    for name in sorted(fields.keys() - props.keys()))
    required = set(schema.get("required") or ())
    for name, info in fields.items():
        if name not in props:
            continue
        child = join_key(path, name)
        if info.is_required() != (name in required):
            where = model.__name__ if info.is_required() else "the CRD"
            problems.append(f"{child}: required only in {where}")
        problems.extend(_type_drift(info.annotation, props[name], child))
    return problems


def _type_drift(annotation: Any, schema: Schema, path: str) -> list[str]:
    annotation = _without_none(annotation)
    expected = schema.get("type")
    if schema.get(INT_OR_STRING):
        if _members(annotation) == {int, str}:
            return []
        return [f"{path}: the CRD takes an integer or a string, the model {_shown(annotation)}"]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if expected != "object":
            return [_mismatch(path, expected, annotation)]
        return spec_model_drift(annotation, schema, path)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        problems = [] if expected == "string" else [_mismatch(path, expected, annotation)]
        values = {member.value for member in annotation}
        if values != set(schema.get("enum") or ()):
            problems.append(f"{path}: the model allows {sorted(values)}, the CRD {sorted(schema.get('enum') or ())}")
        return problems
    origin = get_origin(annotation)
    if origin is list:
        if expected != "array":
            return [_mismatch(path, expected, annotation)]
        (item,) = get_args(annotation)
        return _type_drift(item, schema.get("items") or {}, path + "[]")
    if origin is dict:
        if expected != "object":
            return [_mismatch(path, expected, annotation)]
        _, value = get_args(annotation)
        value_schema = schema.get("additionalProperties")
        if isinstance(value_schema, dict):
            return _type_drift(value, value_schema, path + "[*]")
        if value is Any and schema.get(PRESERVE):
            return []
        return [f"{path}: the model is a map of {_shown(value)}; the CRD types no values and keeps no unknown fields"]
    if _JSON_TYPES.get(annotation) != expected:
        return [_mismatch(path, expected, annotation)]
    return []


def _without_none(annotation: Any) -> Any:
    """``X | None`` as ``X``: an optional field is one the CRD leaves out of ``required``."""
    members = _members(annotation) - {type(None)}
    if len(members) == 1 and type(None) in _members(annotation):
        return next(iter(members))
    if type(None) in _members(annotation):
        return Union[tuple(members)]  # noqa: UP007 - built from a runtime tuple of types
    return annotation


def _members(annotation: Any) -> set[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return set(get_args(annotation))
    return {annotation}


def _mismatch(path: str, expected: Any, annotation: Any) -> str:
    return f"{path}: the CRD says {expected or 'no type'}, the model {_shown(annotation)}"


def _shown(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)
