"""The values player commands take: positions (``1:30``) and signed steps (``+10``, ``-5``)."""

from __future__ import annotations

import math
from typing import Any

from mfx.errors import BadRequestError

# A leading "-" is a value for these commands (`mfx seek -5`, `mfx volume -5`), not an option.
SIGNED_VALUE: dict[str, Any] = {"ignore_unknown_options": True}


def parse_time(text: str) -> float:
    """``90``, ``1:30``, ``1:02:03`` or ``12.5`` -> seconds."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise BadRequestError(f"position {text!r}: expected seconds or M:SS (e.g. 1:30)") from None
    if not parts or len(parts) > 3 or any(not 0 <= p < math.inf for p in parts):
        raise BadRequestError(f"position {text!r}: expected seconds or M:SS (e.g. 1:30)")
    if any(p >= 60 for p in parts[1:]):  # 1:99 is a typo, not 2:39
        raise BadRequestError(f"position {text!r}: minutes and seconds after a ':' go up to 59")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def parse_step(text: str, what: str) -> tuple[str, str]:
    """Split ``+10`` / ``-5`` / ``10`` into (sign, rest); the sign is "" for an absolute value."""
    text = text.strip()
    if text[:1] in ("+", "-"):
        return text[0], text[1:].strip()
    if not text:
        raise BadRequestError(f"{what}: expected a value, e.g. 70, +10 or -5")
    return "", text
