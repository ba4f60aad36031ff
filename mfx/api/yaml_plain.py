"""The plainest manifests read line by line, without building YAML nodes at all.

Most manifests are block mappings and lists of printable ASCII: ``key: value`` lines,
``- item`` lines, comments and ``---`` between documents. For those, one regular expression
splits a line into its parts and resolves its value, and one pass over the lines builds the
values: about twice as fast as walking the C parser's nodes (``mfx.api.yaml_quick``), which
was most of the cost of reading a directory of small manifests. A ``PlainReader`` reading
many texts (the files of one ``mfx apply -f DIR``) does that once per distinct line: the
manifests of a directory share most of their lines.

Anything else (a flow collection, a block scalar, a tag, an anchor or alias, a quoted string
with an escape, a multi-line scalar, a comment after a value, a key that is not a plain word,
a duplicate key, odd indentation, a character outside printable ASCII ...) makes
``plain_documents`` give up with ``None``, and the caller reads the text with the quick or the
full reading. So, as the quick reading, this module never words an error: it only has to
agree with the full reading on the texts it accepts. Scalars resolve with the quick reading's
YAML 1.1 table (``yaml_scalars``), which loads no part of PyYAML.
"""

from __future__ import annotations

import re

from mfx.api.json_values import MAX_DEPTH
from mfx.api.yaml_scalars import MAY_RESOLVE, STR_TAG, GiveUp, implicit_tag, plain_scalar_value

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from typing import Any

# Anything but printable ASCII and newlines (tabs, carriage returns, other encodings) is the
# other readings' to judge.
_UNUSUAL = re.compile(r"[^\n -~]")
# A line (trailing spaces aside), read in one call: ``key:`` or ``key: value``, either after
# ``- ``; ``- value``; a comment; ``---``; nothing; or anything else (``other``, such as an
# item on lines of its own, which is the other readings'). A key is a plain word, which must
# resolve to text (checked after: ``on``, ``1`` or ``null`` do not).
_LINES = re.compile(r"^( *)(?:(- +)?([A-Za-z0-9_][A-Za-z0-9_./-]*):(?: +(.*[^ \n]))?|- +(.*[^ \n])|(#.*)|(---)|(.*[^ \n]))? *$",
                    re.MULTILINE)
# Characters that open something other than a plain scalar: a flow collection, a block
# scalar, a tag, an anchor, an alias, a directive, a reserved character; "-", "?" and ":"
# followed by a space begin an item, a key or a value.
_INDICATORS = frozenset("[]{}#&*!|>%@`,?:")

_ITEM = 0  # "- ..."
_KEY = 1  # "key: ..."

# One line: (indentation, _ITEM or _KEY, key, the line's value or _BLOCK when it has none).
if TYPE_CHECKING:
    _Line = tuple[int, int, str, Any]
else:
    _Line = tuple  # the alias at run time; annotations are not evaluated
# The value of a line that has none ("key:", "- key:" or "-"): a block below it, or null.
_BLOCK: Any = object()
# What a line holds, as ``PlainReader`` remembers it: its one or two entries ("- key: value" is an
# item holding a mapping), or one of these.
_SKIP: Any = object()  # a comment, or a blank line
_MARKER: Any = object()  # "---" at the margin
_OTHER: Any = object()  # anything the other readings must take
# Lines remembered at most; past it the memo starts again (the texts of one apply seldom need it).
_MEMO_LINES = 65536


def plain_documents(text: str) -> list[Any] | None:
    """The value of every document of ``text`` (None for an empty one), or None to read it otherwise."""
    return PlainReader().documents(text)


class PlainReader:
    """Reads texts line by line, remembering what each line it has met holds.

    The manifests of one directory share most of their lines (``apiVersion: ...``, ``kind:
    ...``, ``metadata:``, a label set, the fields every plugin sets): reading them from one
    reader reads each such line once. What it remembers is the line's parts and its scalar
    value (text, a number, a boolean or null: immutable, so shared as they are)."""

    def __init__(self) -> None:
        self._memo: dict[str, Any] = {}

    def documents(self, text: str) -> list[Any] | None:
        """As ``plain_documents``."""
        memo = self._memo
        if len(memo) > _MEMO_LINES:
            memo.clear()
        documents: list[list[_Line] | None] = []
        current: list[_Line] | None = None
        for line in text.split("\n"):
            entries = memo.get(line)
            if entries is None:
                entries = memo[line] = _entries(line)
            if entries is _SKIP:
                continue
            if entries is _OTHER:
                return None
            if entries is _MARKER:
                current = []
                documents.append(current)
                continue
            if current is None:
                current = []
                documents.append(current)
            current.extend(entries)
        try:
            return [_document(lines) if lines else None for lines in documents if lines is not None]
        except GiveUp:
            return None


