"""A store watch on etcd: one etcd watch stream from a revision, resumed on another member.

Every daemon's watches come from etcd itself, so a write through any daemon on the same
prefix reaches every watcher. The stream starts at ``since + 1`` (etcd's start_revision is
inclusive); when the member serving it goes away the watch opens again elsewhere from the
revision after the last one delivered, so nothing is missed or repeated. etcd answers a
compacted start revision by cancelling the watch: that is ``GoneError`` (410), as Kubernetes
answers.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import anyio
import grpc
from aetcd import rpc

from mfx.errors import GoneError
from mfx.store import strategy
from mfx.store.base import ReleasedWatch, WatchEvent, WatchEventType
from mfx.store.codec import loads
from mfx.store.etcd_client import EtcdConnection
from mfx.store.etcd_keys import range_end

_PUT = rpc.Event.PUT


def event_from(event: Any) -> WatchEvent:
    """A store ``WatchEvent`` from an etcd watch event (DELETE carries the previous value)."""
    kv = event.kv
    revision = int(kv.mod_revision)
    if event.type == _PUT:
        obj = loads(kv.value)
        kind = WatchEventType.ADDED if kv.create_revision == kv.mod_revision else WatchEventType.MODIFIED
    else:
        obj = loads(event.prev_kv.value)
        kind = WatchEventType.DELETED
    strategy.stamp_resource_version(obj, revision)
    return WatchEvent(kind, obj, revision)


class EtcdWatch(ReleasedWatch):
    """An async iterator of ``WatchEvent``; ``aclose()`` (or leaving ``async with``) ends it."""

    def __init__(self, connection: EtcdConnection, prefix: bytes, since: int,
                 release: Callable[[EtcdWatch], None]) -> None:
        self._connection = connection
        self._prefix = prefix
        self._next = since + 1  # the first revision still to deliver
        self._release_from_store = release
        self._call: Any = None
        self._pending: collections.deque[WatchEvent] = collections.deque()
        self._closed = False
        self._scope: anyio.CancelScope | None = None

    async def __anext__(self) -> WatchEvent:
        while not self._pending:
            if self._closed:
                self._release()
                raise StopAsyncIteration
            with anyio.CancelScope() as scope:
                self._scope = scope
                try:
                    await self._fill()
                except BaseException:
                    self._release()
                    raise
                finally:
                    self._scope = None
        return self._pending.popleft()

    async def _fill(self) -> None:
        if self._call is None:
            create = rpc.WatchCreateRequest(key=self._prefix, range_end=range_end(self._prefix),
                                            start_revision=self._next, prev_kv=True)
            self._call, first = await self._connection.watch_stream(create)
            self._take(first)
            return
        try:
            response = await self._call.read()
        except grpc.aio.AioRpcError:
            response = grpc.aio.EOF
        if response is grpc.aio.EOF:  # the member went away: open again elsewhere, same place
            self._drop_call()
            return
        self._take(response)

    def _take(self, response: Any) -> None:
        if response.compact_revision:  # etcd cancels a watch that starts before its history
            raise GoneError(
                f"too old resource version: {self._next - 1} ({response.compact_revision}); etcd has "
                "compacted its history: list again and watch from the list's resourceVersion"
            )
        if response.canceled:
            self._drop_call()
            return
        for event in response.events:
            revision = int(event.kv.mod_revision)
            if revision < self._next:
                continue
            self._pending.append(event_from(event))
        if response.events:
            self._next = max(self._next, int(response.events[-1].kv.mod_revision) + 1)

    def _drop_call(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call.cancel()

    def stop(self) -> None:
        """End the watch from outside (the store is closing): the reader sees the end."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()  # the reader releases the stream on its way out
        else:
            self._drop_call()  # now, while the event loop that owns the stream runs

    def _release(self) -> None:
        self._closed = True
        self._drop_call()
        self._release_from_store(self)

    def __del__(self) -> None:
        # A caller that breaks out of "async for" drops its last reference here.
        if not self._closed or self._call is not None:
            try:
                self._release()
            except RuntimeError:  # the event loop is gone, and the stream with it
                pass
