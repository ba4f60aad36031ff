"""Quick probes in rounds: the probes due together run on one thread in one hand-off; a hung
one times out alone and leaves the rounds; a busy plugin is probed the ordinary way once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import anyio
import anyio.to_thread
import pytest

from mfx.api.objects import ObjectKey
from reconciler import FakeClock, ProbeScheduler, ProbeSpec, ProbeStatus

pytestmark = pytest.mark.anyio

SPEC = ProbeSpec(interval=10.0, timeout=2.0, failure_threshold=3)
HANGING = ProbeSpec(interval=10.0, timeout=0.2, failure_threshold=3)


class Plugin:
    """A plugin's two health checks: the ordinary (async) one and the quick one, counted."""

    def __init__(self, clock: FakeClock, quick: Callable[[], bool] | None = None) -> None:
        self.clock = clock
        self.ordinary = 0
        self.quick_calls: list[tuple[int, float]] = []  # (thread, clock time) of each quick check
        self._quick = quick

    async def health(self) -> None:
        self.ordinary += 1

    def quick(self) -> bool:
        self.quick_calls.append((threading.get_ident(), self.clock.now()))
        return self._quick() if self._quick is not None else True


class Results:
    """Every probe result, and a wait for the n-th."""

    def __init__(self) -> None:
        self.seen: list[ProbeStatus] = []
        self._changed = anyio.Event()

    def __call__(self, status: ProbeStatus) -> None:
        self.seen.append(status)
        self._changed.set()

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(30):  # a guard against a hang, not a timing
            while len(self.seen) < count:
                self._changed = anyio.Event()
                await self._changed.wait()

    def of(self, name: str) -> list[ProbeStatus]:
        return [s for s in self.seen if s.key.name == name]


def key(name: str) -> ObjectKey:
    return ObjectKey("PluginManifest", name)


async def test_quick_probes_due_together_run_in_one_round_on_one_thread_without_the_ordinary_probe() -> None:
    clock = FakeClock()
    results = Results()
    plugins = {f"p{i}": Plugin(clock) for i in range(50)}
    async with ProbeScheduler(clock=clock, on_result=results) as probes:
        for name, plugin in plugins.items():
            probes.schedule(key(name), plugin.health, SPEC, quick=plugin.quick)
        await results.wait_for(50)
        await clock.wait_for_sleeper(clock.now() + SPEC.interval)
        clock.advance(SPEC.interval)
        await results.wait_for(100)
    calls = [call for plugin in plugins.values() for call in plugin.quick_calls]
    assert len(calls) == 100
    first = [thread for thread, at in calls if at == 1000.0]
    second = [thread for thread, at in calls if at == 1000.0 + SPEC.interval]
    assert len(first) == len(second) == 50
    # each round: one thread for all its 50 probes (one hand-off), not one each
    assert len(set(first)) == 1 and len(set(second)) == 1
    assert all(plugin.ordinary == 0 for plugin in plugins.values())
    assert all(s.last.ok and s.healthy for s in results.seen)


async def test_a_probe_due_a_little_later_joins_the_round_and_one_due_much_later_does_not() -> None:
    clock = FakeClock()
    results = Results()
    early, near, far = Plugin(clock), Plugin(clock), Plugin(clock)
    async with ProbeScheduler(clock=clock, on_result=results) as probes:
        probes.schedule(key("early"), early.health, SPEC, quick=early.quick, delay_first=True)
        clock.advance(0.3)  # within the round's slack (0.5 s, at most a tenth of the interval)
        probes.schedule(key("near"), near.health, SPEC, quick=near.quick, delay_first=True)
        clock.advance(0.6)
        probes.schedule(key("far"), far.health, SPEC, quick=far.quick, delay_first=True)
        await clock.wait_for_sleeper(1000.0 + SPEC.interval)
        clock.advance(1000.0 + SPEC.interval - clock.now())
        await results.wait_for(2)
        assert [s.key.name for s in results.seen] == ["early", "near"]  # one round, 0.3 s early for near
        assert early.quick_calls[0][0] == near.quick_calls[0][0]
        await clock.wait_for_sleeper(1000.9 + SPEC.interval)
        clock.advance(1000.9 + SPEC.interval - clock.now())
        await results.wait_for(3)
        assert results.seen[2].key.name == "far"
        # the next rounds keep the same grouping: early and near again together
        await clock.wait_for_sleeper(1000.0 + 2 * SPEC.interval)
        clock.advance(1000.0 + 2 * SPEC.interval - clock.now())
        await results.wait_for(5)
        assert [s.key.name for s in results.seen[3:5]] == ["early", "near"]


