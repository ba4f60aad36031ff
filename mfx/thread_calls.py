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
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[contextvars.Context, Callable[..., Any], tuple[Any, ...], asyncio.Future[Any],
             asyncio.AbstractEventLoop]


class ThreadCalls:
    """A pool of worker threads for one owner's blocking calls (``await calls.run(fn, *args)``)."""

    def __init__(self, name: str, max_threads: int = 40) -> None:
        """``name`` names the threads (mfx-NAME-N); ``max_threads`` bounds the calls run at once."""
        if max_threads < 1:
            raise ValueError(f"max_threads must be 1 or more, got {max_threads}")
        self._name = name
        self._max = max_threads
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._busy = 0  # calls handed over and not finished: each has a thread once busy <= threads
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of the pool's threads; its exceptions are raised here.

        A caller cancelled meanwhile leaves the call to finish alone (threads cannot be
        interrupted); one that must see it end awaits this in a shielded cancel scope."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit((contextvars.copy_context(), fn, args, future, loop))
        return await future

    def close(self) -> None:
        """The threads end once the calls handed over so far are done; later calls raise."""
        with self._lock:
            self._closed = True
            threads = self._threads
        for _ in range(threads):
            self._jobs.put(None)

    def _submit(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self._name} threads are closed")
            self._busy += 1
            spawn = self._busy > self._threads and self._threads < self._max
            if spawn:
                self._threads += 1
                number = self._threads
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, name=f"mfx-{self._name}-{number}", daemon=True).start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            context, fn, args, future, loop = job
            try:
                outcome: tuple[bool, Any] = (True, context.run(fn, *args))
            except BaseException as exc:  # handed to the caller, as to_thread does
                outcome = (False, exc)
            finally:
                with self._lock:
                    self._busy -= 1
            try:
                loop.call_soon_threadsafe(_resolve, future, outcome)
            except RuntimeError:
                pass  # the event loop has ended: nobody waits any more
            del job, future, outcome  # nothing of a finished call stays alive while the thread waits


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
