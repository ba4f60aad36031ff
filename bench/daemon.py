"""A real daemon for benchmarks: run in this process on a blocking portal, fed a stored state.

``BenchDaemon`` starts ``run_daemon`` (store, API, controllers, runtimes) in a portal thread,
returns once it is ready, and shuts it down on exit; ``store_offline`` writes objects into a
state database before a daemon opens it; ``wait_ready`` blocks on the watch until every name
is Ready, ``wait_until`` until each satisfies a predicate (``is_reconciled``: its controller
has written a status for its current spec), ``wait_gone`` until none is stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from anyio.from_thread import start_blocking_portal

from mfx.api.objects import Obj
from mfx.collector import YOUNG_COLLECTION_THRESHOLD
from mfx.server.daemon import DaemonConfig, DaemonContext, run_daemon
from mfx.server.services import default_services
from mfx.store.base import WatchEventType
from mfx.store.sqlite import SQLiteStore


def is_ready(obj: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def is_reconciled(obj: Obj) -> bool:
    """Its controller has written a status for its current spec (Ready or not)."""
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"].get("generation") and bool(status.get("conditions"))


async def wait_ready(store: Any, kind: str, names: set[str]) -> float:
    """Block until every name is Ready (watch-driven); returns the time it happened."""
    return await wait_until(store, kind, names, is_ready)


async def wait_gone(store: Any, kind: str, names: set[str]) -> float:
    """Block until none of the names is stored any more (watch-driven); returns the time."""
    page = await store.list(kind, limit=100000)
    pending = names & {obj["metadata"]["name"] for obj in page.items}
    if pending:
        async for event in store.watch(kind, page.resource_version):
            if event.type == WatchEventType.DELETED:
                pending.discard(event.object["metadata"]["name"])
                if not pending:
                    break
    return time.perf_counter()


async def wait_until(store: Any, kind: str, names: set[str], done: Callable[[Obj], bool]) -> float:
    """Block until ``done`` holds for every name (watch-driven); returns the time it happened."""
    pending = set(names)
    page = await store.list(kind, limit=100000)
    for obj in page.items:
        if done(obj):
            pending.discard(obj["metadata"]["name"])
    if not pending:
        return time.perf_counter()
    async for event in store.watch(kind, page.resource_version):
        obj = event.object
        if done(obj):
            pending.discard(obj["metadata"]["name"])
            if not pending:
                return time.perf_counter()
    raise RuntimeError("watch ended")


class BenchDaemon:
    def __init__(self, home: Path, plugin_path: Path, *, workers: int = 4, pin_threads: bool = True) -> None:
        # As ``mfx serve`` runs it: this process is only the daemon (and the benchmark's watch);
        # ``pin_threads=False`` as ``mfx serve --no-pin-threads``.
        self.config = DaemonConfig(home=home, plugin_paths=[plugin_path], workers=workers, freeze_startup_objects=True,
                                   young_collection_threshold=YOUNG_COLLECTION_THRESHOLD,
                                   pin_interpreter_threads=pin_threads)
        self.context: DaemonContext | None = None
        self.started = 0.0
        self.stopped_in = 0.0

    def __enter__(self) -> BenchDaemon:
        ready = threading.Event()
        self._portal_cm = start_blocking_portal()
        self.portal = self._portal_cm.__enter__()

        def on_ready(context: DaemonContext) -> None:
            self.context = context
            ready.set()

        services = default_services()  # before the start, as mfx serve has its services at hand
        self.started = time.perf_counter()
        self._future = self.portal.start_task_soon(lambda: run_daemon(
            self.config, services=services, on_ready=on_ready, handle_signals=False))
        while not ready.wait(0.01):
            if self._future.done():
                self._future.result()
        return self

    @property
    def store(self) -> Any:
        assert self.context is not None
        return self.context.store

    def __exit__(self, *exc: object) -> None:
        assert self.context is not None
        began = time.perf_counter()
        self.portal.call(self.context.shutdown.set)
        self._future.result(timeout=120)
        self.stopped_in = time.perf_counter() - began  # a graceful stop: every plugin stopped
        self._portal_cm.__exit__(None, None, None)


def store_offline(db: Path, objs: list[Obj]) -> None:
    async def write() -> None:
        async with SQLiteStore(db) as store:
            for obj in objs:
                await store.create(obj)
    anyio.run(write)
