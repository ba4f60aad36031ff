"""Reads of a remote store answered from what its watches have already delivered.

A node agent's controllers read the object they reconcile before each reconcile, the
dependencies a plugin waits for, and the finalizers before they change them. Against the
local store each read is a dictionary lookup; against the API server (``ApiStore``) each is an
HTTP request, and both sides pay for it: an agent starting 500 plugins made ~4000 of them,
and they took more of its CPU and the server's than its writes did. controller-runtime's
client reads from its informers' cache for the same reason; ``CachedReads`` is that cache,
put under the controllers of an agent and of a daemon on etcd (``mfx.server.services``).

It learns objects from the lists and watches that pass through it (the controllers' own
informers: no extra watch) and from the answer to every write made through it. Its rules keep
a read no staler than the watch it follows:

- A list of a whole kind (what an informer takes before it watches) replaces what was known
  of the kind: an object deleted meanwhile is not in it, and is no longer held.
- An older resourceVersion never replaces a newer one; a DELETED event leaves a tombstone at
  its version, so an answer that crossed it cannot bring the object back.
- ``get`` answers from the cache only for a kind with a watch running through it, and only an
  object it holds. A name it has not seen, or a deleted one, is asked of the store: "not
  found" always comes from the store.
- When the last watch of a kind ends (the store answered Gone, or the watch was closed), the
  kind is forgotten, so what was deleted meanwhile is not served; the relist refills it.
- A write that fails (a conflict, a failed ``test`` of a JSON patch) forgets its object: the
  retry reads the store, and does not conflict again on the same stale copy, nor on a late
  watch event of the version the write was based on.
- Every answer is a copy of its own: a caller may change what it gets.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Awaitable, Sequence
from typing import Any, Self, Unpack

from mfx.api.json_copy import json_copy
from mfx.api.objects import Obj
from mfx.store.base import (
    BatchWrite,
    EventRecord,
    ListOptions,
    ListResult,
    Store,
    WatchEvent,
    WatchEventType,
)

__all__ = ["CachedReads"]

Key = tuple[str, str]


class CachedReads:
    """``CachedReads(store)``: a ``Store`` whose reads come from its watches (module docstring).

    Everything else is the wrapped store's: methods it has beyond ``Store`` (an ``ApiStore``'s
    patches) pass through, and their answers are learned as a write's are."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self._objects: dict[Key, Obj] = {}
        self._versions: dict[Key, int] = {}  # the newest resourceVersion seen, tombstones included
        self._watching: Counter[str] = Counter()  # watches running through here, per kind

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    # --- what it knows ---------------------------------------------------------------------

    def _learn(self, obj: Obj, *, listed: bool = False) -> None:
        """Hold ``obj`` if it is newer than what is known of it. Outside a list of its whole
        kind, only while a watch of the kind runs: that watch is what tells of later changes."""
        kind = obj.get("kind")
        if not listed and not self._watching.get(kind):  # type: ignore[arg-type]
            return
        meta = obj.get("metadata") or {}
        version = _version(meta)
        if version is None:
            return
        key = (kind, meta.get("name"))
        known = self._versions.get(key, 0)  # type: ignore[arg-type]
        # The same version again only from a list, when it is not held (a list after a list):
        # a failed write let go of the version it was based on, and no event may restore it.
        if version > known or (listed and version == known and key not in self._objects):
            self._versions[key] = version  # type: ignore[index]
            self._objects[key] = json_copy(obj)  # type: ignore[index]

    def _learn_deleted(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (str(obj.get("kind")), str(meta.get("name")))
        version = _version(meta) or 0
        if version >= self._versions.get(key, 0):
            self._versions[key] = version
            self._objects.pop(key, None)

    def _forget(self, kind: str, name: str | None) -> None:
        """Not held any more; its version stays, so only a newer one is held again."""
        if name is not None:
            self._objects.pop((kind, name), None)

    def _forget_kind(self, kind: str) -> None:
        for key in [k for k in self._versions if k[0] == kind]:
            self._objects.pop(key, None)
            del self._versions[key]

    async def _written(self, kind: str, name: str | None, write: Awaitable[Obj]) -> Obj:
        try:
            answer = await write
        except BaseException:
            self._forget(kind, name)  # whatever the store has now, the next read asks it
            raise
        if (answer.get("metadata") or {}).get("resourceVersion") is None:
            self._forget(kind, name)  # an answer that is not the object (a finished delete)
        else:
            self._learn(answer)
        return answer

    # --- reads -----------------------------------------------------------------------------

    async def get(self, kind: str, name: str) -> Obj:
        held = self._objects.get((kind, name)) if self._watching.get(kind) else None
        if held is not None:
            return json_copy(held)
        obj = await self._inner.get(kind, name)
        self._learn(obj)
        return obj

    async def get_many(self, keys: Sequence[Key]) -> dict[Key, Obj]:
        found: dict[Key, Obj] = {}
        missing: list[Key] = []
        for key in keys:
            held = self._objects.get(key) if self._watching.get(key[0]) else None
            if held is None:
                missing.append(key)
            else:
                found[key] = json_copy(held)
        if missing:
            fetched = await self._inner.get_many(missing)
            for obj in fetched.values():
                self._learn(obj)
            found.update(fetched)
        return {key: found[key] for key in keys if key in found}

    async def list(self, kind: str, **options: Unpack[ListOptions]) -> ListResult:
        result = await self._inner.list(kind, **options)
        whole = not options.get("label_selector")
        if whole and not options.get("continue_token"):
            # Its first page: what was held of the kind and is not listed is gone. The
            # versions stay, so no page can bring back what a newer event has told.
            for key in [k for k in self._objects if k[0] == kind]:
                del self._objects[key]
        for obj in result.items:
            self._learn(obj, listed=whole)
        return result

    def watch(self, kind: str | None, since: int) -> Any:
        stream = self._inner.watch(kind, since)
        if kind is None:
            return stream
        return _TappedWatch(stream, self, kind)

    # --- writes ----------------------------------------------------------------------------

    async def create(self, obj: Obj) -> Obj:
        return await self._written(obj.get("kind", ""), (obj.get("metadata") or {}).get("name"),
                                   self._inner.create(obj))

    async def update(self, obj: Obj) -> Obj:
        return await self._written(obj.get("kind", ""), obj["metadata"].get("name"), self._inner.update(obj))

    async def update_status(self, obj: Obj) -> Obj:
        return await self._written(obj.get("kind", ""), obj["metadata"].get("name"), self._inner.update_status(obj))

    async def write_status(self, obj: Obj, events: Sequence[EventRecord] = (), *,
                           with_metadata: bool = False) -> Obj:
        return await self._written(obj.get("kind", ""), obj["metadata"].get("name"),
                                   self._inner.write_status(obj, events, with_metadata=with_metadata))

    async def write_all(self, writes: Sequence[BatchWrite]) -> builtins.list[Obj]:
        try:
            answers = await self._inner.write_all(writes)
        except BaseException:
            for write in writes:
                self._forget(write.obj.get("kind", ""), write.obj["metadata"].get("name"))
            raise
        for answer in answers:
            self._learn(answer)
        return answers

    async def delete(self, kind: str, name: str, *, resource_version: int | None = None) -> Obj:
        return await self._written(kind, name, self._inner.delete(kind, name, resource_version=resource_version))

    async def patch(self, kind: str, name: str, patch: Obj) -> Obj:
        inner: Any = self._inner
        return await self._written(kind, name, inner.patch(kind, name, patch))

    async def json_patch(self, kind: str, name: str, operations: builtins.list[dict[str, Any]]) -> Obj:
        inner: Any = self._inner
        return await self._written(kind, name, inner.json_patch(kind, name, operations))

    async def patch_status(self, kind: str, name: str, patch: Obj) -> Obj:
        inner: Any = self._inner
        return await self._written(kind, name, inner.patch_status(kind, name, patch))

    async def current_resource_version(self) -> int:
        return await self._inner.current_resource_version()

    async def record_event(self, event: EventRecord) -> Obj:
        return await self._inner.record_event(event)

    async def close(self) -> None:
        await self._inner.close()

    # --- watches ---------------------------------------------------------------------------

    def _watch_began(self, kind: str) -> None:
        self._watching[kind] += 1

    def _watch_ended(self, kind: str) -> None:
        self._watching[kind] -= 1
        if self._watching[kind] <= 0:
            del self._watching[kind]
            self._forget_kind(kind)

    def _saw(self, event: WatchEvent) -> None:
        if event.type is WatchEventType.DELETED:
            self._learn_deleted(event.object)
        elif event.type is not WatchEventType.BOOKMARK:
            self._learn(event.object)


class _TappedWatch:
    """A watch whose events the cache learns from as they pass; it counts as running from
    its making until it ends or is closed."""

    def __init__(self, stream: Any, cache: CachedReads, kind: str) -> None:
        self._stream = stream
        self._cache = cache
        self._kind = kind
        self._running = True
        cache._watch_began(kind)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> WatchEvent:
        try:
            event: WatchEvent = await self._stream.__anext__()
        except BaseException:
            self._end()
            raise
        self._cache._saw(event)
        return event

    async def aclose(self) -> None:
        self._end()
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()

    def _end(self) -> None:
        if self._running:
            self._running = False
            self._cache._watch_ended(self._kind)


def _version(meta: dict[str, Any]) -> int | None:
    try:
        return int(meta["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None
