"""List + watch of one kind that never goes deaf: the loop behind every informer and cache.

It lists, then watches from the list's resourceVersion. When the watch ends or fails it
resumes from the last resourceVersion it saw; when the store answers ``GoneError`` (410: the
history was compacted past that point) it lists again. Every step is reported to callbacks,
and failures are retried with a capped exponential backoff (logged, never silent).

Retries wait in real time (they wait for the store, not for a reconcile), so fake clocks
in tests do not stall them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

from mfx.api.objects import Obj
from mfx.backoff import Backoff
from mfx.errors import GoneError, MfxError
from mfx.store.base import Store, WatchEvent, WatchEventType

EventCallback = Callable[[WatchEvent], None]
RelistCallback = Callable[[list[Obj]], None]

DEFAULT_BACKOFF = Backoff(initial=0.05, cap=5.0)


async def list_all(store: Store, kind: str, *, page_size: int = 500) -> tuple[list[Obj], int]:
    """Every object of ``kind`` and the resourceVersion of the first page."""
    items: list[Obj] = []
    token: str | None = None
    first_rv: int | None = None
    while True:
        page = await store.list(kind, limit=page_size, continue_token=token)
        if first_rv is None:
            first_rv = page.resource_version
        items.extend(page.items)
        token = page.continue_token
        if not token:
            return items, first_rv


class ListWatch:
    """``await ListWatch(store, kind, on_event=..., on_relist=...).run()`` in a task group.

    ``on_relist`` gets every object after each list (replace what you held); ``on_event`` gets
    each ADDED, MODIFIED and DELETED event after that. Bookmarks only move the resourceVersion.
    """

    def __init__(
        self,
        store: Store,
        kind: str,
        *,
        on_event: EventCallback,
        on_relist: RelistCallback,
        logger: logging.Logger | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        page_size: int = 500,
    ) -> None:
        self._store = store
        self.kind = kind
        self._on_event = on_event
        self._on_relist = on_relist
        self._log = logger or logging.getLogger(f"mfx.store.list_watch.{kind}")
        self._backoff_policy = backoff
        self._page_size = page_size
        self.resource_version = 0
        self.relists = 0  # how many lists were taken (1 at start, +1 per GoneError)
        self.resumes = 0  # how many times the watch was re-opened from resource_version
        self._advanced: anyio.Event | None = None
        self._failing = False  # in a streak of failures (logged once)

    async def wait_for(self, resource_version: int) -> None:
        """Until every change up to ``resource_version`` has been handed to the callbacks."""
        while self.resource_version < resource_version:
            if self._advanced is None:
                self._advanced = anyio.Event()
            await self._advanced.wait()

    def _notify(self) -> None:
        if self._advanced is not None:
            self._advanced.set()
            self._advanced = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """List, report started, then watch forever (until cancelled)."""
        failures = 0
        while True:
            try:
                await self._relist()
                break
            except MfxError as exc:
                failures += 1
                await self._backoff(failures, f"listing {self.kind} failed: {exc}")
        task_status.started()
        failures = 0
        while True:
            try:
                delivered = await self._watch_once()
                self.resumes += 1  # the stream ended: pick up where it stopped
                if delivered:
                    failures = 0
                else:  # a stream that ends at once, again and again, must not spin
                    failures += 1
                    await self._backoff(failures, f"watch of {self.kind} ended without events")
            except GoneError as exc:
                self._log.info("watch of %s expired (%s); listing again", self.kind, exc)
                try:
                    await self._relist()
                    failures = 0
                except MfxError as list_exc:
                    failures += 1
                    await self._backoff(failures, f"listing {self.kind} failed: {list_exc}")
            except MfxError as exc:
                failures += 1
                self.resumes += 1
                await self._backoff(failures, f"watch of {self.kind} failed: {exc}")

    async def _relist(self) -> None:
        items, rv = await list_all(self._store, self.kind, page_size=self._page_size)
        self._recovered()
        self.relists += 1
        self._on_relist(items)
        self.resource_version = rv
        self._notify()

    async def _watch_once(self) -> int:
        stream = self._store.watch(self.kind, self.resource_version)
        delivered = 0
        try:
            async for event in stream:
                if not delivered:
                    self._recovered()
                delivered += 1
                if event.type is not WatchEventType.BOOKMARK:
                    self._on_event(event)
                if event.resource_version > self.resource_version:
                    self.resource_version = event.resource_version
                    self._notify()
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()
        return delivered

    async def _backoff(self, failures: int, why: str) -> None:
        delay = self._backoff_policy.delay(failures)
        # Said once per outage (then at debug level), and its end once: a store that stays
        # away for an hour must not fill the log with a line per retry.
        self._log.log(logging.DEBUG if self._failing else logging.WARNING,
                      "%s; retrying in %.2f s (with backoff, until it answers)", why, delay)
        self._failing = True
        await anyio.sleep(delay)  # real time: this waits for the store, not for a reconcile

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            self._log.info("list and watch of %s work again", self.kind)
