"""The work queue de-duplicates keys, never hands one key to two workers, delays and backs off
per key under a global token bucket, and reports its metrics."""

from __future__ import annotations

import random

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfx.api.objects import ObjectKey
from observability.metrics import Metrics
from reconciler import (
    BucketRateLimiter,
    FakeClock,
    ItemExponentialFailureRateLimiter,
    QueueShutDown,
    WorkQueue,
    default_rate_limiter,
)

pytestmark = pytest.mark.anyio

A = ObjectKey("GitSource", "a")
B = ObjectKey("GitSource", "b")


def sample(metrics: Metrics, name: str, labels: dict[str, str]) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_key_added_twice_is_handed_out_once() -> None:
    q: WorkQueue[ObjectKey] = WorkQueue("t", clock=FakeClock())
    q.add(A)
    q.add(A)
    q.add(B)
    assert len(q) == 2
    assert await q.get() == A
    assert await q.get() == B
    assert len(q) == 0


async def test_low_priority_keys_wait_for_the_others_and_move_up_when_added_again() -> None:
    q: WorkQueue[ObjectKey] = WorkQueue("t", clock=FakeClock())
    c = ObjectKey("GitSource", "c")
    q.add(A, low=True)
    q.add(B, low=True)
    q.add(c)
    q.add(B)  # asked for again, not at low priority: no longer behind A
    q.add(c, low=True)  # already queued: stays where it is
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == [c, B, A]
    assert len(q) == 0


async def test_a_key_readded_while_processing_waits_for_done_then_comes_back_once() -> None:
    q: WorkQueue[ObjectKey] = WorkQueue("t", clock=FakeClock())
    q.add(A)
    held = await q.get()
    q.add(A)
    q.add(A)
    assert len(q) == 0, "a held key must not be handed to a second worker"
    assert q.is_dirty(A) and q.is_processing(A)
    q.done(held)
    assert len(q) == 1
    assert await q.get() == A
    q.done(A)
    assert q.is_idle()


async def test_get_waits_until_a_key_arrives() -> None:
    q: WorkQueue[ObjectKey] = WorkQueue("t", clock=FakeClock())
    got: list[ObjectKey] = []
    async with anyio.create_task_group() as tg:
        async def worker() -> None:
            got.append(await q.get())
        tg.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        q.add(B)
    assert got == [B]


async def test_add_after_releases_the_key_when_its_time_comes_and_the_earliest_delay_wins() -> None:
    clock = FakeClock()
    q: WorkQueue[ObjectKey] = WorkQueue("t", clock=clock)
    q.add_after(A, 10.0)
    q.add_after(A, 2.0)  # earlier: replaces
    q.add_after(A, 5.0)  # later: ignored
    assert q.delayed_until(A) == clock.now() + 2.0
    got: list[ObjectKey] = []
    async with anyio.create_task_group() as tg:
        async def worker() -> None:
            got.append(await q.get())
        tg.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        clock.advance(1.9)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        clock.advance(0.1)
    assert got == [A]
    q.done(A)
    clock.advance(100)
    assert len(q) == 0 and q.is_idle(), "superseded delays must not add the key again"


async def test_cancel_delayed_drops_a_pending_delayed_add() -> None:
    clock = FakeClock()
    q: WorkQueue[ObjectKey] = WorkQueue("t", clock=clock)
    q.add_after(A, 1.0)
    q.cancel_delayed(A)
    clock.advance(5)
    q.add(B)
    assert await q.get() == B
    assert len(q) == 0


def test_per_key_backoff_doubles_from_5ms_to_1000s_and_forget_resets_it() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when(A) for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000.0 and max(delays) == 1000.0
    assert limiter.when(B) == 0.005, "backoff is per key"
    assert limiter.num_requeues(A) == 20
    limiter.forget(A)
    assert limiter.num_requeues(A) == 0
    assert limiter.when(A) == 0.005
    for _ in range(100):
        limiter.when(B)
    assert limiter.when(B) == 1000.0


