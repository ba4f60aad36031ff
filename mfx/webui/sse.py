"""Server-sent events: the API's watches (and the UI's other feeds) as one ``text/event-stream``.

A browser keeps only six HTTP/1.1 connections per server, so a page reads all its topics
from one stream (``/ui/stream?topics=plugins,sinks,...``); each message's event name is
``TOPIC.EVENT``. Every message that moves a watch on carries ``id: plugins=RV,sinks=RV``: a
browser that lost the connection reconnects with that ``Last-Event-ID`` and each watch
resumes at its own resourceVersion. A watch whose resourceVersion was compacted away (410)
lists again and sends a fresh ``list``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from anyio.streams.memory import MemoryObjectSendStream

from mfx.api.object_mirror import ObjectMirror, resource_version
from mfx.webui.daemon_client import DaemonClient

# A comment line that keeps proxies and the browser from timing an idle stream out.
KEEPALIVE = b": keep-alive\n\n"
MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class Message:
    event: str
    data: Any
    rv: str | None = None  # the resourceVersion a watch topic has reached with this message


def frame(event: str, data: Any, *, id: str | None = None) -> bytes:
    """One SSE message; data is JSON on one line (orjson never writes a raw newline)."""
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def parse_last_event_id(text: str | None) -> dict[str, str]:
    """``plugins=12,sinks=5`` -> {"plugins": "12", "sinks": "5"} (anything malformed is dropped)."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        topic, _, rv = part.partition("=")
        if topic and rv.isdigit():
            out[topic.strip()] = rv
    return out


# Messages computed from the whole set after a change: ``changed`` names the object that
# changed, or is None after a (re)list, when everything may have.
Derived = Callable[[ObjectMirror, str | None], list[Message]]


async def watch_topic(client: DaemonClient, path: str, *, resume: str | None,
                      derived: Derived | None = None) -> AsyncIterator[Message]:
    """``list`` then ``change`` messages of ``path``, or resume the watch at ``resume``;
    ``derived(mirror, changed)`` adds messages computed from the whole set (the critical chain)."""
    mirror = ObjectMirror()
    while True:
        page = await client.get_json(path)
        mirror.reset(page.get("items") or [])
        since = str((page.get("metadata") or {}).get("resourceVersion") or "0")
        if resume is not None:
            # The list above only rebuilds the mirror: the page has the objects already.
            since, resume = resume, None
        else:
            yield Message("list", {"items": list(mirror.objects.values())}, rv=since)
        for message in derived(mirror, None) if derived else []:
            yield message
        gone = False
        params = {"watch": "true", "resourceVersion": since, "allowWatchBookmarks": "true"}
        async for event in client.lines(path, params):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                gone = True  # 410: that resourceVersion is compacted away; list again
                break
            if kind == "BOOKMARK" or not mirror.apply(str(kind), obj):
                continue
            yield Message("change", {"type": kind, "object": obj}, rv=str(resource_version(obj)))
            for message in derived(mirror, obj["metadata"]["name"]) if derived else []:
                yield message
        if not gone:
            return


async def merge(topics: dict[str, AsyncIterator[Message]], positions: dict[str, str],
                on_problem: Callable[[str, Exception], Message | None]) -> AsyncIterator[bytes]:
    """One SSE stream from several topics; ``positions`` (topic -> rv) is what the ids say."""
    send, receive = anyio.create_memory_object_stream[tuple[str, Message]](64)

    async def pump(topic: str, items: AsyncIterator[Message], out: MemoryObjectSendStream[tuple[str, Message]]) -> None:
        async with out:
            try:
                async for message in items:
                    await out.send((topic, message))
            except Exception as error:  # one topic failing ends only that topic; the page is told
                problem = on_problem(topic, error)
                if problem is None:
                    raise
                await out.send((topic, problem))

    async with anyio.create_task_group() as group:
        async with send:
            for topic, items in topics.items():
                group.start_soon(pump, topic, items, send.clone(), name=f"webui-{topic}")
        yield b"retry: 1000\n\n"
        async with receive:
            async for topic, message in receive:
                if message.rv is not None:
                    positions[topic] = message.rv
                    ident = ",".join(f"{t}={rv}" for t, rv in sorted(positions.items()))
                    yield frame(f"{topic}.{message.event}", message.data, id=ident)
                else:
                    yield frame(f"{topic}.{message.event}", message.data)
        group.cancel_scope.cancel()
