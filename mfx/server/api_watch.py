"""Watches over HTTP (``?watch=true``): the store's watch streamed as Kubernetes clients read it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from mfx.api import selectors
from mfx.api.kinds import KindInfo
from mfx.api.objects import Obj
from mfx.errors import GoneError
from mfx.server import tables
from mfx.server.api_events import present
from mfx.server.api_request import filter_fields, in_namespace, int_param
from mfx.server.api_responses import JSON
from mfx.server.status import status_from_error
from mfx.server.streams import until_shutdown
from mfx.store.base import Store, WatchEventType

# An event's object as a Table (with the column definitions only in the first event).
Tabulate = Callable[[list[Obj], bool], dict[str, Any]]


async def watch_response(
    store: Store, request: Request, kind: KindInfo, *, shutdown: anyio.Event, tabulate: Tabulate
) -> Response:
    """A watch as the API server streams it: one JSON event per line, ``ERROR`` for 410 Gone.

    Without a resourceVersion it starts with an ADDED event per object (a list), then follows
    changes; selectors and the namespace filter every event; it ends at ``timeoutSeconds``
    or when the daemon shuts down."""
    params = request.query_params
    label_selector = selectors.parse_selector(params["labelSelector"]) if params.get("labelSelector") else None
    field_selector = params.get("fieldSelector")
    as_table = tables.wants_table(request.headers.get("accept"))
    timeout = int_param(request, "timeoutSeconds")
    since = int_param(request, "resourceVersion") or 0
    send_initial = since == 0
    initial: list[Obj] = []
    if send_initial:
        listed = await store.list(kind.kind)
        initial = listed.items
        since = listed.resource_version
    # Open the watch before streaming, so a compacted resourceVersion is reported at once.
    events = store.watch(kind.kind, since)

    def keep(obj: Obj) -> bool:
        if not in_namespace(request, obj):
            return False
        if label_selector is not None and not label_selector.matches(obj.get("metadata", {}).get("labels") or {}):
            return False
        return bool(filter_fields([obj], field_selector))

    def encode(type_: str, obj: Obj, first: bool) -> bytes:
        obj = present(kind, obj)
        payload = tabulate([obj], first) if as_table else obj
        return orjson.dumps({"type": type_, "object": payload}) + b"\n"

    async def stream() -> AsyncIterator[bytes]:
        first = True
        with anyio.move_on_after(timeout) if timeout else contextlib.nullcontext():
            try:
                for obj in initial:
                    obj = present(kind, obj)
                    if keep(obj):
                        yield encode("ADDED", obj, first)
                        first = False
                async for event in until_shutdown(events, shutdown):
                    if event.type is WatchEventType.BOOKMARK or not keep(present(kind, event.object)):
                        continue
                    yield encode(event.type.value, event.object, first)
                    first = False
            except GoneError as error:
                yield orjson.dumps({"type": "ERROR", "object": status_from_error(error)}) + b"\n"
            finally:
                await events.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(stream(), media_type=JSON)