def _entries(line: str) -> Any:
    """What one line (without its newline) holds: its entries, or _SKIP, _MARKER or _OTHER."""
    if _UNUSUAL.search(line):
        return _OTHER
    match = _LINES.match(line)
    if match is None:  # never: every line matches one alternative
        return _OTHER
    indent, item, key, value, scalar, _comment, marker, other = match.groups()
    if other:
        return _OTHER
    if not key and not scalar:
        if marker:
            return _OTHER if indent else _MARKER
        return _SKIP  # a comment, or a blank line
    at = len(indent)
    try:
        if not key:  # "- value"
            if scalar[0] == "-":
                return _OTHER  # a list directly in a list
            return ((at, _ITEM, "", _scalar(scalar)),)
        if key[0] in MAY_RESOLVE and implicit_tag(key) != STR_TAG:
            return _OTHER  # a key that is not text (``on``, ``1``, ``null`` ...)
        entry = (at + len(item) if item else at, _KEY, key, _BLOCK if value is None else _scalar(value))
    except GiveUp:
        return _OTHER
    return ((at, _ITEM, "", _BLOCK), entry) if item else (entry,)


def _document(lines: list[_Line]) -> Any:
    if lines[0][0] != 0 or lines[0][1] != _KEY:
        raise GiveUp  # a document that is not a mapping at the margin
    value, end = _mapping(lines, 0, 0, 0)
    if end != len(lines):
        raise GiveUp
    return value


def _mapping(lines: list[_Line], start: int, indent: int, depth: int) -> tuple[dict[str, Any], int]:
    if depth >= MAX_DEPTH:
        raise GiveUp
    result: dict[str, Any] = {}
    index, count = start, len(lines)
    while index < count:
        at, kind, key, value = lines[index]
        if at < indent:
            break
        if at > indent or kind != _KEY or key in result:
            raise GiveUp
        index += 1
        if value is not _BLOCK:
            result[key] = value
        elif index < count and lines[index][0] > indent:
            result[key], index = _block(lines, index, depth + 1)
        elif index < count and lines[index][0] == indent and lines[index][1] == _ITEM:
            result[key], index = _sequence(lines, index, indent, depth + 1)  # "key:" then "- a" below it
        else:
            result[key] = None
    return result, index


def _sequence(lines: list[_Line], start: int, indent: int, depth: int) -> tuple[list[Any], int]:
    if depth >= MAX_DEPTH:
        raise GiveUp
    result: list[Any] = []
    index, count = start, len(lines)
    while index < count:
        at, kind, _, value = lines[index]
        if at < indent or (at == indent and kind == _KEY):
            break  # the mapping this list is the value of goes on, or an outer one does
        if at > indent:
            raise GiveUp
        index += 1
        if value is not _BLOCK:
            result.append(value)
        elif index < count and lines[index][0] > indent:
            item, index = _block(lines, index, depth + 1)
            result.append(item)
        else:
            raise GiveUp
    return result, index


def _block(lines: list[_Line], start: int, depth: int) -> tuple[Any, int]:
    indent, kind = lines[start][0], lines[start][1]
    if kind == _ITEM:
        return _sequence(lines, start, indent, depth)
    return _mapping(lines, start, indent, depth)


def _scalar(text: str) -> Any:
    first = text[0]
    if first == '"' or first == "'":
        inner = text[1:-1]
        if len(text) < 2 or text[-1] != first or first in inner or "\\" in inner:
            raise GiveUp  # an escape, a quote inside, or a string over several lines
        return inner
    if first in _INDICATORS or first == "-" and text[1:2] in ("", " ") or ": " in text or " #" in text \
            or text[-1] == ":":
        raise GiveUp
    if first not in MAY_RESOLVE:
        return text  # printable ASCII: text as it is
    return plain_scalar_value(text)
