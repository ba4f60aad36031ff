"""The two watches the terminal player lives on: the player's state and the PluginManifests.

Each runs until cancelled and survives a daemon restart: when the stream breaks it says so
(``on_link(False, why)``), waits with backoff, connects again and says so once it is back.
Nothing is polled: a change reaches the screen as one line of a watch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from mfx.api.object_mirror import ObjectMirror
from mfx.backoff import Backoff
from mfx.errors import GoneError, MfxError
from mfx.tui.client import PLAYER, PLUGINS, ApiClient

RECONNECT = Backoff(initial=0.2, cap=2.0)

LinkReport = Callable[[bool, str], None]


async def watch_state(client: ApiClient, on_state: Callable[[dict[str, Any]], None], on_link: LinkReport) -> None:
    """Feed ``on_state`` every state the player reports, reconnecting forever."""
    failures = 0
    while True:
        try:
            async for event in client.lines(f"{PLAYER}/state", {"watch": "true"}):
                if failures:
                    failures = 0
                    on_link(True, "")
                if isinstance(event, dict) and event.get("type") == "STATE":
                    on_state(event.get("object") or {})
            why = "the daemon ended the state watch"
        except MfxError as error:
            why = str(error)
        failures += 1
        on_link(False, why)
        await anyio.sleep(RECONNECT.delay(failures))


async def watch_plugins(client: ApiClient, plugins: ObjectMirror, on_change: Callable[[], None],
                        on_link: LinkReport) -> None:
    """Keep ``plugins`` (the PluginManifests) current by a list then a watch, relisting on 410
    Gone; ``on_change`` after the list and after every event."""
    failures = 0
    while True:
        try:
            listing = await client.get(PLUGINS)
            plugins.reset(listing.get("items") or [])
            if failures:
                failures = 0
                on_link(True, "")
            on_change()
            version = str(listing.get("metadata", {}).get("resourceVersion", ""))
            async for event in client.lines(PLUGINS, {"watch": "true", "resourceVersion": version}):
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise GoneError("the watch's resourceVersion is gone")
                    raise MfxError(str(obj.get("message") or "the plugin watch failed"))
                if kind != "BOOKMARK":
                    plugins.apply(str(kind), obj)
                    on_change()
            why = "the daemon ended the plugin watch"
        except GoneError:
            continue  # relist at once: the list is the truth
        except MfxError as error:
            why = str(error)
        failures += 1
        on_link(False, why)
        await anyio.sleep(RECONNECT.delay(failures))