async def test_a_hung_quick_probe_times_out_alone_and_is_probed_on_its_own_from_then_on() -> None:
    clock = FakeClock()
    results = Results()
    release = threading.Event()
    before, after = Plugin(clock), Plugin(clock)
    hung = Plugin(clock, quick=lambda: release.wait() or True)
    try:
        async with ProbeScheduler(clock=clock, on_result=results) as probes:
            probes.schedule(key("a-before"), before.health, SPEC, quick=before.quick)
            probes.schedule(key("b-hung"), hung.health, HANGING, quick=hung.quick)
            probes.schedule(key("c-after"), after.health, SPEC, quick=after.quick)
            await results.wait_for(3)
            by_name = {s.key.name: s for s in results.seen}
            assert by_name["a-before"].last.ok and by_name["c-after"].last.ok
            timed_out = by_name["b-hung"].last
            assert not timed_out.ok and timed_out.timed_out
            assert timed_out.error == "health probe did not answer within 0.2 s"
            # the probe after the hung one ran on a fresh thread, the hung one's being held
            assert after.quick_calls[0][0] != before.quick_calls[0][0]
            # from now on the hung plugin has a probe task of its own, the ordinary probe
            await clock.wait_for_sleeper(clock.now() + SPEC.interval)
            await anyio.wait_all_tasks_blocked()  # its task has begun its first sleep too
            clock.advance(SPEC.interval)
            await results.wait_for(6)
            assert hung.ordinary == 1 and len(hung.quick_calls) == 1
            assert results.of("b-hung")[-1].last.ok
            assert len(before.quick_calls) == len(after.quick_calls) == 2 and before.ordinary == 0
    finally:
        release.set()


async def test_a_busy_plugin_is_probed_the_ordinary_way_that_once_and_quickly_again_after() -> None:
    clock = FakeClock()
    results = Results()
    busy = [True]

    def quick() -> bool:
        return not busy.pop() if busy else True

    plugin = Plugin(clock, quick=quick)
    async with ProbeScheduler(clock=clock, on_result=results) as probes:
        probes.schedule(key("busy"), plugin.health, SPEC, quick=plugin.quick)
        await results.wait_for(1)
        assert plugin.ordinary == 1 and results.seen[0].last.ok
        await clock.wait_for_sleeper(clock.now() + SPEC.interval)
        clock.advance(SPEC.interval)
        await results.wait_for(2)
        assert plugin.ordinary == 1 and len(plugin.quick_calls) == 2


async def test_an_unhealthy_quick_probe_counts_failures_and_an_unscheduled_one_is_probed_no_more() -> None:
    clock = FakeClock()
    results = Results()

    def unhealthy() -> bool:
        raise RuntimeError("mfx_plugin_health returned -4")

    sick, gone = Plugin(clock, quick=unhealthy), Plugin(clock)
    async with ProbeScheduler(clock=clock, on_result=results) as probes:
        probes.schedule(key("sick"), sick.health, ProbeSpec(interval=1.0, timeout=2.0, failure_threshold=2),
                        quick=sick.quick)
        probes.schedule(key("gone"), gone.health, ProbeSpec(interval=1.0, timeout=2.0, failure_threshold=2),
                        quick=gone.quick)
        await results.wait_for(2)
        probes.unschedule(key("gone"))
        await clock.wait_for_sleeper(clock.now() + 1.0)
        clock.advance(1.0)
        await results.wait_for(3)
    sick_results = results.of("sick")
    assert [s.consecutive_failures for s in sick_results] == [1, 2]
    assert sick_results[-1].changed and not sick_results[-1].healthy
    assert sick_results[0].last.error == "RuntimeError: mfx_plugin_health returned -4"
    assert len(gone.quick_calls) == 1


async def test_rounds_run_while_every_token_of_the_shared_thread_limiter_is_taken() -> None:
    # The API's thread calls share anyio's default limiter; probes must not queue behind them.
    clock = FakeClock()
    results = Results()
    plugin = Plugin(clock)
    shared = anyio.to_thread.current_default_thread_limiter()
    saved, release = shared.total_tokens, threading.Event()
    shared.total_tokens = 1
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(anyio.to_thread.run_sync, release.wait, abandon_on_cancel=True))
            await anyio.wait_all_tasks_blocked()
            assert shared.borrowed_tokens == 1
            async with ProbeScheduler(clock=clock, on_result=results) as probes:
                probes.schedule(key("p"), plugin.health, SPEC, quick=plugin.quick)
                await results.wait_for(1)
            release.set()
    finally:
        release.set()
        shared.total_tokens = saved
    assert results.seen[0].last.ok and len(plugin.quick_calls) == 1
