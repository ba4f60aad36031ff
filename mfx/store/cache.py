"""An in-memory copy of every object of the user kinds, kept current by list + watch.

Readers that must not touch the store on their hot path (the ``/metrics`` scrape, which runs
in a worker thread) take ``snapshot()``: a copy of ``kind -> name -> object`` taken under a
lock, so it is consistent even while the event loop applies watch events. A deleted object
leaves the cache on its DELETED event, so anything computed from a snapshot forgets it at once.

Each kind is listed, then watched from the list's resourceVersion. A watch that ends or fails
resumes from the last resourceVersion seen; ``GoneError`` (the history was compacted past
that point) makes the cache list the kind again and replace what it held. Failures are
retried with a capped backoff and logged, so the cache never goes deaf silently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

import anyio

from mfx.api.kinds import USER_KINDS
from mfx.api.objects import Obj, name_of
from mfx.errors import GoneError, MfxError
from mfx.store.base import Store, WatchEventType

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
        self._store = store
        self.kinds: tuple[str, ...] = (
            tuple(kinds) if kinds is not None else tuple(k.kind for k in USER_KINDS)
        )
        self._page_size = page_size
        self._retry_base = retry_base
        self._retry_max = retry_max
        # Guarded by a thread lock: the scrape reads from a worker thread.
        self._lock = threading.Lock()
        self._objects: Snapshot = {kind: {} for kind in self.kinds}
        self._synced = {kind: anyio.Event() for kind in self.kinds}
        # Set (and dropped) whenever the cache changes; made only while someone waits, so a
        # change nobody waits for costs no event.
        self._changed: anyio.Event | None = None
        self.relists = 0  # lists taken (one per kind at start, one more per GoneError)
        self.resumes = 0  # watches re-opened from the last resourceVersion seen

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
            for kind in self.kinds:
                group.start_soon(self._run_kind, kind)

    async def _run_kind(self, kind: str) -> None:
        failures = 0
        resource_version: int | None = None  # None: list first
        while True:
            try:
                if resource_version is None:
                    resource_version = await self._relist(kind)
                    failures = 0
                resource_version, delivered = await self._watch(kind, resource_version)
                self.resumes += 1
                if delivered:
                    failures = 0
                else:  # a stream that ends at once, again and again, must not spin
                    failures += 1
                    await self._backoff(failures, f"the watch of {kind} ended without events")
            except GoneError as error:
                log.info("the watch of %s expired (%s); listing again", kind, error)
                resource_version = None
            except MfxError as error:
                failures += 1
                await self._backoff(failures, f"keeping the {kind} cache failed: {error}")

    async def _relist(self, kind: str) -> int:
        items: list[Obj] = []
        token: str | None = None
        first_rv: int | None = None
        while True:
            page = await self._store.list(kind, limit=self._page_size, continue_token=token)
            if first_rv is None:
                first_rv = page.resource_version
            items.extend(page.items)
            token = page.continue_token
            if not token:
                break
        with self._lock:
            self._objects[kind] = {name_of(obj): obj for obj in items}
        self.relists += 1
        self._synced[kind].set()
        self._notify()
        return first_rv

    async def _watch(self, kind: str, since: int) -> tuple[int, int]:
        """Apply events until the stream ends; returns the last resourceVersion and the count."""
        stream = self._store.watch(kind, since)
        delivered = 0
        try:
            async for event in stream:
                delivered += 1
                since = max(since, event.resource_version)
                if event.type is WatchEventType.BOOKMARK:
                    continue
                name = name_of(event.object)
                with self._lock:
                    if event.type is WatchEventType.DELETED:
                        self._objects[kind].pop(name, None)
                    else:
                        self._objects[kind][name] = event.object
                self._notify()
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()
        return since, delivered

    async def _backoff(self, failures: int, why: str) -> None:
        delay = min(self._retry_max, self._retry_base * 2 ** min(failures - 1, 30))
        log.warning("%s; retrying in %.2f s", why, delay)
        await anyio.sleep(delay)  # waits for the store to recover, not for another task
