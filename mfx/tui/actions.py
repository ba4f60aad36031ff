"""Player actions by name (``"toggle"``, ``"volume:+5"``, ``"mode:shuffle"``): the host's own
keys and a UIExtension's ``handle_input`` answers go through the same table of API calls
(``mfx.api.ui_actions``, which the web UI uses too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfx.api.ui_actions import Request, request_for
from mfx.tui.client import ApiClient

__all__ = ["Request", "perform", "request_for"]


async def perform(client: ApiClient, action: str, state: Mapping[str, Any]) -> Any:
    """Send ``action`` to the player; its answer (the new state), or None for ``quit``."""
    request = request_for(action, state)
    if request is None:
        return None
    return await client.player(request.method, request.action, request.body)
