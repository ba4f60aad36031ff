"""Whether a value passes a CRD's structural schema, from a check compiled once per schema.

``structural_schema.check_schema`` reads the schema at every field of every object: a dozen
look-ups per field, and the field's path spelled out whether or not anything is wrong with
it. Nearly every object written is valid, so validation asks the compiled check first: it
looks at the same keywords, decided once per schema node, and spells no path. Only when it
says no does ``check_schema`` walk the value to name every problem.

The compiled check only has to be as strict as ``check_schema``, never less: where it is in
doubt (a subclass of a JSON type, a value of an unusual shape) it says no, and
``check_schema`` decides.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

Schema = dict[str, Any]
# The same names as ``mfx.api.schema``, which imports this module.
PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"

Check = Callable[[Any], bool]

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "object": (dict,),
    "array": (list,),
}


def compile_check(schema: Schema) -> Check:
    """A function telling whether a value passes ``check_schema`` against ``schema`` unrefused."""
    if schema.get(INT_OR_STRING):
        return _int_or_string
    # No type, or one ``check_schema`` does not know, is no check of the type at all.
    types = _TYPES.get(schema.get("type") or "")
    enum = schema["enum"] if "enum" in schema else None
    string, number = _string_check(schema), _number_check(schema)
    array, obj = _array_check(schema), _object_check(schema)

    def check(value: Any) -> bool:
        kind = type(value)
        if types is not None and kind not in types:
            return False  # a wrong type, or a subclass of the right one: check_schema decides
        if enum is not None and value not in enum:
            return False
        if kind is str:
            return string is None or string(value)
        if kind is int or kind is float:
            return number is None or number(value)
        if kind is list:
            return array(value)
        if kind is dict:
            return obj(value)
        return kind is bool or value is None

    return check


def _int_or_string(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is str


def _string_check(schema: Schema) -> Check | None:
    shortest, longest = schema.get("minLength"), schema.get("maxLength")
    pattern = ecma_pattern(schema["pattern"]) if "pattern" in schema else None
    if shortest is None and longest is None and pattern is None:
        return None

    def check(value: str) -> bool:
        if shortest is not None and len(value) < shortest or longest is not None and len(value) > longest:
            return False
        return pattern is None or pattern.search(value) is not None

    return check


def _number_check(schema: Schema) -> Check | None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is None and high is None:
        return None
    above, below = bool(schema.get("exclusiveMinimum")), bool(schema.get("exclusiveMaximum"))

    def check(value: float) -> bool:
        if low is not None and (value < low or (above and value == low)):
            return False
        return high is None or not (value > high or (below and value == high))

    return check


def _array_check(schema: Schema) -> Check:
    fewest, most = schema.get("minItems"), schema.get("maxItems")
    items = schema.get("items")
    item_check = compile_check(items) if isinstance(items, dict) else None
    map_keys = tuple(schema.get("x-kubernetes-list-map-keys") or ()) \
        if schema.get("x-kubernetes-list-type") == "map" else None

    def check(value: list[Any]) -> bool:
        if fewest is not None and len(value) < fewest or most is not None and len(value) > most:
            return False
        if item_check is not None:
            for item in value:
                if item is None or not item_check(item):
                    return False
        return map_keys is None or _unique(value, map_keys)

    return check


def _unique(value: list[Any], keys: tuple[str, ...]) -> bool:
    """No two items of a list-map share their keys (``check_schema``'s duplicate rule)."""
    seen: set[tuple[Any, ...]] = set()
    for item in value:
        if not isinstance(item, dict):
            continue
        key = tuple(item.get(k) for k in keys)
        if not all(isinstance(k, (str, int, float, bool)) for k in key):
            continue
        if key in seen:
            return False
        seen.add(key)
    return True


def _object_check(schema: Schema) -> Check:
    preserve = bool(schema.get(PRESERVE))
    properties: dict[str, Schema] = schema.get("properties") or {}
    if preserve and not properties:
        return _anything
    props = {key: compile_check(sub) for key, sub in properties.items()}
    extra = schema.get("additionalProperties")
    extra_check = compile_check(extra) if isinstance(extra, dict) else None
    required = tuple(schema.get("required") or ())

    def check(value: dict[str, Any]) -> bool:
        for key, item in value.items():
            child = props.get(key)
            if child is not None:
                if item is not None and not child(item):
                    return False
            elif extra_check is not None:
                if item is None or not extra_check(item):
                    return False
            elif not preserve:
                return False  # an unknown field
        for key in required:
            if value.get(key) is None:
                return False
        return True

    return check


def _anything(value: Any) -> bool:
    return True


@functools.lru_cache(maxsize=64)
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    r"""A CRD ``pattern`` (ECMA 262 flavour) as a Python regex.

    In ECMA 262 (and Go's RE2, which Kubernetes uses) ``$`` matches only at the end of the
    text; in Python it also matches before a final newline, which would let "sha256:...\n"
    through. Unescaped ``$`` outside character classes becomes ``\Z``.
    """
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            out.append(r"\Z")
            continue
        out.append(char)
    return re.compile("".join(out))
