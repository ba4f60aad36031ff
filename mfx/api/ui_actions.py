"""What a player UI does for a key, shared by the terminal and the web UI.

Player actions by name (``"toggle"``, ``"volume:+5"``, ``"mode:shuffle"``) map to one player
API call each, whether they come from the host's own keys or a UIExtension's
``handle_input`` answer; and a UIExtension's ``layout()`` says where its panel goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mfx.api.music import PlayMode
from mfx.errors import BadRequestError

MODES = [mode.value for mode in PlayMode]
REGIONS = ("top", "bottom", "left", "right")


@dataclass(frozen=True)
class Request:
    """One player API call: ``method`` on ``/apis/player.mfx.musicfox.io/v1/{action}``."""

    method: str
    action: str
    body: Any = None


def next_mode(mode: str) -> str:
    """The play mode after ``mode``, in the order ``p`` steps through them."""
    index = MODES.index(mode) if mode in MODES else -1
    return MODES[(index + 1) % len(MODES)]


def _signed(argument: str) -> bool:
    return argument.startswith(("+", "-"))


def _number(argument: str, action: str) -> float:
    try:
        return float(argument)
    except ValueError:
        raise BadRequestError(f"action {action!r}: {argument!r} is not a number; "
                              f"write e.g. {action.split(':')[0]}:+5") from None


def request_for(action: str, state: Mapping[str, Any]) -> Request | None:
    """The player API call for ``action`` given the state now; None for ``quit``."""
    name, _, argument = action.partition(":")
    match name:
        case "toggle":
            return Request("POST", "pause" if state.get("status") == "playing" else
                           "resume" if state.get("status") == "paused" else "play", {})
        case "play":
            return Request("POST", "resume" if state.get("status") == "paused" else "play", {})
        case "pause" | "stop" | "next" | "previous":
            return Request("POST", name, {})
        case "seek":
            value = _number(argument, action)
            return Request("POST", "seek", {"offset": value} if _signed(argument) else {"seconds": value})
        case "volume":
            value = int(_number(argument, action))
            return Request("PUT", "volume", {"change": value} if _signed(argument) else {"volume": value})
        case "mute":
            return Request("PUT", "mute", {"muted": not state.get("muted")})
        case "mode":
            return Request("PUT", "mode", {"mode": argument or next_mode(str(state.get("mode", "")))})
        case "quit":
            return None
    raise BadRequestError(f"unknown action {action!r}: use one of toggle, play, pause, stop, next, previous, "
                          "seek:±N, volume:±N, mute, mode[:NAME], quit")


@dataclass(frozen=True)
class PanelLayout:
    """Where a UIExtension's panel goes: ``region`` (one of ``REGIONS``), its size in ``rows``
    (the width in columns for left and right) and its ``title``."""

    region: str = "bottom"
    rows: int = 1
    title: str = ""


def panel_layout(layout: Any, name: str) -> PanelLayout:
    """The first region of a ``layout()`` answer; anything unknown or malformed falls back to
    a one-row panel at the bottom titled ``name``."""
    regions = (layout.get("regions") if isinstance(layout, Mapping) else None) or [{}]
    first = regions[0] if isinstance(regions, list) and isinstance(regions[0], Mapping) else {}
    region = str(first.get("name") or "bottom")
    try:
        rows = max(1, int(first.get("rows") or 1))
    except (TypeError, ValueError):
        rows = 1
    return PanelLayout(region=region if region in REGIONS else "bottom", rows=rows,
                       title=str(first.get("title") or name))
