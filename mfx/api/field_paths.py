"""Field paths as messages and positions name them: ``spec.dependencies[0].name``, ``labels["a.b/c"]``."""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_LAST_SEGMENT = re.compile(r'(\[(?:\d+|"(?:[^"\\]|\\.)*")\]|\.[^.\[\]]*)$')


def join_key(parent: str, key: str) -> str:
    """The field path of ``key`` under ``parent``: ``spec.version``, ``labels["a.b/c"]``."""
    if _IDENTIFIER.match(key):
        return f"{parent}.{key}" if parent else key
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{parent}["{quoted}"]'


def join_index(parent: str, index: int) -> str:
    return f"{parent}[{index}]"


def parent_path(path: str) -> str | None:
    """``spec.dependencies[0].name`` -> ``spec.dependencies[0]``; None above the root."""
    if not path:
        return None
    m = _LAST_SEGMENT.search(path)
    return "" if m is None else path[: m.start()]
