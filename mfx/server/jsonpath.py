"""kubectl's JSONPath: printer-column paths (``additionalPrinterColumns``) and ``-o jsonpath=``.

A template is text with actions in braces, as ``kubectl get -o jsonpath=`` takes it::

    {.metadata.name}
    {.items[*].metadata.name}
    {range .items[*]}{.metadata.name}{"\\t"}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}

Inside an action: ``.field`` (``\\.`` escapes a dot in a key), ``['key']``, ``.*`` and ``[*]``,
``..field`` (recursive descent), ``[i]``, ``[start:end:step]``, unions ``[0,2]``, filters
``[?(@.a.b=="x")]`` with ``== != < > <= >=`` or bare existence ``[?(@.a)]``, string and number
literals, and ``range``/``end`` blocks. A missing field yields no values (kubectl prints nothing,
or ``<none>`` in a column), never an error; an index past the end of a list is an error, as in
kubectl.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mfx.errors import BadRequestError

# --- syntax tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Wildcard:
    """``.*`` or ``[*]``: every value of a map or list."""


@dataclass(frozen=True)
class Recursive:
    """``..``: the value and everything below it."""


@dataclass(frozen=True)
class Index:
    """``[i]`` or ``[start:end:step]``; ``single`` for a plain index (out of range is an error)."""

    start: int | None
    end: int | None
    step: int | None
    single: bool


@dataclass(frozen=True)
class Branches:
    """``[a,b]``: the values of each branch, in order."""

    branches: tuple[Path, ...]


@dataclass(frozen=True)
class Filter:
    """``[?(@.left OP right)]``; ``op`` is ``exists`` for a bare ``[?(@.left)]``."""

    left: Path
    op: str
    right: Path


@dataclass(frozen=True)
class Literal:
    value: Any


Step = Field | Wildcard | Recursive | Index | Branches | Filter | Literal
Path = tuple[Step, ...]


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Action:
    path: Path


@dataclass(frozen=True)
class Range:
    path: Path
    body: tuple[Node, ...]


Node = Text | Action | Range


class JSONPathError(BadRequestError):
    """A template that does not parse, or cannot be applied to the data (kubectl's wording)."""


# --- parsing ----------------------------------------------------------------------------------

_TERMINATORS = set(".,[]$@{} \t\r\n")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")
_SLICE = re.compile(r"^(-?\d*)(?::(-?\d*))?(?::(-?\d*))?$")
_QUOTED_KEY = re.compile(r"^'([^']*)'$|^\"([^\"]*)\"$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v"}


def _unquote(literal: str) -> str:
    """A quoted string literal with Go's escapes (``{"\\n"}``, ``'it\\'s'``, ``\\u00e9``)."""
    body = literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 == len(body):
            out.append(char)
            i += 1
            continue
        code = body[i + 1]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            i += 2
        elif code in "uU":
            digits = 4 if code == "u" else 8
            hex_digits = body[i + 2:i + 2 + digits]
            if len(hex_digits) != digits or not all(c in "0123456789abcdefABCDEF" for c in hex_digits):
                raise JSONPathError(f"unquote string {literal} error: invalid syntax")
            out.append(chr(int(hex_digits, 16)))
            i += 2 + digits
        else:
            raise JSONPathError(f"unquote string {literal} error: invalid syntax")
    return "".join(out)


class _ActionParser:
    """The steps of one action (the text between ``{`` and ``}``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def steps(self) -> list[Step | str]:
        """Steps, and the identifiers ``range``/``end`` as plain strings."""
        found: list[Step | str] = []
        while self.pos < len(self.text):
            rest = self.text[self.pos:]
            char = rest[0]
            if rest.startswith("[?("):
                found.append(self._filter())
            elif rest.startswith(".."):
                if found and isinstance(found[-1], Recursive):
                    raise JSONPathError("invalid multiple recursive descent")
                self.pos += 2
                found.append(Recursive())
                if self.pos < len(self.text) and self.text[self.pos] not in _TERMINATORS:
                    found.append(self._field())
            elif char in " @$":
                self.pos += 1  # the current object: nothing to do
            elif char == "[":
                found.append(self._bracket())
            elif char in "\"'":
                found.append(Literal(self._quoted(char)))
            elif char == ".":
                self.pos += 1
                found.append(self._field())
            elif char in "+-" or char.isdigit():
                found.append(self._number())
            elif char == "_" or char.isalnum():
                found.append(self._identifier())
            elif char in "\r\n":
                raise JSONPathError("unclosed action")
            else:
                raise JSONPathError(f"unrecognized character in action: {char!r}")
        return found

    def _field(self) -> Step:
        start = self.pos
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            if char in _TERMINATORS:
                break
            self.pos += 1
        name = self.text[start:self.pos]
        if name == "*":
            return Wildcard()
        return Field(name.replace("\\", ""))

    def _identifier(self) -> Step | str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _TERMINATORS:
            self.pos += 1
        word = self.text[start:self.pos]
        if word in ("true", "false"):
            return Literal(word == "true")
        if word in ("range", "end"):
            return word
        raise JSONPathError(f"unrecognized identifier {word}")

    def _number(self) -> Step:
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise JSONPathError(f"cannot parse number {self.text[self.pos:]}")
        self.pos = match.end()
        text = match.group(0)
        return Literal(float(text) if "." in text else int(text))

    def _quoted(self, quote: str) -> str:
        start = self.pos
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            self.pos += 1
            if char == quote:
                return _unquote(self.text[start:self.pos])
            if char == "\n":
                break
        raise JSONPathError("unterminated quoted string")

    def _bracket(self) -> Step:
        end = self.text.find("]", self.pos)
        if end < 0:
            raise JSONPathError("unterminated array")
        inner = self.text[self.pos + 1:end]
        self.pos = end + 1
        return _bracket_step(inner)

    def _filter(self) -> Step:
        self.pos += 3
        start = self.pos
        quote: str | None = None
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if quote is not None:
                if char == "\\":
                    self.pos += 1
                elif char == quote:
                    quote = None
            elif char in "\"'":
                quote = char
            elif char == ")":
                break
            self.pos += 1
        if self.pos >= len(self.text) or quote is not None:
            raise JSONPathError("unterminated filter")
        expression = self.text[start:self.pos]
        self.pos += 1
        if self.pos >= len(self.text) or self.text[self.pos] != "]":
            raise JSONPathError("unclosed array expect ]")
        self.pos += 1
        return _filter_step(expression)


def _bracket_step(inner: str) -> Step:
    if inner.strip() == "*":
        return Wildcard()
    parts = _split_union(inner)
    if len(parts) > 1:
        return Branches(tuple(_path_of(_bracket_step(p.strip())) for p in parts))
    key = _QUOTED_KEY.match(inner.strip())
    if key is not None:
        name = key.group(1) if key.group(1) is not None else key.group(2)
        return Field(name)
    match = _SLICE.match(inner.strip())
    if match is None or not inner.strip():
        raise JSONPathError(f"invalid array index {inner}")
    start, end, step = (int(g) if g else None for g in match.groups())
    single = ":" not in inner
    if step is not None and step <= 0:
        raise JSONPathError("step must be > 0")
    return Index(start=start, end=end, step=step, single=single)


def _split_union(inner: str) -> list[str]:
    parts: list[str] = []
    quote: str | None = None
    current: list[str] = []
    for char in inner:
        if quote is None and char == ",":
            parts.append("".join(current))
            current = []
            continue
        if char in "\"'":
            quote = None if quote == char else quote or char
        current.append(char)
    parts.append("".join(current))
    return parts


def _path_of(step: Step) -> Path:
    return (step,)


def _filter_step(expression: str) -> Filter:
    quote: str | None = None
    for i, char in enumerate(expression):
        if char in "\"'":
            quote = None if quote == char else quote or char
            continue
        if quote is not None:
            continue
        for op in _OPERATORS:
            if expression.startswith(op, i):
                return Filter(_action_path(expression[:i]), op, _action_path(expression[i + len(op):]))
    return Filter(_action_path(expression), "exists", ())


def _action_path(text: str) -> Path:
    steps = _ActionParser(text).steps()
    if any(isinstance(s, str) for s in steps):
        raise JSONPathError(f"range and end are not allowed in {text!r}")
    return tuple(s for s in steps if not isinstance(s, str))


def _split_template(template: str) -> list[tuple[bool, str]]:
    """(is_action, text) pieces: literal text outside braces, action text inside them."""
    pieces: list[tuple[bool, str]] = []
    pos = 0
    while pos < len(template):
        open_at = template.find("{", pos)
        if open_at < 0:
            pieces.append((False, template[pos:]))
            break
        if open_at > pos:
            pieces.append((False, template[pos:open_at]))
        close_at = _action_end(template, open_at + 1)
        pieces.append((True, template[open_at + 1:close_at]))
        pos = close_at + 1
    return pieces


def _action_end(template: str, pos: int) -> int:
    """Index of the ``}`` closing the action starting at ``pos`` (braces in quotes do not count)."""
    quote: str | None = None
    while pos < len(template):
        char = template[pos]
        if quote is not None:
            if char == "\\":
                pos += 1
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "}":
            return pos
        elif char in "\r\n":
            break
        pos += 1
    raise JSONPathError("unclosed action")


@functools.lru_cache(maxsize=256)
def parse_template(template: str) -> tuple[Node, ...]:
    """The nodes of a template; ``range ... end`` nest (an unclosed range runs to the end)."""
    stack: list[tuple[Path, list[Node]]] = []
    current: list[Node] = []
    for is_action, text in _split_template(template):
        if not is_action:
            current.append(Text(text))
            continue
        steps = _ActionParser(text).steps()
        if steps and steps[0] == "range":
            stack.append((_plain_steps(steps[1:]), current))
            current = []
        elif steps == ["end"]:
            if not stack:
                raise JSONPathError("not in range, nothing to end")
            path, outer = stack.pop()
            outer.append(Range(path, tuple(current)))
            current = outer
        else:
            current.append(Action(_plain_steps(steps)))
    while stack:
        path, outer = stack.pop()
        outer.append(Range(path, tuple(current)))
        current = outer
    return tuple(current)


def _plain_steps(steps: list[Step | str]) -> Path:
    for step in steps:
        if isinstance(step, str):
            raise JSONPathError(f"unexpected {step} inside an action")
    return tuple(s for s in steps if not isinstance(s, str))


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


# --- printing ---------------------------------------------------------------------------------


def _go_float(value: float) -> str:
    """A float64 as Go's ``fmt.Print`` writes it: shortest digits, %e below 1e-4 and from 1e6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    number = Decimal(repr(value)).normalize()  # repr is the shortest text that round-trips
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    leading = len(digits) + exponent - 1  # the power of ten of the first digit
    if -4 <= leading < 6:
        return format(number, "f")
    text = "".join(map(str, digits))
    mantissa = text[0] + (f".{text[1:]}" if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if leading < 0 else '+'}{abs(leading):02d}"


def _go_json(value: Any) -> str:
    """What Go's ``json.Marshal`` writes: keys sorted, compact, ``<>&`` escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def value_text(value: Any) -> str:
    """One value as kubectl prints it: maps and lists as JSON, scalars as Go prints them."""
    if isinstance(value, (dict, list)):
        return _go_json(value)
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def render(template: str, data: Any) -> str:
    """``template`` applied to ``data``, exactly as ``kubectl get -o jsonpath=TEMPLATE`` prints it."""
    return "".join(" ".join(value_text(v) for v in values) for values in find_results(data, parse_template(template)))


def evaluate(obj: Any, path: str) -> list[Any]:
    """All values a printer-column ``path`` (``.a.b``, with or without braces) selects in ``obj``.

    As in Kubernetes' table convertor, a path that cannot be applied yields no values."""
    try:
        nodes = _column_template(path)
        return [v for values in find_results(obj, nodes) for v in values]
    except JSONPathError:
        return []


@functools.lru_cache(maxsize=256)
def _column_template(path: str) -> tuple[Node, ...]:
    text = path.strip()
    if not (text.startswith("{") and text.endswith("}")):
        text = "{" + text + "}"  # as Kubernetes wraps a column's path
    return parse_template(text)
