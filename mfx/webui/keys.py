"""A UIExtension's keys on the web page.

The page sends the key pressed (a Textual key name, as ``keys()`` lists them); the server asks
the extension's ``handle_input`` for the action through the plugin-call API and performs it
through the player API with ``mfx.api.ui_actions``, the table the terminal UI uses.
"""

from __future__ import annotations

from typing import Any

import orjson

from mfx.api.ui_actions import request_for
from mfx.errors import BadRequestError, MfxError
from mfx.webui.daemon_client import DaemonClient
from mfx.webui.extensions import call

PLAYER = "/apis/player.mfx.musicfox.io/v1"


async def press(client: DaemonClient, plugin: str, key: str) -> dict[str, Any]:
    """``{"action": ..., "state": ...}``: what ``key`` did (action None: the extension ignored
    it; no state: nothing was sent to the player, as for ``quit``, which a page has no use for)."""
    keys = [str(k) for k in await call(client, plugin, "keys") or []]
    if key not in keys:
        raise BadRequestError(f"{plugin} binds no key {key!r}; its keys are: {', '.join(keys) or 'none'}")
    action = await call(client, plugin, "handle_input", key)
    if not action:
        return {"action": None}
    action = str(action)
    # toggle, mute and mode depend on the state now: ask for it as the terminal UI knows it.
    state = await client.get_json(f"{PLAYER}/state")
    request = request_for(action, state if isinstance(state, dict) else {})
    if request is None:
        return {"action": action}
    answer = await client.request(request.method, f"{PLAYER}/{request.action}", body=orjson.dumps(request.body))
    data = orjson.loads(answer.body) if answer.body else None
    if answer.status >= 400:
        message = data.get("message") if isinstance(data, dict) else answer.body.decode(errors="replace")
        raise MfxError(f"{plugin}: key {key!r} -> {action}: {message}")
    return {"action": action, "state": data}
