"""The seed's concurrency case: 100 concurrent callers x 1000 health checks each against one
probe target (through its circuit breaker, with a timeout per check, while the periodic probe
loop runs too), with no error and no task left behind once the scheduler is closed."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from mfx.api.objects import ObjectKey
from mfx.errors import PluginTimeoutError
from observability.metrics import Metrics
from reconciler import BreakerSettings, CircuitBreaker, ProbeScheduler, ProbeSpec, ProbeStatus

pytestmark = pytest.mark.anyio

CALLERS = 100
CHECKS = 1000


class ProbeTarget:
    """An in-process plugin's health endpoint: shared state touched by every call."""

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = anyio.Lock()

    async def health(self) -> str:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            async with self._lock:
                self.calls += 1
            await anyio.lowlevel.checkpoint()
            return "SERVING"
        finally:
            self.in_flight -= 1


async def test_100_callers_times_1000_health_checks_without_errors_or_leaked_tasks() -> None:
    before = set(asyncio.all_tasks())
    key = ObjectKey("PluginManifest", "stress")
    target = ProbeTarget()
    metrics = Metrics()
    breaker = CircuitBreaker(key.name, BreakerSettings(minimum_requests=10))
    results: list[ProbeStatus] = []
    failures: list[str] = []

    async def probe() -> str:
        return await breaker.call(target.health)

    async with ProbeScheduler(metrics=metrics, on_result=results.append) as probes:
        probes.schedule(key, probe, ProbeSpec(interval=0.01, timeout=5.0, failure_threshold=3))

        async def caller() -> None:
            for _ in range(CHECKS):
                result = await probes.check(key)
                if not result.ok:
                    failures.append(result.error or "?")

        async with anyio.create_task_group() as tg:
            for _ in range(CALLERS):
                tg.start_soon(caller)
        assert probes.status(key) is not None and probes.status(key).healthy  # type: ignore[union-attr]

    leaked = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert leaked == set(), f"tasks left behind: {leaked}"
    assert failures == []
    assert target.calls >= CALLERS * CHECKS  # plus the periodic loop's own probes
    assert target.max_in_flight > 1, "the callers really ran concurrently"
    count = metrics.registry.get_sample_value("mfx_plugin_health_check_duration_seconds_count", {"name": "stress"})
    # Every check that returned is measured. The periodic loop's probe in flight when the
    # scheduler closed may have been counted by the target and cut off before its measure.
    assert count is not None and target.calls - 1 <= count <= target.calls
    assert breaker.failure_ratio() == 0.0


async def test_a_hung_probe_times_out_without_holding_anyone_and_flips_health() -> None:
    before = set(asyncio.all_tasks())
    key = ObjectKey("PluginManifest", "hung")
    flips: list[bool] = []

    async def hangs() -> None:
        await anyio.sleep_forever()

    async def fails() -> None:
        raise PluginTimeoutError("health call timed out")

    def on_result(status: ProbeStatus) -> None:
        if status.changed:
            flips.append(status.healthy)

    async with ProbeScheduler(on_result=on_result) as probes:
        probes.schedule(key, hangs, ProbeSpec(interval=3600, timeout=0.01, failure_threshold=2), periodic=False)
        first = await probes.check(key)
        assert not first.ok and first.timed_out and "did not answer within 0.01 s" in (first.error or "")
        probes.schedule(key, fails, ProbeSpec(interval=3600, timeout=1, failure_threshold=2), periodic=False)
        second = await probes.check(key)
        assert not second.ok and "PluginTimeoutError" in (second.error or "")
        assert flips == [False], "unhealthy after failureThreshold consecutive failures"
        probes.unschedule(key)
        with pytest.raises(KeyError):
            await probes.check(key)
    assert {t for t in asyncio.all_tasks() - before if not t.done()} == set()
