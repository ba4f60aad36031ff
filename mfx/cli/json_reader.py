"""The daemon's JSON answers decoded by the standard library's C scanner alone.

``import json`` loads ``re`` and ``enum`` with it (for whitespace and number patterns the C
scanner does not use): about as long as the interpreter's own start, on every ``mfx`` call
that reads an answer. The scanner is the same one ``json.loads`` runs, so values come out
alike; a malformed document raises ``json.JSONDecodeError`` (a ``ValueError``), as there.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # not typing's: see the module docstring
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"  # JSON's, no more
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Options:
    """What the C scanner reads off ``json.JSONDecoder``: its defaults."""

    def __init__(self) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = _CONSTANTS.__getitem__


_scan = _json.make_scanner(_Options())


def loads(data: bytes | str) -> Any:
    """The value of the JSON document ``data`` (UTF-8 bytes or text)."""
    text = data.decode() if isinstance(data, bytes | bytearray) else data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        _fail("Expecting value", text, stop.value)
    if text[end:].strip(_WHITESPACE):
        _fail("Extra data", text, end)
    return value


def _fail(message: str, text: str, position: int) -> None:
    from json import JSONDecodeError  # only a malformed answer pays for json

    raise JSONDecodeError(message, text, position)
