"""In-process watch fan-out: every committed change goes to every open watch of its kind.

A change is decoded once, and every watcher gets that same object: watchers must treat it as
read-only (copy it before changing it; ``get`` and ``list`` return copies).

Every watcher has an in-memory buffer of ``buffer`` changes. Writers never wait for a watcher:
when its buffer is full it stops receiving live changes ("lagged"), and once it has drained
the buffer it reads the missed changes from the backend's change log (``read_log``) and
rejoins the live stream. The backend ends a watcher too far behind with ``GoneError``.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream

from mfx.api.objects import Obj
from mfx.errors import GoneError
from mfx.store.base import ReleasedWatch, WatchEvent, WatchEventType
from mfx.store.codec import loads

# Buffered events a watch hands out before it lets other tasks run.
YIELD_EVERY = 64


class Change:
    """One entry of the change log; its object is decoded once, on first use, for every watcher."""

    __slots__ = ("resource_version", "type", "kind", "name", "body", "_decoded", "_event")

    def __init__(self, resource_version: int, type: str, kind: str, name: str, body: str,
                 decoded: Obj | None = None) -> None:
        self.resource_version = resource_version
        self.type = type
        self.kind = kind
        self.name = name
        self.body = body  # JSON, as stored
        # The object ``body`` encodes, when the writer hands it over (nobody changes it after):
        # watchers get it without decoding the JSON again.
        self._decoded = decoded
        self._event: WatchEvent | None = None

    def event(self) -> WatchEvent:
        if self._event is None:
            obj = loads(self.body) if self._decoded is None else self._decoded
            self._event = WatchEvent(_EVENT_TYPES[self.type], obj, self.resource_version)
            self._decoded = None
        return self._event


# The member for each stored type: a look-up, where calling the enum costs several (one event
# per change, for every watcher).
_EVENT_TYPES = {member.value: member for member in WatchEventType}


@dataclass(eq=False)
class Subscription:
    kind: str | None
    send: MemoryObjectSendStream[Change]
    # True while the watcher reads from the log instead of the live stream (it starts that way
    # when it has a backlog to replay, and turns so when its buffer overflowed).
    lagged: bool
    pending: collections.deque[Change] = field(default_factory=collections.deque)


# The next page of the log after a resourceVersion for a lagging subscription (the backend
# clears ``lagged`` once caught up); None once the backend is closed.
ReadLog = Callable[[Subscription, int], Awaitable[list[Change] | None]]


class WatchHub:
    def __init__(self, buffer: int, read_log: ReadLog) -> None:
        self.buffer = buffer
        self.read_log = read_log
        self._subscriptions: set[Subscription] = set()

    @property
    def watchers(self) -> int:
        return len(self._subscriptions)

    def open(self, kind: str | None, since: int, current: int) -> Watch:
        """A watch of changes after ``since``, or after ``current`` when ``since`` is 0."""
        return Watch(self, kind, since, current)

    def publish(self, changes: Iterable[Change]) -> None:
        """Hand committed changes, in resourceVersion order, to the watchers of their kind."""
        for change in changes:
            for sub in list(self._subscriptions):
                if sub.lagged or (sub.kind is not None and sub.kind != change.kind):
                    continue
                try:
                    sub.send.send_nowait(change)
                except anyio.WouldBlock:
                    sub.lagged = True  # it re-reads the log once it has drained its buffer
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._subscriptions.discard(sub)

    def close(self) -> None:
        """End every watch once it has drained what it holds."""
        for sub in list(self._subscriptions):
            sub.send.close()
        self._subscriptions.clear()

    def subscribe(self, sub: Subscription) -> None:
        self._subscriptions.add(sub)

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)


class Watch(ReleasedWatch):
    """An async iterator of ``WatchEvent``; ``aclose()`` (or leaving ``async with``) ends it."""

    def __init__(self, hub: WatchHub, kind: str | None, since: int, current: int) -> None:
        self._hub = hub
        self._kind = kind
        send, self._receive = anyio.create_memory_object_stream[Change](max_buffer_size=hub.buffer)
        # since=0 starts from now, as a Kubernetes watch without a resourceVersion does (minus
        # the synthetic ADDED events: list first, then watch from the list's resourceVersion).
        self._cursor = since if since else current
        self._without_yield = 0  # events handed out since this watch last let other tasks run
        self._sub = Subscription(kind, send, lagged=bool(since))
        self._closed = False
        hub.subscribe(self._sub)

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._sub.pending:
                change = self._sub.pending.popleft()
            elif self._closed:
                raise StopAsyncIteration
            else:
                if self._without_yield >= YIELD_EVERY:
                    # A watcher with a thousand changes buffered (one bulk apply) would hand
                    # them all out without the event loop running anything else: the answer
                    # to that very apply would wait for it.
                    self._without_yield = 0
                    await anyio.lowlevel.checkpoint()
                try:
                    change = self._receive.receive_nowait()
                    self._without_yield += 1
                except anyio.WouldBlock:
                    self._without_yield = 0
                    if self._sub.lagged:
                        if not await self._catch_up():
                            self._release()
                            raise StopAsyncIteration from None
                        continue
                    try:
                        change = await self._receive.receive()
                    except (anyio.EndOfStream, anyio.ClosedResourceError):
                        self._release()
                        raise StopAsyncIteration from None
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    self._release()
                    raise StopAsyncIteration from None
            if change.resource_version <= self._cursor:
                continue
            self._cursor = change.resource_version
            return change.event()

    async def _catch_up(self) -> bool:
        try:
            rows = await self._hub.read_log(self._sub, self._cursor)
        except GoneError:
            self._release()
            raise
        if rows is None:
            return False
        self._sub.pending.extend(rows)
        return True

    def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._hub.unsubscribe(self._sub)
        self._sub.send.close()
        self._receive.close()

    def __del__(self) -> None:
        # A caller that breaks out of "async for" drops its last reference here.
        self._release()
