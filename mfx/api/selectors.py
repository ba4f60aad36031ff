"""Label selectors in Kubernetes syntax: parse once, match many.

Grammar (whitespace is free between tokens; a comma means AND)::

    selector    := "" | requirement ("," requirement)*
    requirement := "!" key                      # label absent
                 | key                          # label present
                 | key ("=" | "==" | "!=") value
                 | key ("in" | "notin") "(" value ("," value)* ")"
                 | key (">" | "<") integer

As in Kubernetes, ``!=`` and ``notin`` also match objects that do not carry the label, and
``>``/``<`` compare integers (a label whose value is not an integer does not match).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mfx.errors import InvalidSelectorError

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_NAME_RE = re.compile(_NAME)
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_INTEGER_RE = re.compile(r"[-+]?[0-9]+")

# Characters that end an identifier, as in the Kubernetes selector lexer.
_SPECIAL = frozenset("!=,()<>")


class Operator(enum.StrEnum):
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = ">"
    LESS_THAN = "<"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return self.key not in labels or labels[self.key] not in self.values
        value = labels.get(self.key)
        if value is None or not _INTEGER_RE.fullmatch(value):
            return False
        bound = int(self.values[0])
        return int(value) > bound if op is Operator.GREATER_THAN else int(value) < bound

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({','.join(self.values)})"
        return f"{self.key}{op.value}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """All requirements must hold; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)

    @property
    def is_empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(req) for req in self.requirements)


def parse_selector(text: str | None) -> Selector:
    """Parse a Kubernetes label selector; raises ``InvalidSelectorError`` (a ValueError)."""
    if text is None or not text.strip():
        return Selector()
    return _Parser(text).parse()


def matches(selector: str | None, labels: Mapping[str, str] | None) -> bool:
    """Convenience for one-off checks: parse ``selector`` and match ``labels``."""
    return parse_selector(selector).matches(labels)


# --- parser ------------------------------------------------------------------------------


class _Tok(enum.Enum):
    IDENT = "identifier"
    COMMA = '","'
    OPEN = '"("'
    CLOSE = '")"'
    EQ = '"="'
    DEQ = '"=="'
    NEQ = '"!="'
    NOT = '"!"'
    GT = '">"'
    LT = '"<"'
    IN = '"in"'
    NOTIN = '"notin"'
    END = "end of input"


_SYMBOLS: dict[str, _Tok] = {
    "==": _Tok.DEQ,
    "!=": _Tok.NEQ,
    "=": _Tok.EQ,
    "!": _Tok.NOT,
    ",": _Tok.COMMA,
    "(": _Tok.OPEN,
    ")": _Tok.CLOSE,
    ">": _Tok.GT,
    "<": _Tok.LT,
}


