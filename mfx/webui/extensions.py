"""UIExtension plugins on the web: each Ready provider's ``render(state)`` as a panel.

A page's stream follows two watches: the PluginManifests (which UIExtensions are Ready, and
``status.runtime.generation``, which a hot reload bumps) and the player's state. At a change
of either, and at each new second of a playing song (a panel may show the position), every
provider's panel is rendered again through the plugin-call API and the panels go to the page
in one message. Layout, keys and theme names are asked once per
generation; the page places each panel in the region its layout names (top, bottom, left or
right of the main area) and binds its keys (``mfx.webui.keys``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson

from mfx.api.ui_actions import panel_layout
from mfx.errors import MfxError
from mfx.webui.daemon_client import DaemonClient
from mfx.webui.sse import Message

log = logging.getLogger("mfx.webui.extensions")

PLUGINS = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"
PLAYER_STATE = "/apis/player.mfx.musicfox.io/v1/state"


def provider(obj: dict[str, Any]) -> Any:
    """For a Ready UIExtension provider, what identifies the version that runs (a reload
    changes it); None for any other plugin."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if "UIExtension" not in (spec.get("interfaces") or []):
        return None
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if cond is None or cond.get("status") != "True":
        return None
    # A reload is seen in the runtime's generation and in the Ready condition, whose message
    # the controller rewrites at every reload ("reloaded: generation N ...").
    return ((status.get("runtime") or {}).get("generation"), obj["metadata"].get("generation"),
            cond.get("reason"), cond.get("message"))


def providers(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ready UIExtension providers -> what identifies the version that runs."""
    return {name: key for name, obj in objects.items() if (key := provider(obj)) is not None}


async def call(client: DaemonClient, plugin: str, method: str, *params: Any) -> Any:
    answer = await client.request("POST", f"{PLUGINS}/{plugin}/call",
                                  body=orjson.dumps({"method": method, "params": list(params)}))
    data = orjson.loads(answer.body) if answer.body else None
    if answer.status >= 400:
        message = data.get("message") if isinstance(data, dict) else answer.status
        raise MfxError(f"{plugin}.{method}: {message}")
    return data.get("result") if isinstance(data, dict) and "result" in data else data


@dataclass
class Panels:
    client: DaemonClient
    state: dict[str, Any] = field(default_factory=dict)
    running: dict[str, Any] = field(default_factory=dict)
    received: float = 0.0  # time.monotonic() when ``state`` arrived
    _meta: dict[str, tuple[Any, dict[str, Any]]] = field(default_factory=dict)

    def set_state(self, state: dict[str, Any]) -> None:
        self.state, self.received = state, time.monotonic()

    def _position(self) -> float | None:
        """Where the song is now while it plays (the state's position moved on by the clock)."""
        if self.state.get("status") != "playing":
            return None
        return float(self.state.get("positionSeconds") or 0.0) + time.monotonic() - self.received

    def state_now(self) -> dict[str, Any]:
        position = self._position()
        return self.state if position is None else {**self.state, "positionSeconds": position}

    def until_next_second(self) -> float | None:
        """Seconds until the position shows a new second (panels show m:ss); None when not playing."""
        position = self._position()
        return None if position is None else math.floor(position) + 1 - position + 0.005

    async def render(self) -> list[dict[str, Any]]:
        panels = []
        for name, generation in sorted(self.running.items()):
            try:
                meta = self._meta.get(name)
                if meta is None or meta[0] != generation:
                    place = panel_layout(await call(self.client, name, "layout"), name)
                    meta = (generation, {"title": place.title, "region": place.region, "rows": place.rows,
                                         "keys": [str(k) for k in await call(self.client, name, "keys") or []],
                                         "themes": await call(self.client, name, "themes") or []})
                    self._meta[name] = meta
                text = await call(self.client, name, "render", self.state_now())
                panels.append({"plugin": name, **meta[1], "text": str(text)})
            except MfxError as error:
                panels.append({"plugin": name, "title": name, "region": "bottom", "rows": 1, "keys": [],
                               "themes": [], "text": "", "problem": str(error)})
        return panels


async def panel_stream(client: DaemonClient) -> AsyncIterator[Message]:
    """``panels`` now and at each change of the providers or of the player's state."""
    panels = Panels(client)
    changed = anyio.Event()

    async def follow_plugins() -> None:
        page = await client.get_json(PLUGINS)
        panels.running = providers({o["metadata"]["name"]: o for o in page.get("items") or []})
        changed.set()
        since = str(page["metadata"]["resourceVersion"])
        async for event in client.lines(PLUGINS, {"watch": "true", "resourceVersion": since}):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            # Only the plugin that changed is looked at: with hundreds of plugins, a change
            # of one costs the same as with five.
            name = obj["metadata"]["name"]
            now = None if kind == "DELETED" else provider(obj)
            if panels.running.get(name) != now:
                if now is None:
                    panels.running.pop(name, None)
                else:
                    panels.running[name] = now
                changed.set()

    async def follow_player() -> None:
        async for event in client.lines(PLAYER_STATE, {"watch": "true"}):
            if event.get("type") == "STATE":
                panels.set_state(event.get("object") or {})
                changed.set()
            elif event.get("type") == "ERROR":
                return  # no player in this daemon: panels render the empty state

    send, receive = anyio.create_memory_object_stream[Message](4)

    async def produce() -> None:
        nonlocal changed
        async with send:
            while True:
                # While a song plays, panels are rendered again at each new second of it too.
                with anyio.move_on_after(panels.until_next_second()):
                    await changed.wait()
                changed = anyio.Event()
                await send.send(Message("panels", {"panels": await panels.render()}))

    async def quietly(part: Any) -> None:
        # The player may be missing, or a watch end: the panels stay as they are.
        try:
            await part()
        except MfxError as error:
            log.info("web UI panels: %s", error)

    async with anyio.create_task_group() as group:
        group.start_soon(quietly, follow_plugins)
        group.start_soon(quietly, follow_player)
        group.start_soon(produce)
        async with receive:
            async for message in receive:
                yield message
        group.cancel_scope.cancel()


async def theme(client: DaemonClient, plugin: str, name: str) -> dict[str, Any]:
    palette = await call(client, plugin, "theme", name)
    if not isinstance(palette, dict):
        raise MfxError(f"{plugin}.theme({name!r}) returned no palette")
    return palette
