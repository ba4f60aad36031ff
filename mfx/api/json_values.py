"""What a JSON value may hold: how messages name and quote values, and what no encoder writes back.

YAML files, request bodies, patches and objects built in code all reach validation, so these
rules assume nothing of a value: they are iterative (depth itself is a problem to report) and
never format a value before knowing it prints (Python will not print an integer of over 4300
digits).
"""

from __future__ import annotations

import math

from mfx.api.field_paths import join_index, join_key

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

# Far deeper than any manifest, and well inside what the encoders and the validator can
# recurse through (orjson stops at 254 levels, Python at about 1000 frames).
MAX_DEPTH = 100
# What JSON readers everywhere (and Kubernetes clients) agree an integer can be.
INT64_RANGE = (-(2**63), 2**63 - 1)


def json_type(value: Any) -> str:
    """The JSON name of a value's type, as messages give it ("got a list")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def json_type_phrase(value: Any) -> str:
    """The type name with its article, for prose ("not a list", "got an object", "got null")."""
    name = json_type(value)
    if name == "null":
        return name
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def show_value(value: Any) -> str:
    """A value as a message quotes it; collections are elided to their brackets."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "{...}" if isinstance(value, dict) else "[...]"
    return repr(value)


def depth_problem() -> str:
    return f"nested more than {MAX_DEPTH} levels deep: flatten the structure"


def number_problem(value: int | float) -> str | None:
    """Why a number cannot be stored as JSON, or None when it can."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a JSON number: use a finite number or quote it"
    if isinstance(value, int) and not INT64_RANGE[0] <= value <= INT64_RANGE[1]:
        return "integer outside the 64-bit range: quote it to keep it as text"
    return None


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored as JSON text (a lone UTF-16 surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"contains a lone UTF-16 surrogate (U+{ord(text[error.start]):04X}), which is not text"
    return None


def _clean(value: Any, depth: int) -> bool:
    """Whether ``json_value_problems`` would find nothing (the same checks, no paths).

    Every object passes here on every write: the JSON types are told apart by exact type,
    and the strings, booleans and nulls that make up most of an object are checked in the
    loop over their container, not in a call each. Subclasses take ``_clean_any``."""
    kind = type(value)
    if kind is dict:
        if depth >= MAX_DEPTH:
            return False
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or text_problem(key) is None):
                return _clean_any(value, depth)
            if type(item) is str:
                if not (item.isascii() or text_problem(item) is None):
                    return False
            elif item is not None and item is not True and item is not False and not _clean(item, depth + 1):
                return False
        return True
    if kind is list:
        if depth >= MAX_DEPTH:
            return False
        for item in value:
            if type(item) is str:
                if not (item.isascii() or text_problem(item) is None):
                    return False
            elif item is not None and item is not True and item is not False and not _clean(item, depth + 1):
                return False
        return True
    if kind is str:
        return value.isascii() or text_problem(value) is None
    if kind is int:
        return bool(INT64_RANGE[0] <= value <= INT64_RANGE[1])
    if kind is float:
        return math.isfinite(value)
    return _clean_any(value, depth)


def _clean_any(value: Any, depth: int) -> bool:
    """``_clean`` for values of any type, subclasses of the JSON types included."""
    if isinstance(value, str):
        return value.isascii() or text_problem(value) is None
    if isinstance(value, dict):
        return depth < MAX_DEPTH and all(
            isinstance(key, str) and (key.isascii() or text_problem(key) is None) and _clean_any(item, depth + 1)
            for key, item in value.items())
    if isinstance(value, list):
        return depth < MAX_DEPTH and all(_clean_any(item, depth + 1) for item in value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return INT64_RANGE[0] <= value <= INT64_RANGE[1]
    if isinstance(value, float):
        return math.isfinite(value)
    return False


def json_value_problems(obj: Any, limit: int) -> Iterator[tuple[str, str]]:
    """(field path, message) of what no JSON encoder (nor a Kubernetes client) can write back.

    Stops looking once ``limit`` problems are found: a value with thousands of them gets the
    gist. The keys of one object are all reported together, so the count may pass the limit.
    """
    if _clean(obj, 0):
        return  # the usual case, found without spelling a field path for every value
    found = 0
    stack: list[tuple[Any, str, int]] = [(obj, "", 0)]
    while stack and found < limit:
        value, path, depth = stack.pop()
        problem: str | None = None
        if isinstance(value, dict | list) and depth >= MAX_DEPTH:
            problem = depth_problem()
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if not isinstance(key, str):
                    yield path, f"keys must be strings, got {json_type(key)}"
                    found += 1
                elif text_problem(key) is not None:
                    yield path, f"a key {text_problem(key)}"
                    found += 1
                else:
                    stack.append((item, join_key(path, key), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, join_index(path, i), depth + 1) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, str):
            problem = text_problem(value)
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if not INT64_RANGE[0] <= value <= INT64_RANGE[1]:
                digits = len(str(abs(value))) if abs(value) < 10**100 else "over 100"
                problem = (f"an integer of {digits} digits is outside the 64-bit range "
                           f"({INT64_RANGE[0]} to {INT64_RANGE[1]})")
        elif isinstance(value, float):
            if not math.isfinite(value):
                problem = f"must be a finite number, got {value}"
        else:
            problem = f"a {type(value).__name__} is not a JSON value"
        if problem is not None:
            yield path, problem
            found += 1
