"""The threads of the webassembly runtime: the epoch ticker behind every call deadline,
and each plugin's own thread, on which its blocking wasmtime calls run.

A plugin gets a daemon thread of its own rather than anyio's shared worker pool, whose
default limiter ``/metrics`` and the API need too: a slow or stuck plugin only ever holds
its own thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import wasmtime

T = TypeVar("T")


class EpochTicker:
    """A thread that advances the engine epoch: the clock behind every call deadline.

    A thread rather than an async task, so deadlines hold even when a call runs on the
    event-loop thread (inline calls) or the loop is busy."""

    def __init__(self, engine: wasmtime.Engine, tick_seconds: float) -> None:
        self._engine = engine
        self._tick = tick_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mfx-wasm-epoch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            self._engine.increment_epoch()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class PluginThread:
    """One plugin's own thread: runs its wasmtime calls one at a time.

    A daemon thread, so one stuck in a host call for an hour never holds up the daemon's
    exit; its results reach the event loop through the runtime's portal."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"mfx-wasm:{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def close(self) -> None:
        """The thread ends after the job it runs now, if any."""
        self._jobs.put(None)

    async def run(self, portal: anyio.from_thread.BlockingPortal, budget: float,
                  fn: Callable[..., T], *args: Any) -> tuple[bool, T | None]:
        """``(True, fn(*args))`` run on this thread, or ``(False, None)`` when it has not
        returned within ``budget`` seconds. ``fn``'s exceptions are raised here. The caller's
        own cancellation waits for the job (at most ``budget``): a store must never be left
        running in a job nobody waits for without being given up."""
        done = anyio.Event()
        outcome: list[tuple[bool, Any]] = []

        def job() -> None:
            try:
                outcome.append((True, fn(*args)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
                outcome.append((False, exc))
            try:
                portal.start_task_soon(done.set)
            except RuntimeError:
                pass  # the runtime has ended: nobody waits any more

        self._jobs.put(job)
        with anyio.CancelScope(shield=True), anyio.move_on_after(budget):
            await done.wait()
        if not outcome:
            return False, None
        ok, value = outcome[0]
        if not ok:
            raise value
        return True, value
