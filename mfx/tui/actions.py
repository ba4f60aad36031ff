"""Player actions by name (``"toggle"``, ``"volume:+5"``, ``"mode:shuffle"``): the host's own
keys and a UIExtension's ``handle_input`` answers go through the same table of API calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mfx.errors import BadRequestError
from mfx.tui.client import ApiClient
from mfx.tui.text import next_mode


@dataclass(frozen=True)
class Request:
    method: str
    action: str
    body: Any = None


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


async def perform(client: ApiClient, action: str, state: Mapping[str, Any]) -> Any:
    """Send ``action`` to the player; its answer (the new state), or None for ``quit``."""
    request = request_for(action, state)
    if request is None:
        return None
    return await client.player(request.method, request.action, request.body)
