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

import enum
import queue
import threading
import time
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
        self._running: tuple[str, float] | None = None  # (what, since): set by the thread
        self._thread = threading.Thread(target=self._run, name=f"mfx-{kind}:{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.take():
                self._running = (job.what, time.monotonic())
                job()
                self._running = None

    def close(self) -> None:
        """The thread ends after the job it runs now, if any."""
        self._jobs.put(None)

    async def run(self, budget: float, hold_seconds: float, fn: Callable[..., T],
                  *args: Any, shield: bool = True, what: str = "", keep: bool = False) -> tuple[bool, T | None]:
        """``(True, fn(*args))`` run on this thread, or ``(False, None)`` when it has not
        returned within ``budget`` seconds. ``fn``'s exceptions are raised here.

        With ``shield`` the caller's own cancellation waits for the job (at most ``budget``):
        a store must never be left running in a job nobody waits for without being given up.
        Without it, a cancelled caller stops waiting at once and the job is left to the
        thread (C code cannot be interrupted either way). A job given up before the thread
        took it is never run: a call that comes back as timed out must not happen later;
        unless ``keep``: then it runs whenever the thread gets to it (a clean-up that must
        happen once the call before it returns). ``what`` names the call to ``busy_with``."""
        job = _Job(fn, args, what)
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
                try:
                    with anyio.CancelScope(shield=shield), anyio.move_on_after(budget - hold):
                        await done.wait()
                finally:
                    if not keep:
                        job.give_up()  # not taken by now (timed out, cancelled): never run
        outcome = job.outcome
        if outcome is None:
            return False, None
        ok, value = outcome
        if not ok:
            raise value
        return True, value

    def busy_with(self) -> tuple[str, float] | None:
        """The call this thread runs now and for how many seconds it has (None: none)."""
        running = self._running
        return None if running is None else (running[0], time.monotonic() - running[1])


class _JobState(enum.Enum):
    QUEUED = "queued"
    TAKEN = "taken"  # running or done
    GIVEN_UP = "given up"  # by its caller, before the thread took it


class _Job:
    """One call handed to a plugin's thread, and how its outcome comes back.

    ``finished`` is held from creation until the outcome is in, so the caller can wait
    for it on its own thread; ``notify``, set by a caller that stopped waiting that way,
    is how the thread tells the event loop instead."""

    __slots__ = ("_args", "_fn", "_guard", "_state", "finished", "notify", "outcome", "what")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], what: str) -> None:
        self._fn = fn
        self._args = args
        self.what = what
        self.finished = threading.Lock()
        self.finished.acquire()
        self._guard = threading.Lock()
        self.outcome: tuple[bool, Any] | None = None
        self.notify: Callable[[], None] | None = None
        self._state = _JobState.QUEUED

    def take(self) -> bool:
        """The thread's claim on the job before it runs it: False when the caller gave it up."""
        with self._guard:
            if self._state is _JobState.GIVEN_UP:
                return False
            self._state = _JobState.TAKEN
            return True

    def give_up(self) -> None:
        """The caller stops waiting: a job not taken yet is never run."""
        with self._guard:
            if self._state is _JobState.QUEUED:
                self._state = _JobState.GIVEN_UP

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
