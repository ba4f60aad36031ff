"""The work queue: client-go's de-duplicating, delaying, rate-limited queue on anyio.

Three sets make the guarantees (as in client-go):

- ``dirty``: keys that need processing. Adding a key that is already dirty does nothing, so
  a key queued twice is processed once, with whatever the object looks like then.
- ``processing``: keys a worker holds. A key re-added while held becomes dirty but is not
  queued; ``done`` queues it again, so no key is ever processed by two workers at once and
  no change is lost.
- ``waiting``: keys added with a delay (backoff, ``requeue_after``), earliest deadline kept.

Two lanes, as in controller-runtime's priority queue: keys added ``low`` (a relist's) are
handed out only when no other key is queued, so a daemon's first list of hundreds of objects
does not hold back the work events and finished tasks ask for meanwhile.

There is no background task: a worker waiting in ``get`` moves due delayed keys itself.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

import anyio

from observability.metrics import Metrics
from reconciler.clock import Clock, MonotonicClock
from reconciler.ratelimit import RateLimiter, default_rate_limiter

K = TypeVar("K", bound=Hashable)


class QueueShutDown(Exception):
    """Raised by ``WorkQueue.get`` once the queue is shut down and empty."""


class WorkQueue(Generic[K]):
    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.name = name
        self._clock = clock or MonotonicClock()
        self._limiter = rate_limiter or default_rate_limiter(clock=self._clock)
        self._metrics = metrics
        if metrics is not None:  # labelled children resolved once: they are hit on every key
            self._m_depth = metrics.workqueue_depth.labels(name)
            self._m_adds = metrics.workqueue_adds_total.labels(name)
            self._m_retries = metrics.workqueue_retries_total.labels(name)
            self._m_latency = metrics.workqueue_queue_duration_seconds.labels(name)
            self._m_work = metrics.workqueue_work_duration_seconds.labels(name)
        self._queue: deque[K] = deque()
        # Low-priority keys (a relist's): taken only when ``_queue`` is empty. A key added
        # again at normal priority moves to ``_queue``; its entry here goes stale.
        self._low: deque[K] = deque()
        self._low_keys: set[K] = set()  # the keys of ``_low`` (queued, not yet promoted)
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: list[tuple[float, int, K]] = []
        self._waiting_for: dict[K, float] = {}
        self._seq = itertools.count()
        self._added_at: dict[K, float] = {}
        self._started_at: dict[K, float] = {}
        self._changed: anyio.Event | None = None
        self._shutting_down = False

    # --- adding ---------------------------------------------------------------------------

    def add(self, key: K, *, low: bool = False) -> None:
        """Mark ``key`` as needing processing (a no-op if it already is, unless that was at
        low priority and this is not: then it moves up).

        ``low``: taken only once no other key is queued (client-go has one FIFO;
        controller-runtime's priority queue puts the initial list's keys last the same way),
        so the work events and finished tasks ask for is not queued behind a relist's.
        """
        if self._shutting_down:
            return
        if key in self._dirty:
            if not low and key in self._low_keys:
                self._low_keys.discard(key)
                self._queue.append(key)
                self._notify()
            return
        if self._metrics is not None:
            self._m_adds.inc()
        self._dirty.add(key)
        self._added_at[key] = self._clock.now()
        if key in self._processing:
            return  # ``done`` queues it again
        if low:
            self._low.append(key)
            self._low_keys.add(key)
        else:
            self._queue.append(key)
        self._set_depth()
        self._notify()

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` once ``delay`` seconds have passed (the earliest pending delay wins)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready_at = self._clock.now() + delay
        current = self._waiting_for.get(key)
        if current is not None and current <= ready_at:
            return
        self._waiting_for[key] = ready_at
        heapq.heappush(self._waiting, (ready_at, next(self._seq), key))
        self._notify()

    def add_rate_limited(self, key: K) -> float:
        """Add ``key`` after the rate limiter's delay (one more failure); returns the delay."""
        delay = self._limiter.when(key)
        if self._metrics is not None:
            self._m_retries.inc()
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """The key succeeded: its next failure backs off from the base delay again."""
        self._limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self._limiter.num_requeues(key)

    def cancel_delayed(self, key: K) -> None:
        """Drop a pending delayed add of ``key`` (e.g. the object is gone)."""
        self._waiting_for.pop(key, None)  # its heap entry becomes stale and is skipped

    # --- taking ---------------------------------------------------------------------------

    async def get(self) -> K:
        """Wait for a key and hold it until ``done(key)``; raises ``QueueShutDown``."""
        while True:
            self._promote_due()
            key = self._next()
            if key is not None:
                self._set_depth()
                self._processing.add(key)
                self._dirty.discard(key)
                now = self._clock.now()
                added = self._added_at.pop(key, now)
                self._started_at[key] = now
                if self._metrics is not None:
                    self._m_latency.observe(max(0.0, now - added))
                return key
            if self._shutting_down:
                raise QueueShutDown(self.name)
            if self._changed is None:
                self._changed = anyio.Event()
            deadline = self._next_deadline()
            await self._clock.wait_until(deadline, self._changed)

    def _next(self) -> K | None:
        if self._queue:
            return self._queue.popleft()
        while self._low:
            key = self._low.popleft()
            if key in self._low_keys:  # else promoted: taken from ``_queue`` already
                self._low_keys.discard(key)
                return key
        return None

    def done(self, key: K) -> None:
        """Release ``key``; if it was re-added meanwhile, it is queued again now."""
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if started is not None and self._metrics is not None:
            self._m_work.observe(max(0.0, self._clock.now() - started))
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)  # re-added while held: normal priority, whatever it was
            self._set_depth()
            self._notify()

    def shutdown(self) -> None:
        """Stop accepting keys; waiting ``get`` calls raise ``QueueShutDown``."""
        self._shutting_down = True
        self._queue.clear()
        self._low.clear()
        self._low_keys.clear()
        self._dirty.clear()
        self._waiting.clear()
        self._waiting_for.clear()
        self._set_depth()
        self._notify()

    # --- inspection -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue) + len(self._low_keys)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def is_processing(self, key: K) -> bool:
        return key in self._processing

    def is_dirty(self, key: K) -> bool:
        return key in self._dirty

    def delayed_until(self, key: K) -> float | None:
        """When a delayed add of ``key`` is due (clock time), or None."""
        return self._waiting_for.get(key)

    def is_idle(self) -> bool:
        """Nothing queued, held or delayed."""
        return not len(self) and not self._processing and not self._waiting_for

    # --- internals --------------------------------------------------------------------------

    def _promote_due(self) -> None:
        now = self._clock.now()
        while self._waiting and self._waiting[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._waiting)
            if self._waiting_for.get(key) == ready_at:
                del self._waiting_for[key]
                self.add(key)

    def _next_deadline(self) -> float:
        while self._waiting and self._waiting_for.get(self._waiting[0][2]) != self._waiting[0][0]:
            heapq.heappop(self._waiting)  # stale: superseded by an earlier add or cancelled
        return self._waiting[0][0] if self._waiting else math.inf

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _set_depth(self) -> None:
        if self._metrics is not None:
            self._m_depth.set(len(self))
