"""Health probes: each object's probe runs on its own interval, with a timeout, in the
scheduler's task group, so a slow or hung probe never holds a reconcile worker.

``check(key)`` runs the probe once on demand (safe to call from many tasks at once); the
periodic loop calls it every ``interval``. After ``failure_threshold`` consecutive failures
the object is unhealthy; the ``on_result`` callback sees every result and whether health
flipped, which is where a controller enqueues its key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

from mfx.api.objects import ObjectKey
from mfx.task_group import TaskGroupOwner
from observability.metrics import Metrics
from reconciler.clock import Clock, MonotonicClock

ProbeFn = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class ProbeSpec:
    interval: float = 10.0
    timeout: float = 2.0
    failure_threshold: int = 3

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.timeout <= 0 or self.failure_threshold < 1:
            raise ValueError(
                "healthCheck needs interval > 0, timeout > 0 and failureThreshold >= 1, got "
                f"interval={self.interval} timeout={self.timeout} failureThreshold={self.failure_threshold}")


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    duration: float  # seconds the probe took (real time)
    at: float  # clock time it finished
    error: str | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class ProbeStatus:
    key: ObjectKey
    last: ProbeResult
    consecutive_failures: int
    healthy: bool
    changed: bool  # health flipped with this result


ResultCallback = Callable[[ProbeStatus], None]


class _Target:
    def __init__(self, probe: ProbeFn, spec: ProbeSpec) -> None:
        self.probe = probe
        self.spec = spec
        self.scope = anyio.CancelScope()
        self.last: ProbeResult | None = None
        self.duration_metric: Any = None  # its labelled histogram, looked up on the first result
        self.failures = 0
        self.healthy = True


class ProbeScheduler(TaskGroupOwner):
    """Use as ``async with ProbeScheduler(on_result=...) as probes``."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        on_result: ResultCallback | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._clock = clock or MonotonicClock()
        self._metrics = metrics
        self._on_result = on_result
        self._log = logger or logging.getLogger("mfx.reconciler.probes")
        self._targets: dict[ObjectKey, _Target] = {}

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        try:
            return await super().__aexit__(exc_type, exc, tb)
        finally:
            # A stopped scheduler probes nothing: a later `async with` starts from no targets.
            self._targets.clear()

    def schedule(self, key: ObjectKey, probe: ProbeFn, spec: ProbeSpec, *, periodic: bool = True,
                 delay_first: bool = False) -> None:
        """Probe ``key`` with ``probe`` every ``spec.interval`` (replacing an earlier schedule).

        The first probe runs at once, or after one interval with ``delay_first`` (for a caller
        that has just checked health itself, e.g. right after a start).
        """
        tg = self.task_group()
        old = self._targets.get(key)
        target = _Target(probe, spec)
        if old is not None:
            old.scope.cancel()
            target.last, target.failures, target.healthy = old.last, old.failures, old.healthy
        self._targets[key] = target
        if periodic:
            tg.start_soon(self._loop, key, target, delay_first, name=f"probe:{key}")

    def unschedule(self, key: ObjectKey) -> None:
        target = self._targets.pop(key, None)
        if target is not None:
            target.scope.cancel()

    def scheduled(self) -> list[ObjectKey]:
        return sorted(self._targets)

    def status(self, key: ObjectKey) -> ProbeStatus | None:
        target = self._targets.get(key)
        if target is None or target.last is None:
            return None
        return ProbeStatus(key, target.last, target.failures, target.healthy, False)

    async def check(self, key: ObjectKey) -> ProbeResult:
        """Run ``key``'s probe once now, within its timeout; never raises for a probe failure."""
        target = self._targets.get(key)
        if target is None:
            raise KeyError(f"no probe scheduled for {key}")
        return await self._run_once(key, target)

    async def _loop(self, key: ObjectKey, target: _Target, delay_first: bool) -> None:
        with target.scope:
            if delay_first:
                await self._clock.sleep(target.spec.interval)
            while True:
                await self._run_once(key, target)
                await self._clock.sleep(target.spec.interval)

    async def _run_once(self, key: ObjectKey, target: _Target) -> ProbeResult:
        started = time.perf_counter()
        error: str | None = None
        timed_out = False
        with anyio.move_on_after(target.spec.timeout) as deadline:
            try:
                await target.probe()
            except Exception as exc:  # a failing probe is a result, not a crash of the scheduler
                error = f"{type(exc).__name__}: {exc}"
        if deadline.cancelled_caught:
            timed_out = True
            error = f"health probe did not answer within {target.spec.timeout:g} s"
        duration = time.perf_counter() - started
        result = ProbeResult(error is None, duration, self._clock.now(), error, timed_out)
        self._record(key, target, result)
        return result

    def _record(self, key: ObjectKey, target: _Target, result: ProbeResult) -> None:
        target.last = result
        target.failures = 0 if result.ok else target.failures + 1
        healthy = target.failures < target.spec.failure_threshold
        changed = healthy != target.healthy
        target.healthy = healthy
        if self._metrics is not None:
            if target.duration_metric is None:
                target.duration_metric = self._metrics.plugin_health_check_duration_seconds.labels(key.name)
            target.duration_metric.observe(result.duration)
            if not result.ok:
                self._metrics.plugin_health_check_failures_total.labels(key.name).inc()
        if self._on_result is not None and self._targets.get(key) is target:
            self._on_result(ProbeStatus(key, result, target.failures, healthy, changed))
