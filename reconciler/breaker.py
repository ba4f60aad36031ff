"""A per-plugin circuit breaker: closed -> open -> half-open -> closed.

Closed: calls pass; outcomes are kept for ``window`` seconds. Once the window holds at
least ``minimum_requests`` outcomes and the failure ratio reaches ``failure_ratio`` the
breaker opens. Open: calls fail fast with ``CircuitOpenError`` for ``open_duration``.
Half-open: up to ``half_open_probes`` calls pass; all of them succeeding closes the breaker,
any failure opens it again.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from mfx.errors import CircuitOpenError
from reconciler.clock import Clock, MonotonicClock

T = TypeVar("T")


class BreakerState(enum.Enum):
    CLOSED = "closed"
    HALF_OPEN = "half-open"
    OPEN = "open"

    @property
    def metric_value(self) -> int:
        """The value of ``mfx_plugin_circuit_breaker_state``: 0 closed, 1 half-open, 2 open."""
        return {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}[self]


@dataclass(frozen=True)
class BreakerSettings:
    failure_ratio: float = 0.5
    minimum_requests: int = 10
    open_duration: float = 30.0
    half_open_probes: int = 3
    window: float = 60.0  # seconds of outcomes the ratio is computed over

    def __post_init__(self) -> None:
        if not 0.0 < self.failure_ratio <= 1.0:
            raise ValueError(f"circuitBreaker.failureRatio must be in (0, 1], got {self.failure_ratio}")
        if self.minimum_requests < 1:
            raise ValueError(f"circuitBreaker.minimumRequests must be >= 1, got {self.minimum_requests}")
        if self.open_duration <= 0:
            raise ValueError(f"circuitBreaker.openDuration must be > 0, got {self.open_duration}")
        if self.half_open_probes < 1:
            raise ValueError(f"circuitBreaker.halfOpenProbes must be >= 1, got {self.half_open_probes}")
        if self.window <= 0:
            raise ValueError(f"circuit breaker window must be > 0 seconds, got {self.window}")


StateListener = Callable[[str, BreakerState, BreakerState], None]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        settings: BreakerSettings | None = None,
        *,
        clock: Clock | None = None,
        on_state_change: StateListener | None = None,
    ) -> None:
        self.name = name
        self.settings = settings or BreakerSettings()
        self._clock = clock or MonotonicClock()
        self._listener = on_state_change
        self._state = BreakerState.CLOSED
        self._outcomes: deque[tuple[float, bool]] = deque()  # (time, failed)
        self._failures = 0
        self._opened_at = 0.0
        self._probes_in_flight = 0
        self._probe_successes = 0

    # --- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock.now() - self._opened_at >= self.settings.open_duration:
            self._transition(BreakerState.HALF_OPEN)
        return self._state

    def failure_ratio(self) -> float:
        self._expire()
        return self._failures / len(self._outcomes) if self._outcomes else 0.0

    def condition(self) -> tuple[str, str] | None:
        """Reason and message of a ``CircuitOpen=True`` condition; None while closed. Both stay
        the same for as long as the state does (a status written again changes nothing)."""
        s = self.settings
        state = self.state
        if state is BreakerState.OPEN:
            return ("FailureRatioExceeded",
                    f"at least {s.failure_ratio:.0%} of {s.minimum_requests} or more calls in {s.window:g} s "
                    f"failed: calls fail fast for {s.open_duration:g} s, then {s.half_open_probes} probe "
                    "calls decide")
        if state is BreakerState.HALF_OPEN:
            return ("HalfOpen", f"{s.half_open_probes} probe calls decide: all succeed and it closes, "
                                "one fails and it opens again")
        return None

    def retry_after(self) -> float:
        """Seconds until an open breaker lets probes through (0 unless open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.settings.open_duration - self._clock.now())

    # --- calls ----------------------------------------------------------------------------------

    def acquire(self) -> None:
        """Ask to make a call; raises ``CircuitOpenError`` when it must fail fast.

        Every successful ``acquire`` must be followed by ``record_success`` or ``record_failure``.
        """
        state = self.state
        if state is BreakerState.OPEN:
            raise CircuitOpenError(
                f"circuit breaker of {self.name} is open after a failure ratio of "
                f"{self.failure_ratio():.0%}; calls resume in {self.retry_after():.1f} s")
        if state is BreakerState.HALF_OPEN:
            if self._probes_in_flight + self._probe_successes >= self.settings.half_open_probes:
                raise CircuitOpenError(
                    f"circuit breaker of {self.name} is half-open and its "
                    f"{self.settings.half_open_probes} probe calls are taken; try again shortly")
            self._probes_in_flight += 1

    def record_success(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
            self._probe_successes += 1
            if self._probe_successes >= self.settings.half_open_probes:
                self._transition(BreakerState.CLOSED)
            return
        if self._state is BreakerState.CLOSED:
            self._record(failed=False)

    def record_failure(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        if self._state is BreakerState.CLOSED:
            self._record(failed=True)
            if (len(self._outcomes) >= self.settings.minimum_requests
                    and self._failures / len(self._outcomes) >= self.settings.failure_ratio):
                self._open()

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` through the breaker (a cancellation counts as neither outcome)."""
        async with self.guard():
            return await fn()

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        self.acquire()
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, Exception):
                self.record_failure()
            else:
                self._release_probe()
            raise
        else:
            self.record_success()

    def reset(self) -> None:
        """Close the breaker and forget the window (an operator's reset)."""
        self._transition(BreakerState.CLOSED)

    # --- internals --------------------------------------------------------------------------------

    def _release_probe(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)

    def _record(self, *, failed: bool) -> None:
        self._outcomes.append((self._clock.now(), failed))
        self._failures += failed
        self._expire()

    def _expire(self) -> None:
        horizon = self._clock.now() - self.settings.window
        while self._outcomes and self._outcomes[0][0] <= horizon:
            _, failed = self._outcomes.popleft()
            self._failures -= failed

    def _open(self) -> None:
        self._opened_at = self._clock.now()
        self._transition(BreakerState.OPEN)

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        if new is BreakerState.OPEN and old is BreakerState.OPEN:
            return
        self._state = new
        self._probes_in_flight = 0
        self._probe_successes = 0
        if new is BreakerState.CLOSED:
            self._outcomes.clear()
            self._failures = 0
        if old is not new and self._listener is not None:
            self._listener(self.name, old, new)
