"""Semantic versions (SemVer 2.0) and the version constraints of plugin dependencies.

Constraint syntax, a union of npm, Cargo and Ruby habits:

- comparators ``=1.2.0``, ``>=1.0``, ``<=1.4``, ``>1``, ``<2.0.0``
- ``~> 1.2`` (pessimistic: >=1.2.0 <2.0.0) and ``~> 1.2.3`` (>=1.2.3 <1.3.0)
- ``~1.2.3`` (tilde: >=1.2.3 <1.3.0; ``~1.2`` and ``~1`` likewise bump the last given part)
- ``^1.2.3`` (caret: >=1.2.3 <2.0.0; ``^0.2.3`` <0.3.0; ``^0.0.3`` <0.0.4)
- wildcards ``1.x``, ``1.2.*``, ``*``; a bare or ``=`` partial version is a wildcard too
  (``1.2`` means 1.2.x), a bare full version is an exact match
- hyphen ranges ``1.2 - 1.4`` (>=1.2.0 <1.5.0; with a full upper bound it is inclusive)
- ``,`` or whitespace between comparators means AND, ``||`` means OR

Pre-releases follow npm and Cargo: ``2.0.0-rc.1`` satisfies a set of comparators only if
it satisfies all of them and one of them names a pre-release of the same 2.0.0, so ``^1.0``
never picks up ``2.0.0-rc.1`` and ``>=2.0.0-rc.0`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache, total_ordering
from typing import Any

# ASCII digits only ("\d" would take any script's digits), and used with fullmatch ("$"
# would accept a trailing newline): a version is stored and compared as the text it is.
# Numbers have at most 19 digits, which Python converts (it refuses over 4300) and sorts fast.
MAX_DIGITS = 19
_NUM = r"0|[1-9][0-9]{0,18}"
_IDENT = r"[0-9A-Za-z-]+"
_VERSION_RE = re.compile(
    rf"(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?"
)
_PART = r"0|[1-9][0-9]{0,18}|[xX*]"
_PARTIAL_RE = re.compile(
    rf"(?P<major>{_PART})(?:\.(?P<minor>{_PART})(?:\.(?P<patch>{_PART})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?)?)?"
)
_SHORT_RE = re.compile(r"v?([0-9]{1,19}(?:\.[0-9]{1,19}){0,2})")
CONSTRAINT_EXAMPLES = "^1.2, >=1.0 <2.0, ~> 1.4"


class VersionError(ValueError):
    """Text that is not a semantic version."""


class ConstraintError(ValueError):
    """Text that is not a version constraint; ``detail`` says where the parser gave up."""

    def __init__(self, text: str, detail: str = "") -> None:
        self.text = text
        self.detail = detail
        super().__init__(f'"{text}" is not a version constraint (examples: {CONSTRAINT_EXAMPLES})')


def _closest(text: object) -> str:
    """'; did you mean "1.2.0"?' for text that is nearly a version (1.2, v1.2.3, " 1.0.0"), else ""."""
    if not isinstance(text, str):
        return ""
    m = _SHORT_RE.fullmatch(text.strip())
    if m is None:
        return ""
    parts = m[1].split(".")
    guess = ".".join(str(int(p)) for p in parts + ["0"] * (3 - len(parts)))
    return f'; did you mean "{guess}"?' if guess != text else ""


def _pre_key(pre: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    # Numeric identifiers sort numerically and before alphanumeric ones (SemVer 2.0, 11.4).
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre)


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION_RE.fullmatch(text) if isinstance(text, str) else None
        if m is None:
            raise VersionError(f'"{text}" is not a semantic version{_closest(text)} '
                               "(expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], e.g. 1.2.0 or 2.0.0-rc.1)")
        pre = tuple(m["pre"].split(".")) if m["pre"] else ()
        for ident in pre:
            if ident.isdigit() and len(ident) > 1 and ident.startswith("0"):
                raise VersionError(
                    f'"{text}" is not a semantic version: numeric pre-release identifier '
                    f'"{ident}" has a leading zero'
                )
            if ident.isdigit() and len(ident) > MAX_DIGITS:
                raise VersionError(f'"{text}" is not a semantic version: numeric pre-release identifiers '
                                   f"have at most {MAX_DIGITS} digits")
        build = tuple(m["build"].split(".")) if m["build"] else ()
        return cls(int(m["major"]), int(m["minor"]), int(m["patch"]), pre, build)

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def _key(self) -> tuple[object, ...]:
        # A release sorts after all its pre-releases; build metadata takes no part.
        return (*self.release, 0 if self.prerelease else 1, _pre_key(self.prerelease))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def __repr__(self) -> str:
        return f"Version('{self}')"


@dataclass(frozen=True)
class Partial:
    """A version in a constraint: parts may be missing or wildcards (None)."""

    major: int | None
    minor: int | None = None
    patch: int | None = None
    prerelease: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Partial:
        m = _PARTIAL_RE.fullmatch(text)
        if m is None:
            raise ValueError(text)
        parts: list[int | None] = []
        for name in ("major", "minor", "patch"):
            raw = m[name]
            parts.append(None if raw is None or raw in "xX*" else int(raw))
        # "1.x.3" is meaningless: nothing after a wildcard may be given.
        for before, after in zip(parts, parts[1:], strict=False):
            if before is None and after is not None:
                raise ValueError(text)
        pre = tuple(m["pre"].split(".")) if m["pre"] else ()
        if pre and parts[2] is None:
            raise ValueError(text)
        if any(ident.isdigit() and len(ident) > MAX_DIGITS for ident in pre):
            raise ValueError(text)
        return cls(parts[0], parts[1], parts[2], pre)

    @property
    def given(self) -> int:
        """How many leading parts are given (0 for "*")."""
        return sum(1 for p in (self.major, self.minor, self.patch) if p is not None)

    def floor(self) -> Version:
        return Version(self.major or 0, self.minor or 0, self.patch or 0, self.prerelease)

    def bump(self, position: int) -> Version:
        """The first release after every version that agrees on the first ``position`` parts."""
        parts = [self.major or 0, self.minor or 0, self.patch or 0]
        parts[position - 1] += 1
        for i in range(position, 3):
            parts[i] = 0
        return Version(parts[0], parts[1], parts[2])

    def __str__(self) -> str:
        if self.major is None:
            return "*"
        text = ".".join(str(p) for p in (self.major, self.minor, self.patch) if p is not None)
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        return text


@dataclass(frozen=True)
class Bound:
    """A primitive comparison every comparator reduces to."""

    op: str  # one of = >= > <= <
    version: Version

    def test(self, v: Version) -> bool:
        if self.op == "=":
            return v == self.version
        if self.op == ">=":
            return v >= self.version
        if self.op == ">":
            return v > self.version
        if self.op == "<=":
            return v <= self.version
        return v < self.version


_NOTHING = (Bound("<", Version(0, 0, 0, ("0",))),)  # satisfied by no version at all


@dataclass(frozen=True)
class Comparator:
    op: str  # "" (bare), = >= <= > < ~> ~ ^ or "-" (hyphen range)
    version: Partial
    upper: Partial | None = None  # hyphen ranges only

    def bounds(self) -> tuple[Bound, ...]:
        p, op, given = self.version, self.op, self.version.given
        if op == "-":
            assert self.upper is not None
            up = self.upper
            if up.given == 0:
                high: tuple[Bound, ...] = ()
            elif up.given == 3:
                high = (Bound("<=", up.floor()),)
            else:
                high = (Bound("<", up.bump(up.given)),)
            return (Bound(">=", p.floor()), *high)
        if given == 0:
            return _NOTHING if op in ("<", ">") else (Bound(">=", Version(0, 0, 0)),)
        if op in ("", "="):
            if given == 3:
                return (Bound("=", p.floor()),)
            return (Bound(">=", p.floor()), Bound("<", p.bump(given)))
        if op == ">=":
            return (Bound(">=", p.floor()),)
        if op == ">":
            return (Bound(">", p.floor()),) if given == 3 else (Bound(">=", p.bump(given)),)
        if op == "<":
            return (Bound("<", p.floor()),)
        if op == "<=":
            return (Bound("<=", p.floor()),) if given == 3 else (Bound("<", p.bump(given)),)
        if op == "~>":
            # Ruby's pessimistic operator: the last given part may grow, the one before may not.
            return (Bound(">=", p.floor()), Bound("<", p.bump(max(given - 1, 1))))
        if op == "~":
            return (Bound(">=", p.floor()), Bound("<", p.bump(min(given, 2))))
        if op == "^":
            # The first non-zero part is fixed; of "0.0", "0" only the given zeros are.
            parts = [p.major, p.minor, p.patch]
            position = given
            for i, part in enumerate(parts[:given]):
                if part != 0:
                    position = i + 1
                    break
            return (Bound(">=", p.floor()), Bound("<", p.bump(position)))
        raise AssertionError(op)

    def __str__(self) -> str:
        if self.op == "-":
            return f"{self.version} - {self.upper}"
        return f"{self.op}{self.version}"


@dataclass(frozen=True)
class AndSet:
    comparators: tuple[Comparator, ...]
    _bounds: tuple[Bound, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def of(cls, comparators: tuple[Comparator, ...]) -> AndSet:
        bounds = tuple(b for c in comparators for b in c.bounds())
        return cls(comparators, bounds)

    def satisfied_by(self, v: Version) -> bool:
        if not all(b.test(v) for b in self._bounds):
            return False
        if v.prerelease:
            return any(b.version.prerelease and b.version.release == v.release for b in self._bounds)
        return True

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.comparators)


_TOKEN_RE = re.compile(
    r"\s*(?:(?P<or>\|\|)|(?P<comma>,)|(?P<hyphen>-(?=\s))|(?P<op>~>|>=|<=|=|>|<|~|\^)"
    r"|(?P<version>v?[0-9xX*][0-9A-Za-z.+*-]*))"
)


@dataclass(frozen=True)
class Constraint:
    """A parsed version constraint; ``satisfied_by`` tells whether a version meets it."""

    any_of: tuple[AndSet, ...]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        if not isinstance(text, str) or not text.strip():
            raise ConstraintError(str(text), "empty")
        return _parse_constraint(text)

    def satisfied_by(self, version: Version | str) -> bool:
        v = Version.parse(version) if isinstance(version, str) else version
        return any(s.satisfied_by(v) for s in self.any_of)

    def __str__(self) -> str:
        return " || ".join(str(s) for s in self.any_of)


def _parse_and(whole: str, text: str) -> tuple[Comparator, ...]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None or m.end() == pos:
            raise ConstraintError(whole, f"unexpected {text[pos:].strip()[:10]!r}")
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m[kind]))
        pos = m.end()
    comparators: list[Comparator] = []
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "comma":
            if not comparators or i + 1 >= len(tokens) or tokens[i + 1][0] == "comma":
                raise ConstraintError(whole, "a comma must stand between two comparators")
            i += 1
            kind, value = tokens[i]
        op = ""
        if kind == "op":
            op = value
            i += 1
            if i >= len(tokens):
                raise ConstraintError(whole, f"operator {op} without a version")
            kind, value = tokens[i]
        if kind != "version":
            raise ConstraintError(whole, f"unexpected {value!r}")
        lower = _partial(whole, value)
        i += 1
        if not op and i < len(tokens) and tokens[i][0] == "hyphen":
            if i + 1 >= len(tokens) or tokens[i + 1][0] != "version":
                raise ConstraintError(whole, "a hyphen range needs a version on both sides")
            comparators.append(Comparator("-", lower, _partial(whole, tokens[i + 1][1])))
            i += 2
            continue
        comparators.append(Comparator(op, lower))
    if not comparators:
        raise ConstraintError(whole, "empty alternative")
    return tuple(comparators)


def _partial(whole: str, text: str) -> Partial:
    try:
        return Partial.parse(text[1:] if text.startswith("v") else text)
    except ValueError:
        raise ConstraintError(whole, f"{text!r} is not a version") from None


def version_problem(text: Any) -> str | None:
    """Why ``text`` is not a semantic version (``Version.parse``'s message), or None.

    A text the pattern takes whole, without a pre-release part, is one: the pre-release
    identifiers have the only rules the pattern does not hold. That case, nearly every
    version in a manifest, is answered without building a ``Version``."""
    match = _VERSION_RE.fullmatch(text) if isinstance(text, str) else None
    if match is not None and not match["pre"]:
        return None
    try:
        Version.parse(text)
    except VersionError as error:
        return str(error)
    return None


@lru_cache(maxsize=4096)
def _parse_constraint(text: str) -> Constraint:
    """``Constraint.parse`` of a non-empty string, cached (a constraint is immutable): every
    plugin's dependencies are parsed with its spec, and most name the same few ranges."""
    return Constraint(tuple(AndSet.of(_parse_and(text, alternative)) for alternative in text.split("||")))
