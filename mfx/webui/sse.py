"""Server-sent events: the API's watches turned into ``text/event-stream`` for EventSource.

Each change goes out with ``id: <resourceVersion>``, so a browser that lost the connection
reconnects with ``Last-Event-ID`` and the watch resumes where it stopped. A 410 (that
resourceVersion was compacted away) becomes an ``event: relist``: the page opens a new
stream, which starts with a list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from mfx.webui.daemon_client import DaemonClient

# A comment line that keeps proxies and the browser from timing an idle stream out.
KEEPALIVE = b": keep-alive\n\n"
MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def frame(event: str, data: Any, *, id: str | None = None) -> bytes:
    """One SSE message; data is JSON on one line (orjson never writes a raw newline)."""
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def resource_version(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class Mirror:
    """The objects of one kind as a stream has seen them (what a change is applied to)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def reset(self, items: list[dict[str, Any]]) -> None:
        self.objects = {o["metadata"]["name"]: o for o in items}

    def apply(self, kind: str, obj: dict[str, Any]) -> bool:
        """Apply one watch event; False when the mirror already holds a newer version (a
        resumed watch replays what the list at reconnection already had)."""
        name = obj["metadata"]["name"]
        held = self.objects.get(name)
        if held is not None and resource_version(held) > resource_version(obj):
            return False
        if kind == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj
        return True


async def watch_stream(client: DaemonClient, path: str, *, last_event_id: str | None,
                       params: dict[str, str] | None = None,
                       extra: Callable[[Mirror], list[bytes]] | None = None) -> AsyncIterator[bytes]:
    """List (``event: list``) then watch (``event: change``) ``path``, or resume the watch
    from ``last_event_id``; ``extra(mirror)`` adds messages derived from the whole set after
    the list and after each change (the critical chain)."""
    mirror = Mirror()
    page = await client.get_json(path, params)
    mirror.reset(page.get("items") or [])
    since = str((page.get("metadata") or {}).get("resourceVersion") or "0")
    if last_event_id and last_event_id.isdigit():
        # Resume: the list above only rebuilds the mirror; the page has its objects already.
        since = last_event_id
        yield b"retry: 1000\n\n"
    else:
        yield b"retry: 1000\n" + frame("list", {"items": list(mirror.objects.values())}, id=since)
    for message in extra(mirror) if extra else []:
        yield message
    watch_params = {**(params or {}), "watch": "true", "resourceVersion": since, "allowWatchBookmarks": "true"}
    async for event in client.lines(path, watch_params):
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            yield frame("relist", {"code": obj.get("code"), "message": obj.get("message")})
            return
        rv = str(resource_version(obj)) if obj.get("metadata") else None
        if kind == "BOOKMARK":
            yield f"id: {rv}\n\n".encode() if rv else KEEPALIVE
            continue
        if not mirror.apply(kind, obj):
            continue
        yield frame("change", {"type": kind, "object": obj}, id=rv)
        for message in extra(mirror) if extra else []:
            yield message
