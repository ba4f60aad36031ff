"""The small JSONPath subset CRD printer columns use (``additionalPrinterColumns``).

Supported: ``.a.b``, ``.a[0]``, ``.a[*].b``, ``.a[?(@.type=="Ready")].status``. A missing
field yields no values (kubectl prints ``<none>``), never an error.
"""

from __future__ import annotations

import functools
import re
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-]+)
      | \[(?P<index>\d+)\]
      | \[\*\]
      | \[\?\(@\.(?P<fkey>[A-Za-z0-9_\-.]+)\s*==\s*(?P<q>["'])(?P<fval>.*?)(?P=q)\)\]""",
    re.VERBOSE,
)


@functools.lru_cache(maxsize=256)
def _tokens(path: str) -> tuple[re.Match[str], ...]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text.startswith("$"):
        text = text[1:]
    tokens: list[re.Match[str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {text[pos:]!r}")
        tokens.append(match)
        pos = match.end()
    return tuple(tokens)


def _lookup(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def evaluate(obj: Any, path: str) -> list[Any]:
    """All values ``path`` selects in ``obj``."""
    current = [obj]
    for token in _tokens(path):
        found: list[Any] = []
        for value in current:
            if token.group("field") is not None:
                if isinstance(value, dict) and token.group("field") in value:
                    found.append(value[token.group("field")])
            elif token.group("index") is not None:
                index = int(token.group("index"))
                if isinstance(value, list) and index < len(value):
                    found.append(value[index])
            elif token.group("fkey") is not None:
                if isinstance(value, list):
                    found.extend(
                        item for item in value
                        if isinstance(item, dict) and str(_lookup(item, token.group("fkey"))) == token.group("fval")
                    )
            elif isinstance(value, list):  # [*]
                found.extend(value)
        current = found
    return current
