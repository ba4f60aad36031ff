"""The condition a circuit breaker asks for: none while closed, FailureRatioExceeded while
open, HalfOpen while probing; its words stay the same while the state does (a status written
again changes nothing)."""

from __future__ import annotations

from reconciler import BreakerSettings, CircuitBreaker, FakeClock

SETTINGS = BreakerSettings(failure_ratio=0.5, minimum_requests=2, open_duration=30, half_open_probes=1, window=60)


def test_the_condition_follows_the_state_and_holds_still_within_one() -> None:
    clock = FakeClock()
    b = CircuitBreaker("p", SETTINGS, clock=clock)
    assert b.condition() is None
    for _ in range(2):
        b.acquire()
        b.record_failure()
    opened = b.condition()
    assert opened is not None and opened[0] == "FailureRatioExceeded" and "fail fast for 30 s" in opened[1]
    clock.advance(10)
    assert b.condition() == opened
    clock.advance(20)
    assert b.condition() is not None and b.condition()[0] == "HalfOpen"  # type: ignore[index]
    b.acquire()
    b.record_success()
    assert b.condition() is None
