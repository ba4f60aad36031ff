"""A parsed JSONPath template walked over data: the values each of its nodes selects."""

from __future__ import annotations

from typing import Any

from mfx.server.jsonpath_syntax import (
    Action,
    Branches,
    Field,
    Filter,
    Index,
    JSONPathError,
    Literal,
    Node,
    Path,
    Recursive,
    Step,
    Text,
    Wildcard,
)

# --- evaluation -------------------------------------------------------------------------------


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _descend(value: Any) -> list[Any]:
    """``value`` and everything below it, parents first (``..``)."""
    found = []
    children = _children(value)
    if children:
        found.append(value)
        for child in children:
            found.extend(_descend(child))
    return found


def _index(values: list[Any], step: Index) -> list[Any]:
    length = len(values)
    start = 0 if step.start is None else step.start
    if start < 0:
        start += length
    if step.single:
        end = start + 1
    else:
        end = length if step.end is None else step.end
        if end < 0:
            end += length
    if end == start:
        return []
    if not 0 <= start < length:
        raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
    if not 0 <= end <= length:
        raise JSONPathError(f"array index out of bounds: index {end - 1}, length {length}")
    if start > end:
        raise JSONPathError(f"starting index {start} is greater than ending index {end}")
    return values[start:end:step.step or 1]


def _comparable(left: Any, right: Any) -> bool:
    numbers = (int, float)
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return True
    return isinstance(left, str) and isinstance(right, str)


def _compare(left: Any, op: str, right: Any) -> bool:
    if not _comparable(left, right):
        return False  # kubectl refuses to compare a string with a number: no match
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if isinstance(left, bool):
        return False
    return bool({"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op])


def _passes(item: Any, step: Filter) -> bool:
    lefts = _walk([item], step.left)
    if step.op == "exists":
        return bool(lefts)
    rights = _walk([item], step.right)
    if not lefts or not rights:
        return False
    if len(lefts) > 1 or len(rights) > 1:
        raise JSONPathError("can only compare one element at a time")
    return _compare(lefts[0], step.op, rights[0])


def _apply(values: list[Any], step: Step) -> list[Any]:
    if isinstance(step, Field):  # most steps are fields: the fast path
        name = step.name
        return [value[name] for value in values if isinstance(value, dict) and name in value]
    found: list[Any] = []
    if isinstance(step, Literal):
        return [step.value for _ in values]
    if isinstance(step, Branches):  # each branch over every value, branch after branch (as kubectl)
        return [found for branch in step.branches for found in _walk(values, branch)]
    for value in values:
        if value is None:
            continue
        if isinstance(step, Wildcard):
            found.extend(_children(value))
        elif isinstance(step, Recursive):
            found.extend(_descend(value))
        elif isinstance(step, Index):
            if not isinstance(value, list):
                raise JSONPathError(f"{_go_type(value)} is not array or slice")
            found.extend(_index(value, step))
        elif isinstance(step, Filter):
            if not isinstance(value, list):
                raise JSONPathError(f"{_go_type(value)} is not array or slice and cannot be filtered")
            found.extend(item for item in value if _passes(item, step))
    return found


def _walk(values: list[Any], path: Path) -> list[Any]:
    for step in path:
        values = _apply(values, step)
    return values


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "interface {}"


def find_results(data: Any, nodes: tuple[Node, ...]) -> list[list[Any]]:
    """One list of values per printed node, ranges unrolled (kubectl's FindResults)."""
    results: list[list[Any]] = []
    for node in nodes:
        if isinstance(node, Text):
            results.append([node.text])
        elif isinstance(node, Action):
            results.append(_walk([data], node.path))
        else:
            for item in _walk([data], node.path):
                results.extend(find_results(item, node.body))
    return results
