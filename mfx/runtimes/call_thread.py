"""A plugin's own thread for its blocking calls, and how the event loop waits for them.

The webassembly and C runtimes give each plugin a daemon thread of its own rather than
anyio's shared worker pool, whose default limiter ``/metrics`` and the API need too: a slow
or stuck plugin only ever holds its own thread. And most calls (a health check, a wasm call,
a C ``configure``) end within microseconds: the caller waits for them on its own thread for
a couple of milliseconds at most and takes the result there, skipping the event loop's round
trip (worker queue, the loop's wake-up), which costs more than such a call. A call still
running then is waited for on the loop, so no plugin holds the loop longer than that.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

T = TypeVar("T")

HOLD_LOOP_SECONDS = 0.002  # the longest the event-loop thread waits for a call on its own thread


class PluginThread:
    """One plugin's own thread: runs its blocking calls one at a time.

    A daemon thread, so one stuck in a host call for an hour never holds up the daemon's
    exit. The caller first waits for a job on its own thread, for at most ``hold_seconds``:
    most calls end well within that, and their result is then taken without a round trip
    through the event loop (a wake-up of the loop and an event cost about as much again as a
    small call). A job still running then is waited for on the event loop, the thread waking
    it when the job ends: the loop is never held longer than ``hold_seconds``, whatever the
    plugin does."""

    def __init__(self, name: str, kind: str) -> None:
        """``kind`` (the runtime: wasm, clib) and ``name`` name the thread: mfx-KIND:NAME."""
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"mfx-{kind}:{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def close(self) -> None:
        """The thread ends after the job it runs now, if any."""
        self._jobs.put(None)

    async def run(self, budget: float, hold_seconds: float, fn: Callable[..., T],
                  *args: Any) -> tuple[bool, T | None]:
        """``(True, fn(*args))`` run on this thread, or ``(False, None)`` when it has not
        returned within ``budget`` seconds. ``fn``'s exceptions are raised here. The caller's
        own cancellation waits for the job (at most ``budget``): a store must never be left
        running in a job nobody waits for without being given up."""
        job = _Job(fn, args)
        hold = max(0.0, min(hold_seconds, budget))
        # Nothing between the hand-off and the wait: the thread starts the job without
        # first waiting for this one to let go of the GIL.
        self._jobs.put(job)
        if not job.finished.acquire(timeout=hold):
            done = anyio.Event()
            # The loop's token rather than a portal: a portal is a task group, which must be
            # left by the task that entered it, and runtimes are entered and left by others.
            token = anyio.lowlevel.current_token()

            def notify() -> None:
                try:
                    token.backend_class.run_sync_soon(done.set, (), token.native_token)
                except RuntimeError:
                    pass  # the event loop has ended: nobody waits any more

            if job.on_finish(notify):
                with anyio.CancelScope(shield=True), anyio.move_on_after(budget - hold):
                    await done.wait()
        outcome = job.outcome
        if outcome is None:
            return False, None
        ok, value = outcome
        if not ok:
            raise value
        return True, value


class _Job:
    """One call handed to a plugin's thread, and how its outcome comes back.

    ``finished`` is held from creation until the outcome is in, so the caller can wait
    for it on its own thread; ``notify``, set by a caller that stopped waiting that way,
    is how the thread tells the event loop instead."""

    __slots__ = ("_args", "_fn", "_guard", "finished", "notify", "outcome")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._fn = fn
        self._args = args
        self.finished = threading.Lock()
        self.finished.acquire()
        self._guard = threading.Lock()
        self.outcome: tuple[bool, Any] | None = None
        self.notify: Callable[[], None] | None = None

    def __call__(self) -> None:
        try:
            outcome: tuple[bool, Any] = (True, self._fn(*self._args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
            outcome = (False, exc)
        with self._guard:
            self.outcome = outcome
            notify = self.notify
        self.finished.release()
        if notify is not None:
            notify()

    def on_finish(self, notify: Callable[[], None]) -> bool:
        """Have ``notify`` called when the job finishes; False when it already has."""
        with self._guard:
            if self.outcome is not None:
                return False
            self.notify = notify
            return True
