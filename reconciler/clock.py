"""Time as the engine sees it: a monotonic clock that tests can replace with fake time.

Everything in the engine that waits (delayed queue adds, rate limits, resync, timers,
circuit breakers) asks a ``Clock`` instead of the event loop, so a test can drive hours of
backoff in microseconds and read exact delays, the way kopf's tests use fake loop time.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def wait_until(self, deadline: float, wake: anyio.Event) -> None:
        """Return when ``wake`` is set or the clock reaches ``deadline`` (whichever first).

        Implementations may set ``wake`` themselves; callers treat it as a one-shot signal.
        """
        ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and anyio timeouts."""

    def now(self) -> float:
        return time.monotonic()

    async def wait_until(self, deadline: float, wake: anyio.Event) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        with anyio.move_on_after(remaining if math.isfinite(remaining) else math.inf):
            await wake.wait()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


class FakeClock:
    """Time that moves only when a test calls ``advance``; waiters wake in deadline order."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._counter = itertools.count()
        self._waiters: list[tuple[float, int, anyio.Event]] = []
        self._registered: anyio.Event | None = None

    def now(self) -> float:
        return self._now

    async def wait_until(self, deadline: float, wake: anyio.Event) -> None:
        if deadline <= self._now:
            return
        if math.isfinite(deadline):
            heapq.heappush(self._waiters, (deadline, next(self._counter), wake))
            if self._registered is not None:
                self._registered.set()
                self._registered = None
        await wake.wait()

    async def sleep(self, seconds: float) -> None:
        await self.wait_until(self._now + max(0.0, seconds), anyio.Event())

    def next_deadline(self) -> float | None:
        """The earliest deadline someone waits for (stale entries of woken waiters dropped)."""
        while self._waiters and self._waiters[0][2].is_set():
            heapq.heappop(self._waiters)
        return self._waiters[0][0] if self._waiters else None

    async def wait_for_sleeper(self, deadline: float) -> None:
        """Until someone waits for ``deadline`` or earlier (a test's cue to advance time)."""
        while True:
            pending = [d for d, _, wake in self._waiters if not wake.is_set()]
            if pending and min(pending) <= deadline:
                return
            if self._registered is None:
                self._registered = anyio.Event()
            await self._registered.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every waiter whose deadline has come."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, wake = heapq.heappop(self._waiters)
            wake.set()

    def advance_to_next(self) -> float:
        """Jump to the earliest pending deadline; return how far time moved (0 if none)."""
        deadline = self.next_deadline()
        if deadline is None:
            return 0.0
        step = max(0.0, deadline - self._now)
        self.advance(step)
        return step
