"""kubectl's JSONPath templates parsed into a syntax tree (``parse_template``).

The grammar is the one ``mfx.server.jsonpath`` describes; parsing is separate from walking the
data (``mfx.server.jsonpath_eval``) and from printing (``mfx.server.jsonpath``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
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


# Shared by the whole process on purpose: a table prints the same few templates for every row,
# and a parsed template is immutable (frozen dataclasses in tuples), so no caller can change it.
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
