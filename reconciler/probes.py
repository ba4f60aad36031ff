"""Health probes: each object's probe runs on its own interval, with a timeout, in the
scheduler's task group, so a slow or hung probe never holds a reconcile worker.

``check(key)`` runs the probe once on demand (safe to call from many tasks at once); the
periodic loop calls it every ``interval``. After ``failure_threshold`` consecutive failures
the object is unhealthy; the ``on_result`` callback sees every result and whether health
flipped, which is where a controller enqueues its key.

A probe given a quick form as well (``schedule(..., quick=...)``) has no task of its own: its
periodic checks run in rounds with the other quick probes due at about the same time
(``reconciler.probe_rounds``). One that times out there leaves the rounds for a task of its own.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
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
from reconciler.probe_rounds import (
    ROUND_SLACK_SECONDS,
    QuickOutcome,
    QuickProbeFn,
    round_slack,
    run_quick,
)

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
    def __init__(self, probe: ProbeFn, spec: ProbeSpec, quick: QuickProbeFn | None = None) -> None:
        self.probe = probe
        self.spec = spec
        self.quick = quick  # None: the periodic probe runs in a task of its own
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
        # The quick targets' next rounds: (due, tiebreak, key, target); entries of targets
        # unscheduled or replaced since are dropped when they come up.
        self._due: list[tuple[float, int, ObjectKey, _Target]] = []
        self._order = itertools.count()
        self._rounds_wake: anyio.Event | None = None  # set while the rounds task runs

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        try:
            return await super().__aexit__(exc_type, exc, tb)
        finally:
            # A stopped scheduler probes nothing: a later `async with` starts from no targets.
            self._targets.clear()
            self._due.clear()
            self._rounds_wake = None

    def schedule(self, key: ObjectKey, probe: ProbeFn, spec: ProbeSpec, *, quick: QuickProbeFn | None = None,
                 periodic: bool = True, delay_first: bool = False) -> None:
        """Probe ``key`` with ``probe`` every ``spec.interval`` (replacing an earlier schedule).

        The first probe runs at once, or after one interval with ``delay_first`` (for a caller
        that has just checked health itself, e.g. right after a start). ``quick``, the same
        check as a synchronous call that returns at once, makes the periodic probes run in
        rounds (``check`` still runs ``probe``).
        """
        tg = self.task_group()
        old = self._targets.get(key)
        target = _Target(probe, spec, quick)
        if old is not None:
            old.scope.cancel()
            target.last, target.failures, target.healthy = old.last, old.failures, old.healthy
        self._targets[key] = target
        if not periodic:
            return
        if quick is None:
            tg.start_soon(self._loop, key, target, delay_first, name=f"probe:{key}")
            return
        self._queue_round(key, target, self._clock.now() + (spec.interval if delay_first else 0.0))
        if self._rounds_wake is None:
            self._rounds_wake = anyio.Event()
            tg.start_soon(self._rounds, name="probe rounds")
        else:
            self._rounds_wake.set()

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

    # --- quick probes, in rounds -------------------------------------------------------------------

    def _queue_round(self, key: ObjectKey, target: _Target, due: float) -> None:
        heapq.heappush(self._due, (due, next(self._order), key, target))

    async def _rounds(self) -> None:
        while True:
            wake = self._rounds_wake = anyio.Event()
            await self._clock.wait_until(self._due[0][0] if self._due else math.inf, wake)
            now = self._clock.now()
            due = self._take_due(now)
            if due:
                outcomes = await run_quick([quick for _, _, quick in due], [t.spec.timeout for _, t, _ in due])
                for (key, target, _), outcome in zip(due, outcomes, strict=True):
                    self._after_round(key, target, outcome, now)

    def _take_due(self, now: float) -> list[tuple[ObjectKey, _Target, QuickProbeFn]]:
        """The current quick targets due by ``now`` or within their slack of it."""
        due: list[tuple[ObjectKey, _Target, QuickProbeFn]] = []
        later: list[tuple[float, int, ObjectKey, _Target]] = []
        while self._due and self._due[0][0] <= now + ROUND_SLACK_SECONDS:
            entry = heapq.heappop(self._due)
            _, _, key, target = entry
            quick = target.quick
            if self._targets.get(key) is not target or quick is None:
                continue
            if entry[0] <= now + round_slack(target.spec.interval):
                due.append((key, target, quick))
            else:
                later.append(entry)
        for entry in later:
            heapq.heappush(self._due, entry)
        return due

    def _after_round(self, key: ObjectKey, target: _Target, outcome: QuickOutcome, round_at: float) -> None:
        if self._targets.get(key) is not target:
            return  # unscheduled (or scheduled anew) while the round ran
        tg = self.task_group()
        if not outcome.ran:  # busy: this once, the ordinary probe waits for the plugin
            tg.start_soon(self._probe_then_queue, key, target, round_at, name=f"probe:{key}")
            return
        self._record(key, target, ProbeResult(outcome.error is None, outcome.duration, self._clock.now(),
                                              outcome.error, outcome.timed_out))
        if outcome.timed_out:
            # Its thread is still held by the call: from now on it is probed in a task of its
            # own, so it can never hold up a round again.
            target.quick = None
            self._log.warning("%s: health probe hung in a round; probing it on its own from now on", key)
            tg.start_soon(self._loop, key, target, True, name=f"probe:{key}")
            return
        self._queue_round(key, target, round_at + target.spec.interval)

    async def _probe_then_queue(self, key: ObjectKey, target: _Target, round_at: float) -> None:
        # Not in ``target.scope``, which only a task of its own may enter (once): an unschedule
        # meanwhile lets this one probe end within its timeout, and nothing is queued after it.
        await self._run_once(key, target)
        if self._targets.get(key) is target and self._rounds_wake is not None:
            self._queue_round(key, target, round_at + target.spec.interval)
            self._rounds_wake.set()

    # --- one probe ------------------------------------------------------------------------------------

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
