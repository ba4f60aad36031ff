"""Blocking calls on worker threads of one owner, awaited with a single wake-up of the loop.

``anyio.to_thread.run_sync`` costs about 100 µs of CPU per call (a capacity limiter, a cancel
scope, its worker bookkeeping, all on the event loop). The hot paths that hop to a thread
for calls of a few microseconds (a Python plugin's health check or service call, a store
commit) paid more for the hop than for the call: a daemon starting 500 plugins makes
thousands. ``ThreadCalls`` hands a call to a thread of its own through a queue and awaits an
asyncio future the thread resolves: one ``call_soon_threadsafe`` back.

What it keeps of ``to_thread``: the caller's context variables are the call's; at most
``max_threads`` calls run at once (more wait in order, as behind a capacity limiter: with
one thread, calls run one at a time in the order made, even when their callers have gone).
A caller cancelled while its call runs leaves it to finish alone, as ``abandon_on_cancel``
does. Its threads are daemon threads, so a call stuck in a plugin forever never holds up
the process's exit; they are made as calls need them and end when the owner ``close``s the pool.
A pool of calls into plugins is ``abandonable``: see ``ThreadCalls.__init__``.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _State(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    LEFT_QUEUED = "left before it ran"  # never made
    LEFT_RUNNING = "left while it ran"  # its thread does not count against max_threads
    DONE = "done"


class _Call:
    __slots__ = ("args", "context", "fn", "future", "loop", "state")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], future: asyncio.Future[Any],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.context = contextvars.copy_context()
        self.fn = fn
        self.args = args
        self.future = future
        self.loop = loop
        self.state = _State.QUEUED


class ThreadCalls:
    """A pool of worker threads for one owner's blocking calls (``await calls.run(fn, *args)``)."""

    def __init__(self, name: str, max_threads: int = 40, *, abandonable: bool = False) -> None:
        """``name`` names the threads (mfx-NAME-N); ``max_threads`` bounds the calls run at once.

        ``abandonable`` is for calls into plugins, which may never return: a call whose
        caller has left is never made if it has not started, and one that runs on no longer
        counts against ``max_threads``, so one plugin stuck in its calls cannot take the pool
        from all the others. (Without it, as a store needs, every call handed over is made in
        turn, and ``max_threads`` always holds.)"""
        if max_threads < 1:
            raise ValueError(f"max_threads must be 1 or more, got {max_threads}")
        self._name = name
        self._max = max_threads
        self._abandonable = abandonable
        self._jobs: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._busy = 0  # calls handed over and not finished: each has a thread once busy <= threads
        self._left = 0  # calls running whose callers have left (abandonable pools only)
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of the pool's threads; its exceptions are raised here.

        A caller cancelled meanwhile leaves the call to finish alone (threads cannot be
        interrupted); one that must see it end awaits this in a shielded cancel scope."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call = _Call(fn, args, future, loop)
        self._submit(call)
        if not self._abandonable:
            return await future
        try:
            return await future
        except BaseException:
            self._leave(call)
            raise

    @property
    def stuck(self) -> int:
        """How many calls run on whose callers have left (0 unless ``abandonable``)."""
        return self._left

    def close(self) -> None:
        """The threads end once the calls handed over so far are done; later calls raise."""
        with self._lock:
            self._closed = True
            threads = self._threads
        for _ in range(threads):
            self._jobs.put(None)

    def _submit(self, call: _Call) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self._name} threads are closed")
            self._busy += 1
            number = self._claim_thread()
        self._jobs.put(call)
        if number is not None:
            self._start_thread(number)

    def _claim_thread(self) -> int | None:
        """Under the lock: the number of one more thread, when a call waits for one and the
        threads not stuck in a left call are fewer than ``max_threads``; else None."""
        if self._busy <= self._threads or self._threads - self._left >= self._max:
            return None
        self._threads += 1
        return self._threads

    def _start_thread(self, number: int) -> None:
        threading.Thread(target=self._work, name=f"mfx-{self._name}-{number}", daemon=True).start()

    def _leave(self, call: _Call) -> None:
        """The caller of ``call`` has gone (cancelled, or the call raised in it)."""
        with self._lock:
            if call.state is _State.QUEUED:
                call.state = _State.LEFT_QUEUED
                return
            if call.state is not _State.RUNNING:
                return
            call.state = _State.LEFT_RUNNING
            self._left += 1
            # Its thread may never come back: calls waiting for one get a thread of their own.
            number = None if self._closed else self._claim_thread()
        if number is not None:
            self._start_thread(number)

    def _work(self) -> None:
        while (call := self._jobs.get()) is not None:
            if self._abandonable:
                with self._lock:
                    if call.state is _State.LEFT_QUEUED:
                        self._busy -= 1
                        continue
                    call.state = _State.RUNNING
            try:
                outcome: tuple[bool, Any] = (True, call.context.run(call.fn, *call.args))
            except BaseException as exc:  # handed to the caller, as to_thread does
                outcome = (False, exc)
            finally:
                with self._lock:
                    self._busy -= 1
                    retire = False
                    if call.state is _State.LEFT_RUNNING:
                        self._left -= 1
                        # Back from a call given up for stuck: a thread more than the pool needs.
                        retire = self._threads - self._left > self._max
                        if retire:
                            self._threads -= 1
                    call.state = _State.DONE
            try:
                call.loop.call_soon_threadsafe(_resolve, call.future, outcome)
            except RuntimeError:
                pass  # the event loop has ended: nobody waits any more
            del call, outcome  # nothing of a finished call stays alive while the thread waits
            if retire:
                return


def _resolve(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # its caller was cancelled and left it (abandon_on_cancel)
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    elif isinstance(value, StopIteration):  # a future cannot carry one
        future.set_exception(RuntimeError(f"the call raised StopIteration: {value}"))
    else:
        future.set_exception(value)
