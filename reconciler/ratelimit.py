"""Rate limiters for re-queued keys, as in client-go's workqueue.

The default is controller-runtime's: the larger of a per-key exponential backoff (5 ms
doubling to 1000 s, reset by ``forget``) and a global token bucket (10 qps, burst 100) that
keeps a storm of failing keys from hammering the plugins all at once.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from mfx.backoff import exponential_delay
from reconciler.clock import Clock, MonotonicClock

# controller-runtime's per-key backoff: 5 ms doubling to 1000 s.
DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0


class RateLimiter(Protocol):
    def when(self, key: Hashable) -> float:
        """Seconds to wait before ``key`` may be processed again (and count one failure)."""
        ...

    def forget(self, key: Hashable) -> None:
        """Stop tracking ``key`` (it succeeded): its next failure starts from the base delay."""
        ...

    def num_requeues(self, key: Hashable) -> int: ...


class ItemExponentialFailureRateLimiter:
    """``base * 2**failures``, capped at ``max_delay``, per key."""

    def __init__(self, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError(f"need 0 < base_delay <= max_delay, got {base_delay} and {max_delay}")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return exponential_delay(failures + 1, self.base_delay, self.max_delay)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter:
    """A global token bucket: each ``when`` reserves one token, waiting if none is left."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock | None = None) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"need qps > 0 and burst >= 1, got qps={qps} burst={burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock or MonotonicClock()
        self._tokens = float(burst)
        self._last = self._clock.now()

    def when(self, key: Hashable) -> float:
        now = self._clock.now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0  # a reservation: tokens go negative and later callers wait longer
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: Hashable) -> None:
        pass

    def num_requeues(self, key: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay any of the limiters asks for."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters = limiters

    def when(self, key: Hashable) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_rate_limiter(
    *,
    clock: Clock | None = None,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    qps: float = 10.0,
    burst: int = 100,
) -> MaxOfRateLimiter:
    """controller-runtime's default: per-key exponential backoff under a global bucket."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base_delay, max_delay),
        BucketRateLimiter(qps, burst, clock),
    )