def test_token_bucket_allows_a_burst_then_spaces_reservations_at_qps() -> None:
    clock = FakeClock()
    bucket = BucketRateLimiter(qps=10, burst=3, clock=clock)
    assert [bucket.when(A) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.when(A) == pytest.approx(0.1)
    assert bucket.when(B) == pytest.approx(0.2)
    clock.advance(10)
    assert bucket.when(A) == 0.0, "the bucket refills over time, up to its burst"


def test_default_limiter_takes_the_larger_of_backoff_and_bucket() -> None:
    clock = FakeClock()
    limiter = default_rate_limiter(clock=clock, qps=1, burst=2)
    assert limiter.when(A) == 0.005  # backoff wins while the bucket has tokens
    assert limiter.when(B) == 0.005
    assert limiter.when(ObjectKey("GitSource", "c")) == pytest.approx(1.0)  # bucket wins
    with pytest.raises(ValueError):
        BucketRateLimiter(qps=0)
    with pytest.raises(ValueError):
        ItemExponentialFailureRateLimiter(base_delay=2, max_delay=1)


async def test_add_rate_limited_grows_the_delay_until_forget() -> None:
    clock = FakeClock()
    q: WorkQueue[ObjectKey] = WorkQueue("t", clock=clock)
    assert [q.add_rate_limited(A) for _ in range(3)] == [0.005, 0.01, 0.02]
    assert q.num_requeues(A) == 3
    q.forget(A)
    assert q.add_rate_limited(A) == 0.005


async def test_metrics_depth_adds_retries_latency_and_work_duration() -> None:
    clock = FakeClock()
    metrics = Metrics()
    q: WorkQueue[ObjectKey] = WorkQueue("pm", clock=clock, metrics=metrics)
    labels = {"name": "pm"}
    q.add(A)
    q.add(A)
    q.add(B)
    assert sample(metrics, "mfx_workqueue_depth", labels) == 2
    assert sample(metrics, "mfx_workqueue_adds_total", labels) == 2
    clock.advance(0.5)
    key = await q.get()
    assert sample(metrics, "mfx_workqueue_depth", labels) == 1
    assert sample(metrics, "mfx_workqueue_queue_duration_seconds_sum", labels) == pytest.approx(0.5)
    clock.advance(0.25)
    q.done(key)
    assert sample(metrics, "mfx_workqueue_work_duration_seconds_sum", labels) == pytest.approx(0.25)
    assert sample(metrics, "mfx_workqueue_work_duration_seconds_count", labels) == 1
    q.add_rate_limited(A)
    assert sample(metrics, "mfx_workqueue_retries_total", labels) == 1


async def test_shutdown_wakes_waiting_workers_with_queue_shut_down() -> None:
    q: WorkQueue[ObjectKey] = WorkQueue("t", clock=FakeClock())
    ended: list[str] = []
    async with anyio.create_task_group() as tg:
        async def worker() -> None:
            try:
                await q.get()
            except QueueShutDown:
                ended.append("shut down")
        for _ in range(3):
            tg.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        q.shutdown()
    assert ended == ["shut down"] * 3
    q.add(A)
    assert len(q) == 0, "a shut-down queue accepts nothing"


async def test_real_clock_delays_work_too() -> None:
    q: WorkQueue[ObjectKey] = WorkQueue("t")
    q.add_after(A, 0.001)
    with anyio.fail_after(5):
        assert await q.get() == A


# --- concurrency -------------------------------------------------------------------------------


@given(st.lists(st.tuples(st.sampled_from(["add", "get", "done"]), st.integers(0, 3)), max_size=60))
@settings(max_examples=150, deadline=None)
def test_model_no_key_held_twice_and_no_add_lost(ops: list[tuple[str, int]]) -> None:
    async def scenario() -> None:
        q: WorkQueue[int] = WorkQueue("t", clock=FakeClock())
        held: set[int] = set()
        needs: set[int] = set()  # keys added since they were last handed out
        for op, k in ops:
            if op == "add":
                q.add(k)
                needs.add(k)
            elif op == "get" and len(q):
                key = await q.get()
                assert key not in held, f"key {key} handed to a second worker"
                held.add(key)
                needs.discard(key)
            elif op == "done" and k in held:
                held.discard(k)
                q.done(k)
        for k in list(held):
            q.done(k)
        drained: set[int] = set()
        while len(q):
            key = await q.get()
            assert key not in drained, "a key queued several times came out more than once"
            drained.add(key)
            q.done(key)
        assert needs <= drained, f"adds lost for {needs - drained}"

    anyio.run(scenario)


async def test_stress_many_workers_never_share_a_key() -> None:
    q: WorkQueue[int] = WorkQueue("t")
    rng = random.Random(7)
    in_flight: set[int] = set()
    processed = 0
    overlaps = 0
    enough = anyio.Event()

    async def worker() -> None:
        nonlocal processed, overlaps
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            if key in in_flight:
                overlaps += 1
            in_flight.add(key)
            for _ in range(rng.randint(0, 3)):
                await anyio.lowlevel.checkpoint()
                q.add(rng.randrange(20))  # re-adds, often of keys being processed
            in_flight.discard(key)
            processed += 1
            if processed >= 3000:
                enough.set()
            q.done(key)

    async with anyio.create_task_group() as tg:
        for _ in range(16):
            tg.start_soon(worker)
        for i in range(2000):
            q.add(i % 20)
            if i % 50 == 0:
                await anyio.lowlevel.checkpoint()
        with anyio.fail_after(30):
            await enough.wait()
        q.shutdown()
    assert overlaps == 0


async def test_fake_clock_wakes_sleepers_in_deadline_order_only_when_advanced() -> None:
    clock = FakeClock(start=0.0)
    woke: list[str] = []
    async with anyio.create_task_group() as tg:
        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append(name)
        tg.start_soon(sleeper, "late", 5.0)
        tg.start_soon(sleeper, "early", 1.0)
        await clock.wait_for_sleeper(5.0)
        await clock.wait_for_sleeper(1.0)
        assert clock.next_deadline() == 1.0
        assert clock.advance_to_next() == 1.0
        await anyio.wait_all_tasks_blocked()
        assert woke == ["early"]
        clock.advance(4.0)
    assert woke == ["early", "late"]
    assert clock.next_deadline() is None and clock.advance_to_next() == 0.0
    with pytest.raises(ValueError):
        clock.advance(-1)
    await clock.sleep(0)  # a deadline already reached returns at once
