"""A watch over the API (``?watch=true&resourceVersion=RV``): ``ApiStore.watch``'s iterator.

The API streams one JSON event per line. This iterator yields them as ``WatchEvent``s and
keeps the resourceVersion of the last one; when the connection drops (the server restarted,
the network failed over) it connects again, to the same server or the next one, and asks for
the changes after that resourceVersion: the caller sees no gap and no repeat.

Several objects may share a resourceVersion: on etcd, the objects one transaction wrote (one
``mfx apply``) all carry its revision. So an event is a repeat only when its resourceVersion
is older than the cursor, or equal to it for an object already delivered at that version; and
a connection dropped in the middle of such a group resumes from the version before it, the
group's delivered objects skipped. Reconnecting
waits with a backoff while no server answers (the outage is logged once, by ``ApiServers``).
An ``ERROR`` event with code 410, or a 410 answer, ends it with ``GoneError``: the history
was compacted past that point, and only a new list can catch up.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Self

import anyio
import httpx
import orjson

from mfx.api.objects import Obj
from mfx.backoff import Backoff, jittered
from mfx.errors import GoneError, MfxError, StoreUnavailableError
from mfx.store.api_connection import ApiServers, decode
from mfx.store.api_errors import error_from_status
from mfx.store.base import WatchEvent, WatchEventType

log = logging.getLogger("mfx.store.api")

RECONNECT_BACKOFF = Backoff(initial=0.05, cap=5.0)
# As client-go: the server is asked to end each watch after 5 to 10 minutes, and the client
# reconnects. A watch that hears nothing, not even that end, for longer than it asked for is
# on a connection that died silently (a cut network sends no reset): it is dropped.
WATCH_SECONDS = (300, 600)
SILENCE_GRACE = 30.0


class ApiWatch:
    """An async iterator of ``WatchEvent`` (also ``async with``); ``aclose()`` ends it."""

    def __init__(self, servers: ApiServers, path: str, since: int, *,
                 resolve_now: Callable[[], Awaitable[int]], shape: Callable[[Obj], Obj],
                 seen: Callable[[int], None], released: Callable[[ApiWatch], None]) -> None:
        self._servers = servers
        self._path = path
        self._cursor = since  # 0 until resolved: "from now"
        self._resolve_now = resolve_now
        self._shape = shape
        self._seen = seen
        self._released = released
        self._response: httpx.Response | None = None
        self._lines: Any = None
        self._scope: anyio.CancelScope | None = None
        self._closed = False
        self._failures = 0
        self._delivered = 0  # events since the current connection opened
        # The objects (kind, name) delivered at resourceVersion == cursor: its group may go on.
        self._at_cursor: set[tuple[str, str]] = set()

    @property
    def resource_version(self) -> int:
        return self._cursor

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def __anext__(self) -> WatchEvent:
        while not self._closed:
            with anyio.CancelScope() as scope:
                self._scope = scope
                event = await self._next_event()
                if event is not None:
                    return event
            self._scope = None
        await self.aclose()
        raise StopAsyncIteration

    async def _next_event(self) -> WatchEvent | None:
        """The next event; None when the connection ended (the caller's loop reconnects)."""
        if self._lines is None:
            await self._connect()
        try:
            line = await self._lines.__anext__()
        except StopAsyncIteration:
            await self._drop("the server ended the watch")
            return None
        except httpx.TransportError as exc:
            await self._drop(str(exc) or type(exc).__name__)
            return None
        if not line.strip():
            return None
        return self._event(orjson.loads(line))

    def _event(self, raw: dict[str, Any]) -> WatchEvent | None:
        type_ = raw.get("type")
        obj = raw.get("object") or {}
        if type_ == "ERROR":
            code = int(obj.get("code") or 500)
            error = error_from_status(code, obj, server=self._servers.current_url)
            self._closed = True
            raise error
        metadata = obj.get("metadata") or {}
        rv = int(metadata.get("resourceVersion") or 0)
        if type_ == "BOOKMARK":
            if rv >= self._cursor:  # everything up to rv was delivered
                self._cursor, self._at_cursor = rv, set()
        else:
            key = (str(obj.get("kind") or ""), str(metadata.get("name") or ""))
            if rv < self._cursor or (rv == self._cursor and key in self._at_cursor):
                return None  # already delivered before a reconnect
            if rv > self._cursor:
                self._cursor, self._at_cursor = rv, set()
            self._at_cursor.add(key)
        self._seen(rv)
        self._delivered += 1
        if type_ == "BOOKMARK":
            return WatchEvent(WatchEventType.BOOKMARK, obj, rv)
        return WatchEvent(WatchEventType(str(type_)), self._shape(obj), rv)

    async def _connect(self) -> None:
        """Open the stream from the cursor, retrying with backoff while no server answers."""
        while True:
            try:
                if not self._cursor:
                    self._cursor = await self._resolve_now()
                await self._open()
                return
            except (GoneError, anyio.get_cancelled_exc_class()):
                raise
            except StoreUnavailableError:
                pass  # logged once by ApiServers
            except MfxError as exc:
                if exc.code < 500:
                    self._closed = True
                    raise
                log.warning("watch of %s: %s; retrying", self._path, exc)
            self._failures += 1
            await anyio.sleep(jittered(RECONNECT_BACKOFF.delay(self._failures)))

    async def _open(self) -> None:
        seconds = random.randint(*WATCH_SECONDS)
        # Mid-group (objects delivered at the cursor, more may share it): from the version before.
        start = self._cursor - 1 if self._at_cursor else self._cursor
        params = {"watch": "true", "resourceVersion": str(start), "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(seconds)}
        timeout = httpx.Timeout(seconds + SILENCE_GRACE, connect=3.0)
        for _url, client in self._servers.clients():
            server = self._servers.server_for(client)
            request = client.build_request("GET", self._path, params=params, timeout=timeout)
            try:
                response = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                self._servers.failed(server, exc)
                continue
            if response.status_code != 200:
                await response.aread()
                await response.aclose()
                self._servers.succeeded(server)
                decode(response, server.url)  # raises the error the answer stands for
            self._servers.succeeded(server)
            self._response = response
            self._lines = response.aiter_lines()
            self._delivered = 0
            return
        raise self._servers.unavailable()

    async def _drop(self, why: str) -> None:
        """Close the current connection; the next ``__anext__`` reconnects from the cursor."""
        await self._close_response()
        if self._delivered == 0:  # ended at once, again and again: do not spin
            self._failures += 1
            await anyio.sleep(jittered(RECONNECT_BACKOFF.delay(self._failures)))
        else:
            self._failures = 0
        log.debug("watch of %s dropped (%s); resuming from resourceVersion %d", self._path, why, self._cursor)

    async def _close_response(self) -> None:
        response, self._response, self._lines = self._response, None, None
        if response is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await response.aclose()
                except httpx.TransportError:
                    pass

    def cancel(self) -> None:
        """End the watch from outside (the store closes): the iterator stops."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()

    async def aclose(self) -> None:
        self._closed = True
        await self._close_response()
        self._released(self)

    def __del__(self) -> None:
        # A caller that breaks out of "async for" drops its last reference here.
        self._closed = True
        self._released(self)
