"""An in-memory copy of every object of the user kinds, kept current by list + watch.

Readers that must not touch the store on their hot path (the ``/metrics`` scrape, which runs
in a worker thread) take ``snapshot()``: a copy of ``kind -> name -> object`` taken under a
lock, so it is consistent even while the event loop applies watch events. A deleted object
leaves the cache on its DELETED event, so anything computed from a snapshot forgets it at once.

Each kind is kept by a ``mfx.store.list_watch.ListWatch``: listed, then watched; a watch that
ends or fails resumes, and ``GoneError`` makes the cache list the kind again and replace what
it held. Failures are retried with a capped backoff and logged, so it never goes deaf silently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from functools import partial

import anyio

from mfx.api.kinds import USER_KINDS
from mfx.api.objects import Obj, name_of
from mfx.backoff import Backoff
from mfx.store.base import Store, WatchEvent, WatchEventType
from mfx.store.list_watch import ListWatch

log = logging.getLogger("mfx.store.cache")

Snapshot = dict[str, dict[str, Obj]]


class ObjectCache:
    """``ObjectCache(store)``; run ``await cache.run()`` in a task group, read ``snapshot()``."""

    def __init__(
        self,
        store: Store,
        kinds: Iterable[str] | None = None,
        *,
        page_size: int = 500,
        retry_base: float = 0.05,
        retry_max: float = 5.0,
    ) -> None:
        self.kinds: tuple[str, ...] = (
            tuple(kinds) if kinds is not None else tuple(k.kind for k in USER_KINDS)
        )
        # Guarded by a thread lock: the scrape reads from a worker thread.
        self._lock = threading.Lock()
        self._objects: Snapshot = {kind: {} for kind in self.kinds}
        self._synced = {kind: anyio.Event() for kind in self.kinds}
        # Set (and dropped) whenever the cache changes; made only while someone waits, so a
        # change nobody waits for costs no event.
        self._changed: anyio.Event | None = None
        self._list_watches = [
            ListWatch(
                store,
                kind,
                on_event=partial(self._apply, kind),
                on_relist=partial(self._replace, kind),
                logger=log,
                backoff=Backoff(initial=retry_base, cap=retry_max),
                page_size=page_size,
            )
            for kind in self.kinds
        ]

    # --- reading --------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """A copy of ``kind -> name -> object``; the objects themselves are never mutated."""
        with self._lock:
            return {kind: dict(objects) for kind, objects in self._objects.items()}

    def get(self, kind: str, name: str) -> Obj | None:
        with self._lock:
            return self._objects.get(kind, {}).get(name)

    @property
    def synced(self) -> bool:
        return all(event.is_set() for event in self._synced.values())

    async def wait_synced(self) -> None:
        """Return once every kind has been listed at least once."""
        for event in self._synced.values():
            await event.wait()

    async def wait_for(self, predicate: Callable[[Snapshot], bool]) -> Snapshot:
        """Wait until ``predicate(snapshot())`` holds (checked after every change); returns it."""
        while True:
            if self._changed is None:
                self._changed = anyio.Event()
            changed = self._changed
            snapshot = self.snapshot()
            if predicate(snapshot):
                return snapshot
            await changed.wait()

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    # --- running --------------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch every kind until cancelled."""
        async with anyio.create_task_group() as group:
            for list_watch in self._list_watches:
                group.start_soon(list_watch.run)

    @property
    def relists(self) -> int:
        """Lists taken (one per kind at start, one more per GoneError)."""
        return sum(list_watch.relists for list_watch in self._list_watches)

    @property
    def resumes(self) -> int:
        """Watches re-opened from the last resourceVersion seen."""
        return sum(list_watch.resumes for list_watch in self._list_watches)

    def _replace(self, kind: str, items: list[Obj]) -> None:
        with self._lock:
            self._objects[kind] = {name_of(obj): obj for obj in items}
        self._synced[kind].set()
        self._notify()

    def _apply(self, kind: str, event: WatchEvent) -> None:
        name = name_of(event.object)
        with self._lock:
            if event.type is WatchEventType.DELETED:
                self._objects[kind].pop(name, None)
            else:
                self._objects[kind][name] = event.object
        self._notify()