@dataclass(frozen=True)
class _Token:
    kind: _Tok
    text: str
    position: int  # 0-based offset in the selector


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        two = text[i : i + 2]
        if two in _SYMBOLS:
            tokens.append(_Token(_SYMBOLS[two], two, i))
            i += 2
            continue
        if ch in _SPECIAL:
            tokens.append(_Token(_SYMBOLS[ch], ch, i))
            i += 1
            continue
        start = i
        while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
            i += 1
        word = text[start:i]
        kind = {"in": _Tok.IN, "notin": _Tok.NOTIN}.get(word, _Tok.IDENT)
        tokens.append(_Token(kind, word, start))
    tokens.append(_Token(_Tok.END, "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def error(self, message: str, token: _Token | None = None) -> InvalidSelectorError:
        where = (token or self.peek()).position
        return InvalidSelectorError(
            f'invalid label selector "{self.text}" at position {where + 1}: {message} '
            '(selectors look like "app=x,tier in (a,b),!legacy")'
        )

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind is not _Tok.END:
            self.pos += 1
        return token

    def expect(self, kind: _Tok, what: str) -> _Token:
        token = self.take()
        if token.kind is not kind:
            found = token.kind.value if token.kind is not _Tok.IDENT else f'"{token.text}"'
            raise self.error(f"expected {what}, found {found}", token)
        return token

    def parse(self) -> Selector:
        requirements = [self.requirement()]
        while self.peek().kind is _Tok.COMMA:
            self.take()
            requirements.append(self.requirement())
        if self.peek().kind is not _Tok.END:
            token = self.peek()
            raise self.error(f'expected "," or end of input, found "{token.text}"', token)
        return Selector(tuple(requirements))

    def requirement(self) -> Requirement:
        if self.peek().kind is _Tok.NOT:
            self.take()
            return Requirement(self.key(), Operator.DOES_NOT_EXIST)
        key = self.key()
        token = self.peek()
        if token.kind in (_Tok.COMMA, _Tok.END):
            return Requirement(key, Operator.EXISTS)
        self.take()
        if token.kind in (_Tok.EQ, _Tok.DEQ, _Tok.NEQ):
            op = {_Tok.EQ: Operator.EQUALS, _Tok.DEQ: Operator.DOUBLE_EQUALS}.get(
                token.kind, Operator.NOT_EQUALS
            )
            return Requirement(key, op, (self.single_value(),))
        if token.kind in (_Tok.IN, _Tok.NOTIN):
            op = Operator.IN if token.kind is _Tok.IN else Operator.NOT_IN
            return Requirement(key, op, self.value_set(key, op))
        if token.kind in (_Tok.GT, _Tok.LT):
            value = self.expect(_Tok.IDENT, "an integer")
            if not _INTEGER_RE.fullmatch(value.text):
                raise self.error(f'"{value.text}" is not an integer', value)
            op = Operator.GREATER_THAN if token.kind is _Tok.GT else Operator.LESS_THAN
            return Requirement(key, op, (value.text,))
        found = token.kind.value if token.kind is not _Tok.IDENT else f'"{token.text}"'
        raise self.error(
            f'expected an operator (=, ==, !=, in, notin, >, <) after "{key}", found {found}', token
        )

    def key(self) -> str:
        token = self.expect(_Tok.IDENT, "a label key")
        problem = _key_problem(token.text)
        if problem:
            raise self.error(problem, token)
        return token.text

    def single_value(self) -> str:
        # "a=" selects the empty value, as in Kubernetes.
        if self.peek().kind in (_Tok.COMMA, _Tok.END):
            return ""
        token = self.expect(_Tok.IDENT, "a label value")
        self.check_value(token)
        return token.text

    def value_set(self, key: str, op: Operator) -> tuple[str, ...]:
        self.expect(_Tok.OPEN, f'"(" after "{key} {op.value}"')
        values: list[str] = []
        if self.peek().kind is _Tok.CLOSE:
            raise self.error(f'"{op.value}" needs at least one value')
        while True:
            token = self.peek()
            if token.kind in (_Tok.COMMA, _Tok.CLOSE):
                values.append("")  # "(a,)" includes the empty value, as in Kubernetes
            else:
                token = self.expect(_Tok.IDENT, "a label value")
                self.check_value(token)
                values.append(token.text)
            separator = self.take()
            if separator.kind is _Tok.CLOSE:
                break
            if separator.kind is not _Tok.COMMA:
                found = (
                    separator.kind.value
                    if separator.kind is not _Tok.IDENT
                    else f'"{separator.text}"'
                )
                raise self.error(f'expected "," or ")" in the value list, found {found}', separator)
        return tuple(dict.fromkeys(values))

    def check_value(self, token: _Token) -> None:
        value = token.text
        if len(value) > 63 or not _NAME_RE.fullmatch(value):
            raise self.error(
                f'invalid label value "{value}": at most 63 characters, alphanumeric at both ends, '
                "with -, _ or . inside",
                token,
            )


def _key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.fullmatch(prefix)):
        return f'invalid label key prefix "{prefix}": expected a DNS subdomain like "example.com"'
    if not name or len(name) > 63 or not _NAME_RE.fullmatch(name):
        return (
            f'invalid label key "{key}": the name part must be 1-63 characters, alphanumeric at '
            "both ends, with -, _ or . inside"
        )
    return None
