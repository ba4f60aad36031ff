"""The circuit breaker opens on a failure ratio over a sliding window once enough requests were
seen, fails fast while open, lets a few probes through half-open, and reports its state."""

from __future__ import annotations

import pytest

from mfx.errors import CircuitOpenError, PluginTimeoutError
from observability.metrics import Metrics
from reconciler import BreakerSettings, BreakerState, CircuitBreaker, FakeClock

pytestmark = pytest.mark.anyio

SETTINGS = BreakerSettings(failure_ratio=0.5, minimum_requests=4, open_duration=30, half_open_probes=2, window=60)


def calls(breaker: CircuitBreaker, outcomes: str) -> None:
    for outcome in outcomes:
        breaker.acquire()
        (breaker.record_success if outcome == "s" else breaker.record_failure)()


def test_it_stays_closed_below_the_minimum_number_of_requests() -> None:
    b = CircuitBreaker("p", SETTINGS, clock=FakeClock())
    calls(b, "fff")
    assert b.state is BreakerState.CLOSED


def test_it_opens_at_the_failure_ratio_and_fails_fast() -> None:
    b = CircuitBreaker("p", SETTINGS, clock=FakeClock())
    calls(b, "ssf")
    assert b.state is BreakerState.CLOSED
    calls(b, "f")  # 2 of 4 = 0.5
    assert b.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as err:
        b.acquire()
    assert err.value.reason == "CircuitOpen" and "resume in 30.0 s" in str(err.value)


def test_old_outcomes_leave_the_sliding_window() -> None:
    clock = FakeClock()
    b = CircuitBreaker("p", SETTINGS, clock=clock)
    calls(b, "fff")
    clock.advance(61)
    calls(b, "ss")
    calls(b, "f")  # window now holds s, s, f: below the minimum
    assert b.state is BreakerState.CLOSED
    assert b.failure_ratio() == pytest.approx(1 / 3)


def test_half_open_probes_close_it_again_on_success() -> None:
    clock = FakeClock()
    b = CircuitBreaker("p", SETTINGS, clock=clock)
    calls(b, "ffff")
    clock.advance(29.9)
    assert b.state is BreakerState.OPEN
    clock.advance(0.1)
    assert b.state is BreakerState.HALF_OPEN
    b.acquire()
    b.acquire()
    with pytest.raises(CircuitOpenError):
        b.acquire()  # only two probes at a time
    b.record_success()
    assert b.state is BreakerState.HALF_OPEN
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert b.failure_ratio() == 0.0


def test_a_failed_probe_opens_it_for_another_open_duration() -> None:
    clock = FakeClock()
    b = CircuitBreaker("p", SETTINGS, clock=clock)
    calls(b, "ffff")
    clock.advance(30)
    b.acquire()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert b.retry_after() == pytest.approx(30)


async def test_guard_records_outcomes_and_state_changes_feed_the_metric() -> None:
    clock = FakeClock()
    metrics = Metrics()
    gauge = metrics.plugin_circuit_breaker_state

    def on_change(name: str, old: BreakerState, new: BreakerState) -> None:
        gauge.labels(name).set(new.metric_value)
        seen.append((old, new))

    seen: list[tuple[BreakerState, BreakerState]] = []
    b = CircuitBreaker("codec", SETTINGS, clock=clock, on_state_change=on_change)

    async def fails() -> None:
        raise PluginTimeoutError("no answer in 5 s")

    async def works() -> str:
        return "ok"

    for _ in range(4):
        with pytest.raises(PluginTimeoutError):
            await b.call(fails)
    value = metrics.registry.get_sample_value("mfx_plugin_circuit_breaker_state", {"name": "codec"})
    assert value == 2
    with pytest.raises(CircuitOpenError):
        await b.call(works)
    clock.advance(30)
    assert await b.call(works) == "ok"
    assert await b.call(works) == "ok"
    assert seen == [(BreakerState.CLOSED, BreakerState.OPEN), (BreakerState.OPEN, BreakerState.HALF_OPEN),
                    (BreakerState.HALF_OPEN, BreakerState.CLOSED)]
    assert [s.metric_value for s in BreakerState] == [0, 1, 2]


def test_settings_are_validated_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="failureRatio"):
        BreakerSettings(failure_ratio=0)
    with pytest.raises(ValueError, match="halfOpenProbes"):
        BreakerSettings(half_open_probes=0)
