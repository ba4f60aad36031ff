"""The engine end to end on a real SQLite store: level-triggered reconciles through the work
queue, the outcome switch (requeue, backoff, Stalled), finalizers, resync, watch resume and
relist, timers, daemons, related keys and supervised long operations.

The handlers are toys for the schema-less store; the engine does not know the kinds.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from mfx.api.objects import FINALIZER, Obj, ObjectKey, generation
from mfx.errors import ChecksumMismatchError, GoneError, NotFoundError, StoreError
from mfx.store import EventRecord, ListResult, SQLiteStore, WatchEvent
from observability.metrics import Metrics
from reconciler import (
    RECONCILE_TOPIC,
    ConditionType,
    Context,
    ControllerOptions,
    EventBus,
    FakeClock,
    Manager,
    PermanentError,
    ReconcileOutcome,
    ReconcileResult,
    Registry,
    Result,
    TaskState,
    TemporaryError,
    brief_handler,
    get_condition,
    is_true,
)

pytestmark = pytest.mark.anyio

GS = "GitSource"
API = "mfx.musicfox.io/v1alpha1"


# --- a store that injects watch faults, behind the Store protocol -----------------------------------


class FaultyStore:
    """Delegates to a real store; can drop one watch event, cut a watch, or answer 410 once."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.drop_when: Callable[[WatchEvent], bool] | None = None
        self.dropped: list[WatchEvent] = []
        self.interrupt_after: int | None = None
        self.gone_on_next_watch = False
        self.watch_calls: list[int] = []
        self.consumed_rv = 0
        self._changed = anyio.Event()

    async def create(self, obj: Obj) -> Obj:
        return await self.inner.create(obj)

    async def get(self, kind: str, name: str) -> Obj:
        return await self.inner.get(kind, name)

    async def list(self, kind: str, *, label_selector: str | None = None, limit: int | None = None,
                   continue_token: str | None = None) -> ListResult:
        return await self.inner.list(kind, label_selector=label_selector, limit=limit,
                                     continue_token=continue_token)

    async def update(self, obj: Obj) -> Obj:
        return await self.inner.update(obj)

    async def update_status(self, obj: Obj) -> Obj:
        return await self.inner.update_status(obj)

    async def write_status(self, obj: Obj, events: Sequence[EventRecord] = (), *,
                           with_metadata: bool = False) -> Obj:
        return await self.inner.write_status(obj, events, with_metadata=with_metadata)

    async def delete(self, kind: str, name: str, *, resource_version: int | None = None) -> Obj:
        return await self.inner.delete(kind, name, resource_version=resource_version)

    async def current_resource_version(self) -> int:
        return await self.inner.current_resource_version()

    async def record_event(self, event: EventRecord) -> Obj:
        return await self.inner.record_event(event)

    async def close(self) -> None:
        await self.inner.close()

    def watch(self, kind: str | None, since: int) -> AsyncIterator[WatchEvent]:
        self.watch_calls.append(since)
        if self.gone_on_next_watch:
            self.gone_on_next_watch = False
            raise GoneError(f"too old resource version: {since}")
        return self._watch(kind, since)

    async def _watch(self, kind: str | None, since: int) -> AsyncIterator[WatchEvent]:
        stream = self.inner.watch(kind, since)
        try:
            async for event in stream:
                if self.interrupt_after is not None:
                    if self.interrupt_after == 0:
                        self.interrupt_after = None
                        raise StoreError("connection to the store lost")
                    self.interrupt_after -= 1
                self.consumed_rv = max(self.consumed_rv, event.resource_version)
                self._changed.set()
                self._changed = anyio.Event()
                if self.drop_when is not None and self.drop_when(event):
                    self.drop_when = None
                    self.dropped.append(event)
                    continue
                yield event
        finally:
            await stream.aclose()

    async def wait_consumed(self, rv: int) -> None:
        """Until the watch has taken every change up to ``rv`` from the store."""
        with anyio.fail_after(10):
            while self.consumed_rv < rv:
                await self._changed.wait()


# --- helpers ---------------------------------------------------------------------------------------


def gs(name: str, **spec: Any) -> Obj:
    return {"apiVersion": API, "kind": GS, "metadata": {"name": name}, "spec": spec}


class Calls:
    """What handlers saw, with a way to wait for a call."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int, Obj]] = []
        self._changed = anyio.Event()

    def add(self, name: str, obj: Obj) -> None:
        self.items.append((name, generation(obj), obj))
        self._changed.set()
        self._changed = anyio.Event()

    def of(self, name: str) -> list[int]:
        return [gen for n, gen, _ in self.items if n == name]

    async def wait(self, pred: Callable[[], bool]) -> None:
        with anyio.fail_after(10):
            while not pred():
                await self._changed.wait()


async def wait_object(store: SQLiteStore, kind: str, name: str, pred: Callable[[Obj | None], bool]) -> Obj | None:
    """Until ``pred`` holds for the stored object (None once it is gone), following the watch."""
    with anyio.fail_after(10):
        rv = await store.current_resource_version()
        try:
            obj: Obj | None = await store.get(kind, name)
        except NotFoundError:
            obj = None
        if pred(obj):
            return obj
        async with store.watch(kind, rv) as stream:
            async for event in stream:
                if event.object["metadata"]["name"] != name:
                    continue
                obj = None if event.type == "DELETED" else event.object
                if pred(obj):
                    return obj
    raise AssertionError("unreachable")


async def wait_event(store: SQLiteStore, reason: str) -> Obj:
    """Until an Event with ``reason`` exists, following the watch of Events."""
    with anyio.fail_after(10):
        listed = await store.list("Event")
        for event in listed.items:
            if event["reason"] == reason:
                return event
        async with store.watch("Event", listed.resource_version) as stream:
            async for change in stream:
                if change.object.get("reason") == reason:
                    return change.object
    raise AssertionError("unreachable")


class Outcomes:
    """The engine's outcome per processed key, as published on the event bus."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self._sub = self.bus.subscribe(RECONCILE_TOPIC, capacity=100_000)
        self.seen: list[ReconcileOutcome] = []

    async def wait(self, name: str, result: ReconcileResult, count: int = 1) -> ReconcileOutcome:
        """The ``count``-th outcome ``result`` of object ``name`` (waiting for it)."""
        with anyio.fail_after(10):
            while True:
                matches = [o for o in self.seen if o.key.name == name and o.result is result]
                if len(matches) >= count:
                    return matches[count - 1]
                self.seen.append((await self._sub.receive()).payload)

    def of(self, name: str) -> list[ReconcileResult]:
        while self._sub.pending():
            self.seen.append(self._sub.receive_nowait().payload)
        return [o.result for o in self.seen if o.key.name == name]


def ready(obj: Obj | None, gen: int | None = None) -> bool:
    if obj is None or not is_true(obj, ConditionType.READY):
        return False
    return gen is None or obj.get("status", {}).get("observedGeneration") == gen


def metric(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value("mfx_reconcile_total", {"controller": "gitsource", "result": result})
    return value or 0.0


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "mfx.db") as store:
        yield store


@pytest.fixture
async def faulty(sqlite: SQLiteStore) -> FaultyStore:
    return FaultyStore(sqlite)


# --- tests -----------------------------------------------------------------------------------------


async def test_a_created_object_is_reconciled_ready_with_reconciling_shown_meanwhile(sqlite: SQLiteStore) -> None:
    on = Registry()
    calls = Calls()
    seen_reconciling: list[bool] = []

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        stored = await ctx.store.get(GS, obj["metadata"]["name"])
        seen_reconciling.append(is_true(stored, ConditionType.RECONCILING))
        ctx.status["lastAppliedRevision"] = "abc123"
        calls.add(obj["metadata"]["name"], obj)

    metrics = Metrics()
    async with Manager(sqlite, on, metrics=metrics):
        await sqlite.create(gs("music", url="/srv/music.git"))
        obj = await wait_object(sqlite, GS, "music", lambda o: ready(o, 1))
    assert obj is not None
    assert calls.of("music") == [1]
    assert seen_reconciling == [True], "Reconciling=True is visible while a new generation is worked on"
    assert get_condition(obj, ConditionType.RECONCILING) is None, "and removed once Ready"
    assert obj["status"]["lastAppliedRevision"] == "abc123"
    assert metric(metrics, "success") == 1
    events = (await sqlite.list("Event")).items
    assert any(e["reason"] == "ReconciliationSucceeded" and e["type"] == "Normal" for e in events)


async def test_two_rapid_updates_are_reconciled_once_with_the_latest(faulty: FaultyStore) -> None:
    on = Registry()
    calls = Calls()
    gate = anyio.Event()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        calls.add(obj["metadata"]["name"], obj)
        if generation(obj) == 1:
            await gate.wait()

    outcomes = Outcomes()
    async with Manager(faulty, on, bus=outcomes.bus) as manager:
        await faulty.create(gs("music", ref="v1"))
        await calls.wait(lambda: calls.of("music") == [1])
        obj = await faulty.get(GS, "music")
        obj["spec"]["ref"] = "v2"
        obj = await faulty.update(obj)
        obj["spec"]["ref"] = "v3"
        obj = await faulty.update(obj)
        await faulty.wait_consumed(int(obj["metadata"]["resourceVersion"]))
        gate.set()
        await wait_object(faulty.inner, GS, "music", lambda o: ready(o, 3))
        await outcomes.wait("music", ReconcileResult.SUCCESS, count=2)
        await faulty.wait_consumed(await faulty.current_resource_version())
        queue = manager.controller(GS).queue
        assert not queue.is_dirty(ObjectKey(GS, "music")) and len(queue) == 0
    assert calls.of("music") == [1, 3]
    assert calls.items[-1][2]["spec"]["ref"] == "v3"


async def test_a_temporary_error_is_retried_with_growing_delays(sqlite: SQLiteStore) -> None:
    on = Registry()
    calls = Calls()
    clock = FakeClock()
    times: list[float] = []

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        times.append(ctx.clock.now())
        calls.add("flaky", obj)
        if len(times) <= 4:
            raise TemporaryError(f"remote not reachable (attempt {len(times)})")

    metrics = Metrics()
    outcomes = Outcomes()
    async with Manager(sqlite, on, metrics=metrics, clock=clock, bus=outcomes.bus) as manager:
        queue = manager.controller(GS).queue
        key = ObjectKey(GS, "flaky")
        await sqlite.create(gs("flaky"))
        for attempt in range(1, 5):
            retry = await outcomes.wait("flaky", ReconcileResult.RETRY, count=attempt)
            assert retry.delay == pytest.approx(queue.delayed_until(key) - clock.now())  # type: ignore[operator]
            if attempt == 1:
                obj = await sqlite.get(GS, "flaky")
                assert not is_true(obj, ConditionType.READY)
                assert is_true(obj, ConditionType.RECONCILING)
                assert get_condition(obj, ConditionType.READY)["reason"] == "ReconcileRetrying"  # type: ignore[index]
            clock.advance(queue.delayed_until(key) - clock.now())  # type: ignore[operator]
        await wait_object(sqlite, GS, "flaky", lambda o: ready(o, 1))
        await outcomes.wait("flaky", ReconcileResult.SUCCESS)
        assert queue.num_requeues(key) == 0, "success forgets the backoff"
    gaps = [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [0.005, 0.01, 0.02, 0.04]
    assert metric(metrics, "retry") == 4 and metric(metrics, "success") == 1


async def test_a_temporary_error_with_a_delay_is_retried_after_that_delay(sqlite: SQLiteStore) -> None:
    on = Registry()
    clock = FakeClock()
    times: list[float] = []
    calls = Calls()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> Result | None:
        times.append(ctx.clock.now())
        calls.add("poll", obj)
        if len(times) == 1:
            raise TemporaryError("dependency codec not Ready", delay=7)
        if len(times) == 2:
            return Result(requeue_after=30)
        return None

    metrics = Metrics()
    outcomes = Outcomes()
    async with Manager(sqlite, on, metrics=metrics, clock=clock, bus=outcomes.bus) as manager:
        queue = manager.controller(GS).queue
        key = ObjectKey(GS, "poll")
        await sqlite.create(gs("poll"))
        for result, expected in ((ReconcileResult.RETRY, 7.0), (ReconcileResult.REQUEUE_AFTER, 30.0)):
            assert (await outcomes.wait("poll", result)).delay == expected
            assert queue.delayed_until(key) - clock.now() == pytest.approx(expected)  # type: ignore[operator]
            clock.advance(expected)
        await calls.wait(lambda: len(times) == 3)
    assert metric(metrics, "requeue_after") == 1 and metric(metrics, "retry") == 1


async def test_a_permanent_error_stalls_until_the_generation_changes_or_a_reset(sqlite: SQLiteStore) -> None:
    on = Registry()
    calls = Calls()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        calls.add("src", obj)
        if obj["spec"]["url"] == "ftp://nope":
            raise PermanentError("UnsupportedURL", "spec.url: ftp is not supported; use https, ssh or a path")

    outcomes = Outcomes()
    async with Manager(sqlite, on, bus=outcomes.bus) as manager:
        controller = manager.controller(GS)
        key = ObjectKey(GS, "src")
        await sqlite.create(gs("src", url="ftp://nope"))
        obj = await wait_object(sqlite, GS, "src", lambda o: o is not None and is_true(o, ConditionType.STALLED))
        assert obj is not None
        stalled = get_condition(obj, ConditionType.STALLED)
        assert stalled is not None and stalled["reason"] == "UnsupportedURL"
        assert "ftp is not supported" in stalled["message"]
        assert get_condition(obj, ConditionType.READY)["status"] == "False"  # type: ignore[index]
        assert get_condition(obj, ConditionType.RECONCILING) is None
        events = (await sqlite.list("Event")).items
        assert any(e["reason"] == "UnsupportedURL" and e["type"] == "Warning" for e in events)
        await outcomes.wait("src", ReconcileResult.STALLED)
        assert controller.stalled_generation(key) == 1

        # Neither a resync nor a metadata change retries the same generation.
        await controller.resync()
        await outcomes.wait("src", ReconcileResult.SKIPPED, count=1)
        obj["metadata"].setdefault("labels", {})["team"] = "audio"
        await sqlite.update(obj)
        await outcomes.wait("src", ReconcileResult.SKIPPED, count=2)
        assert calls.of("src") == [1]

        # An explicit reset does (mfx reset-failed); it stalls again since the spec is the same.
        manager.reset(key)
        await calls.wait(lambda: calls.of("src") == [1, 1])
        await outcomes.wait("src", ReconcileResult.STALLED, count=2)

        # A new generation is retried and converges.
        obj = await sqlite.get(GS, "src")
        obj["spec"]["url"] = "https://example.org/music.git"
        await sqlite.update(obj)
        obj = await wait_object(sqlite, GS, "src", lambda o: ready(o, 2))
        assert obj is not None and get_condition(obj, ConditionType.STALLED) is None
        assert controller.stalled_generation(key) is None


async def test_a_stall_survives_a_restart_of_the_manager(sqlite: SQLiteStore) -> None:
    on = Registry()
    calls = Calls()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        calls.add("src", obj)
        raise PermanentError("UnsupportedURL", "no")

    async with Manager(sqlite, on):
        await sqlite.create(gs("src"))
        await wait_object(sqlite, GS, "src", lambda o: o is not None and is_true(o, ConditionType.STALLED))
    outcomes = Outcomes()
    async with Manager(sqlite, on, bus=outcomes.bus):
        await outcomes.wait("src", ReconcileResult.SKIPPED)
    assert calls.of("src") == [1]


async def test_an_unexpected_exception_is_transient_and_logged_with_its_traceback(
    sqlite: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    on = Registry()
    calls = Calls()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        calls.add("bug", obj)
        if len(calls.items) == 1:
            raise KeyError("spec.missing")

    metrics = Metrics()
    caplog.set_level(logging.ERROR, logger="mfx.reconciler")
    async with Manager(sqlite, on, metrics=metrics):
        await sqlite.create(gs("bug"))
        await wait_object(sqlite, GS, "bug", lambda o: ready(o, 1))
    assert metric(metrics, "error") == 1 and metric(metrics, "success") == 1
    record = next(r for r in caplog.records if "reconcile handler failed" in r.getMessage())
    assert record.exc_info is not None and record.exc_info[0] is KeyError


async def test_the_delete_handler_runs_under_the_finalizer_before_the_object_goes(sqlite: SQLiteStore) -> None:
    on = Registry()
    gate = anyio.Event()
    deleting = Calls()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        pass

    @on.delete(GS)
    async def finalize(obj: Obj, ctx: Context) -> None:
        deleting.add("bye", obj)
        await gate.wait()

    async with Manager(sqlite, on):
        await sqlite.create(gs("bye"))
        obj = await wait_object(sqlite, GS, "bye", lambda o: ready(o))
        assert obj is not None and FINALIZER in obj["metadata"]["finalizers"]
        await sqlite.delete(GS, "bye")
        await deleting.wait(lambda: len(deleting.items) == 1)
        still = await sqlite.get(GS, "bye")
        assert still["metadata"]["deletionTimestamp"], "the object waits for its finalizer"
        assert deleting.items[0][2]["metadata"]["deletionTimestamp"]
        gate.set()
        await wait_object(sqlite, GS, "bye", lambda o: o is None)


async def test_a_brief_handler_adds_the_finalizer_with_its_first_status_write(sqlite: SQLiteStore) -> None:
    on = Registry()

    @on.reconcile(GS)
    @brief_handler
    async def reconcile(obj: Obj, ctx: Context) -> None:
        ctx.status.record_event("Normal", "Noticed", "looked at it")

    @on.delete(GS)
    async def finalize(obj: Obj, ctx: Context) -> None:
        pass

    created = await sqlite.create(gs("one"))
    async with Manager(sqlite, on):
        obj = await wait_object(sqlite, GS, "one", lambda o: ready(o))
        assert obj is not None and FINALIZER in obj["metadata"]["finalizers"]
        assert obj["metadata"]["generation"] == 1
        # one write took the finalizer, the status and the events: the object's next version,
        # the events (the handler's first, then the Ready transition's) the ones after it
        written = int(obj["metadata"]["resourceVersion"])
        assert written == int(created["metadata"]["resourceVersion"]) + 1
        events = sorted(await sqlite.list_events(GS, "one"), key=lambda e: int(e["metadata"]["resourceVersion"]))
        assert [e["reason"] for e in events] == ["Noticed", "ReconciliationSucceeded"]
        assert [int(e["metadata"]["resourceVersion"]) for e in events] == [written + 1, written + 2]
        await sqlite.delete(GS, "one")
        await wait_object(sqlite, GS, "one", lambda o: o is None)


async def test_a_failing_delete_handler_keeps_the_object_and_is_retried(sqlite: SQLiteStore) -> None:
    on = Registry()
    attempts: list[int] = []

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        pass

    @on.delete(GS)
    async def finalize(obj: Obj, ctx: Context) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise TemporaryError("plugin still stopping")

    async with Manager(sqlite, on):
        await sqlite.create(gs("slow"))
        await wait_object(sqlite, GS, "slow", lambda o: o is not None and FINALIZER in o["metadata"].get("finalizers", []))
        await sqlite.delete(GS, "slow")
        await wait_object(sqlite, GS, "slow", lambda o: o is None)
    assert len(attempts) == 3


async def test_a_missed_watch_event_is_healed_by_the_periodic_resync(faulty: FaultyStore) -> None:
    on = Registry()
    calls = Calls()
    clock = FakeClock()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        calls.add(obj["metadata"]["name"], obj)

    faulty.drop_when = lambda event: event.object["metadata"]["name"] == "missed"
    options = ControllerOptions(resync_period=600)
    async with Manager(faulty, on, clock=clock, options=options) as manager:
        missed = await faulty.create(gs("missed"))
        await faulty.create(gs("seen"))
        await calls.wait(lambda: calls.of("seen") == [1])
        await faulty.wait_consumed(int(missed["metadata"]["resourceVersion"]))
        assert faulty.dropped and calls.of("missed") == []
        assert not manager.controller(GS).queue.is_dirty(ObjectKey(GS, "missed"))
        clock.advance(600)
        await calls.wait(lambda: calls.of("missed") == [1])


async def test_the_watch_resumes_from_its_last_resource_version_after_an_interruption(faulty: FaultyStore) -> None:
    on = Registry()
    calls = Calls()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        calls.add(obj["metadata"]["name"], obj)

    async with Manager(faulty, on) as manager:
        informer = manager.controller(GS).informer
        first = await faulty.create(gs("one"))
        await calls.wait(lambda: calls.of("one") == [1])
        await faulty.wait_consumed(await faulty.current_resource_version())
        faulty.interrupt_after = 0
        await faulty.create(gs("two"))  # the watch breaks on this change
        await calls.wait(lambda: calls.of("two") == [1])
        assert informer.relists == 1, "an interruption resumes; it does not list again"
        assert len(faulty.watch_calls) >= 2
        resumed_from = faulty.watch_calls[1]
        assert resumed_from >= int(first["metadata"]["resourceVersion"])
        assert resumed_from < int((await faulty.get(GS, "two"))["metadata"]["resourceVersion"])


async def test_a_410_gone_watch_lists_again_and_catches_up(faulty: FaultyStore) -> None:
    on = Registry()
    calls = Calls()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        calls.add(obj["metadata"]["name"], obj)

    async with Manager(faulty, on) as manager:
        informer = manager.controller(GS).informer
        await faulty.create(gs("before"))
        await calls.wait(lambda: calls.of("before") == [1])
        await faulty.wait_consumed(await faulty.current_resource_version())
        faulty.gone_on_next_watch = True
        faulty.interrupt_after = 0
        faulty.drop_when = lambda event: event.object["metadata"]["name"] == "during"
        await faulty.create(gs("during"))
        await calls.wait(lambda: calls.of("during") == [1])
        assert informer.relists == 2, "410 Gone makes the informer list again"


async def test_no_key_is_processed_by_two_workers_at_once_under_load(sqlite: SQLiteStore) -> None:
    on = Registry()
    in_flight: set[str] = set()
    overlaps: list[str] = []
    last_seen: dict[str, int] = {}

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        name = obj["metadata"]["name"]
        if name in in_flight:
            overlaps.append(name)
        in_flight.add(name)
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        last_seen[name] = generation(obj)
        in_flight.discard(name)

    names = [f"k{i}" for i in range(8)]
    async with Manager(sqlite, on, options=ControllerOptions(workers=4)):
        for name in names:
            await sqlite.create(gs(name, n=0))
        for round_ in range(1, 6):
            async with anyio.create_task_group() as tg:
                for name in names:
                    async def bump(name: str = name, n: int = round_) -> None:
                        obj = await sqlite.get(GS, name)
                        obj["spec"]["n"] = n
                        del obj["metadata"]["resourceVersion"]  # unconditional: status writes race
                        await sqlite.update(obj)
                    tg.start_soon(bump)
        for name in names:
            await wait_object(sqlite, GS, name, lambda o: ready(o, 6))
    assert overlaps == []
    assert all(last_seen[name] == 6 for name in names), "every key converges on its latest generation"


async def test_kinds_are_plugins_and_related_keys_are_enqueued(sqlite: SQLiteStore) -> None:
    on = Registry()
    calls = Calls()

    @on.reconcile(GS)
    async def reconcile_source(obj: Obj, ctx: Context) -> None:
        calls.add("gs:" + obj["metadata"]["name"], obj)

    @on.reconcile("AudioSink")
    async def reconcile_sink(obj: Obj, ctx: Context) -> None:
        calls.add("sink:" + obj["metadata"]["name"], obj)

    @on.related("AudioSink")
    def sources_using_the_sink(obj: Obj) -> list[ObjectKey]:
        return [ObjectKey(GS, "uses-sink")]

    async with Manager(sqlite, on) as manager:
        assert sorted(manager.controllers) == ["AudioSink", GS]
        await sqlite.create(gs("uses-sink"))
        await calls.wait(lambda: len(calls.of("gs:uses-sink")) == 1)
        await sqlite.create({"apiVersion": API, "kind": "AudioSink", "metadata": {"name": "default"},
                             "spec": {"device": "default"}})
        await calls.wait(lambda: len(calls.of("sink:default")) == 1)
        await calls.wait(lambda: len(calls.of("gs:uses-sink")) >= 2)


async def test_a_relist_is_queued_behind_keys_asked_for_meanwhile_but_its_urgent_ones(sqlite: SQLiteStore) -> None:
    on = Registry()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        pass

    @on.urgent(GS)
    def odd(obj: Obj) -> bool:
        return int(obj["spec"]["n"]) % 2 == 1

    for n in range(4):
        await sqlite.create(gs(f"k{n}", n=n))
    manager = Manager(sqlite, on, options=ControllerOptions(workers=1))
    controller = manager.controller(GS)
    await controller.informer._relist()  # what the first list queues, before any worker runs
    controller.enqueue(ObjectKey(GS, "k2"))  # asked for meanwhile: ahead of the rest of the list
    assert [await controller.queue.get() for _ in range(4)] == [ObjectKey(GS, f"k{n}") for n in (1, 3, 2, 0)]
    with pytest.raises(ValueError, match="already has an urgency function"):
        on.urgent(GS)(odd)


def _starting_handler(on: Registry, release: anyio.Event, hold: float | None, reconciled: Calls, *,
                      notify: bool = True) -> None:
    """A brief handler whose start ends when ``release`` is set; it holds "Starting" for
    ``hold`` seconds (None: it does not). ``notify=False``: the start's end queues no reconcile."""

    async def start() -> str:
        await release.wait()
        return "started"

    @on.reconcile(GS)
    @brief_handler
    async def reconcile(obj: Obj, ctx: Context) -> None:
        reconciled.add("p", obj)
        task = ctx.supervisor.status(ctx.key, "start")
        if task is None:
            ctx.supervisor.start(ctx.key, "start", start, notify=notify)
            ctx.status.condition(ConditionType.READY, False, "Starting", "starting the plugin")
            if hold is not None:
                ctx.status.hold(hold)
        elif task.state is TaskState.RUNNING:
            ctx.status.condition(ConditionType.READY, False, "Starting", "starting the plugin")
        else:
            ctx.status.condition(ConditionType.READY, True, "Started", str(task.result))

    @on.delete(GS)
    async def finalize(obj: Obj, ctx: Context) -> None:
        pass


async def test_a_long_start_runs_on_the_supervisor_and_its_completion_reenqueues(sqlite: SQLiteStore) -> None:
    on, release, calls = Registry(), anyio.Event(), Calls()
    _starting_handler(on, release, None, calls)
    outcomes = Outcomes()
    async with Manager(sqlite, on, bus=outcomes.bus) as manager:
        await sqlite.create(gs("p"))
        obj = await wait_object(sqlite, GS, "p", lambda o: o is not None and "Starting" == (
            get_condition(o, ConditionType.READY) or {}).get("reason"))
        assert obj is not None and is_true(obj, ConditionType.RECONCILING)
        await outcomes.wait("p", ReconcileResult.SUCCESS)
        assert manager.supervisor.running(ObjectKey(GS, "p")) == [(ObjectKey(GS, "p"), "start")]
        assert len(calls.of("p")) == 1, "the reconcile finished while the start still runs"
        release.set()
        obj = await wait_object(sqlite, GS, "p", lambda o: ready(o, 1))
        assert obj is not None and get_condition(obj, ConditionType.READY)["message"] == "started"  # type: ignore[index]
        assert get_condition(obj, ConditionType.RECONCILING) is None


async def _event_reasons(store: SQLiteStore, name: str) -> list[tuple[str, int]]:
    events = sorted(await store.list_events(GS, name), key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [(e["reason"], e["count"]) for e in events]


async def test_a_held_status_that_passes_in_time_is_never_written_but_its_events_are(sqlite: SQLiteStore) -> None:
    on, release, reconciled = Registry(), anyio.Event(), Calls()
    _starting_handler(on, release, 60.0, reconciled)
    outcomes = Outcomes()
    created = await sqlite.create({**gs("p"), "metadata": {"name": "p", "finalizers": [FINALIZER]}})
    async with Manager(sqlite, on, bus=outcomes.bus) as manager:
        held = await outcomes.wait("p", ReconcileResult.SUCCESS)
        assert held.delay == 60.0, "the engine looks again once the hold is over"
        assert await sqlite.get(GS, "p") == created, "nothing was written for the held reconcile"
        assert await sqlite.list_events(GS, "p") == []
        release.set()
        obj = await wait_object(sqlite, GS, "p", lambda o: ready(o, 1))
        assert obj is not None
        assert int(obj["metadata"]["resourceVersion"]) == int(created["metadata"]["resourceVersion"]) + 1, \
            "one write: the start that ended in time was never shown as Starting"
        assert manager.controller(GS).queue.delayed_until(ObjectKey(GS, "p")) is None, "the look-again is dropped"
    # The event list still tells the start, before what came of it, as a transition it was.
    assert await _event_reasons(sqlite, "p") == [("Starting", 1), ("Started", 1)]
    assert get_condition(obj, ConditionType.READY)["lastTransitionTime"] is not None  # type: ignore[index]


async def test_a_held_status_still_true_when_the_hold_ends_is_written_then(sqlite: SQLiteStore) -> None:
    on, release, reconciled = Registry(), anyio.Event(), Calls()
    clock = FakeClock()
    _starting_handler(on, release, 5.0, reconciled)
    outcomes = Outcomes()
    await sqlite.create({**gs("p"), "metadata": {"name": "p", "finalizers": [FINALIZER]}})
    async with Manager(sqlite, on, bus=outcomes.bus, clock=clock):
        await outcomes.wait("p", ReconcileResult.SUCCESS)
        clock.advance(5.0)
        obj = await wait_object(sqlite, GS, "p", lambda o: o is not None and "Starting" == (
            get_condition(o, ConditionType.READY) or {}).get("reason"))
        assert obj is not None and reconciled.of("p") == [1, 1]
        release.set()
        await wait_object(sqlite, GS, "p", lambda o: ready(o, 1))
    assert await _event_reasons(sqlite, "p") == [("Starting", 1), ("Started", 1)], \
        "the held event and the write that told it again are one event"


async def test_a_held_first_start_stores_the_finalizer_with_its_one_write(sqlite: SQLiteStore) -> None:
    on, release, reconciled = Registry(), anyio.Event(), Calls()
    _starting_handler(on, release, 60.0, reconciled)
    outcomes = Outcomes()
    created = await sqlite.create(gs("p"))
    async with Manager(sqlite, on, bus=outcomes.bus):
        await outcomes.wait("p", ReconcileResult.SUCCESS)
        assert await sqlite.get(GS, "p") == created, "the held reconcile wrote nothing, not even the finalizer"
        release.set()
        obj = await wait_object(sqlite, GS, "p", lambda o: ready(o, 1))
    assert obj is not None
    assert int(obj["metadata"]["resourceVersion"]) == int(created["metadata"]["resourceVersion"]) + 1, \
        "one write: the finalizer, observedGeneration and Ready together"
    assert obj["metadata"]["finalizers"] == [FINALIZER] and obj["status"]["observedGeneration"] == 1
    assert await _event_reasons(sqlite, "p") == [("Starting", 1), ("Started", 1)]


@pytest.mark.parametrize("kept_by", [None, "example.com/keep"], ids=["gone", "terminating-for-another"])
async def test_an_object_deleted_before_its_finalizer_is_stored_is_released(sqlite: SQLiteStore,
                                                                             kept_by: str | None) -> None:
    """The kind's ``gone`` function gets the tasks that had ended, so a started instance no
    reconcile took over yet is stopped, not leaked; likewise when another finalizer keeps the
    object Terminating."""
    on, release, reconciled = Registry(), anyio.Event(), Calls()
    _starting_handler(on, release, 60.0, reconciled, notify=False)
    released: list[tuple[ObjectKey, dict[str, Any]]] = []
    told = anyio.Event()

    @on.gone(GS)
    def release_started(key: ObjectKey, finished: dict[str, Any]) -> None:
        released.append((key, finished))
        told.set()

    outcomes = Outcomes()
    key = ObjectKey(GS, "p")
    await sqlite.create({**gs("p"), "metadata": {"name": "p", "finalizers": [kept_by] if kept_by else []}})
    async with Manager(sqlite, on, bus=outcomes.bus) as manager:
        await outcomes.wait("p", ReconcileResult.SUCCESS)  # held: the finalizer is not stored
        release.set()
        started = await manager.supervisor.wait(key, "start")
        assert started is not None and started.state is TaskState.DONE, "ended, and no reconcile took it over"
        await sqlite.delete(GS, "p")
        with anyio.fail_after(10):
            await told.wait()
        assert released[0] == (key, {"start": started})
        assert manager.supervisor.status(key, "start") is None
        if kept_by:
            still = await sqlite.get(GS, "p")
            assert still["metadata"]["deletionTimestamp"] and still["metadata"]["finalizers"] == [kept_by]


async def test_status_writes_survive_conflicts_without_the_handler_seeing_them(sqlite: SQLiteStore) -> None:
    on = Registry()
    gate = anyio.Event()
    entered = anyio.Event()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        if generation(obj) == 1:
            entered.set()
            await gate.wait()
        ctx.status["seenRef"] = obj["spec"]["ref"]

    metrics = Metrics()
    outcomes = Outcomes()
    async with Manager(sqlite, on, metrics=metrics, bus=outcomes.bus):
        await sqlite.create(gs("c", ref="v1"))
        with anyio.fail_after(10):
            await entered.wait()
        obj = await sqlite.get(GS, "c")
        obj["spec"]["ref"] = "v2"
        await sqlite.update(obj)  # the handler's copy is now stale: its status write conflicts
        gate.set()
        await outcomes.wait("c", ReconcileResult.SUCCESS)
        obj = await wait_object(sqlite, GS, "c", lambda o: ready(o, 2))
    assert metric(metrics, "error") == 0
    assert obj is not None and obj["status"]["seenRef"] == "v2"


async def test_timers_tick_on_their_interval_and_stop_when_the_object_goes(sqlite: SQLiteStore) -> None:
    on = Registry()
    clock = FakeClock()
    ticks = Calls()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        pass

    @on.timer(GS, interval_from=lambda o: o["spec"].get("interval"))
    async def probe(obj: Obj, ctx: Context) -> None:
        ticks.add(obj["metadata"]["name"], obj)
        ctx.status.condition(ConditionType.HEALTHY, True, "ProbeSucceeded")

    outcomes = Outcomes()
    async with Manager(sqlite, on, clock=clock, bus=outcomes.bus) as manager:
        await sqlite.create(gs("t", interval="10s"))
        await sqlite.create(gs("no-timer"))
        await wait_object(sqlite, GS, "t", lambda o: ready(o))
        await outcomes.wait("no-timer", ReconcileResult.SUCCESS)
        sup = manager.supervisor
        assert sup.running(ObjectKey(GS, "t")) == [(ObjectKey(GS, "t"), "timer:probe")]
        assert sup.running(ObjectKey(GS, "no-timer")) == []
        with anyio.fail_after(10):
            await clock.wait_for_sleeper(clock.now() + 10)
        clock.advance(10)
        await ticks.wait(lambda: len(ticks.of("t")) == 1)
        await wait_object(sqlite, GS, "t", lambda o: o is not None and is_true(o, ConditionType.HEALTHY))
        await sqlite.delete(GS, "t")
        await outcomes.wait("t", ReconcileResult.GONE)
        assert sup.running(ObjectKey(GS, "t")) == []


async def test_a_daemon_runs_per_object_and_restarts_on_a_spec_change(sqlite: SQLiteStore) -> None:
    on = Registry()
    started = Calls()
    cancelled: list[int] = []

    @on.daemon(GS)
    async def pump(obj: Obj, ctx: Context) -> None:
        started.add(obj["metadata"]["name"], obj)
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(generation(obj))

    async with Manager(sqlite, on) as manager:
        key = ObjectKey(GS, "sink")
        assert manager.controller(GS).handlers.reconcile is None
        await sqlite.create(gs("sink", rate=48000))
        await started.wait(lambda: started.of("sink") == [1])
        obj = await sqlite.get(GS, "sink")
        obj["spec"]["rate"] = 44100
        await sqlite.update(obj)
        await started.wait(lambda: started.of("sink") == [1, 2])
        assert cancelled == [1]
        await sqlite.delete(GS, "sink")
        with anyio.fail_after(10):
            await manager.controller(GS).informer.wait_for(await sqlite.current_resource_version())
        assert manager.supervisor.running(key) == []
    assert cancelled == [1, 2]


async def test_every_outcome_goes_through_the_one_switch(sqlite: SQLiteStore) -> None:
    on = Registry()
    calls = Calls()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> Any:
        name = obj["metadata"]["name"]
        calls.add(name, obj)
        if name == "checksum":
            raise ChecksumMismatchError("sha256 of plugin.wasm is 00ff.., the manifest says ab12..")
        if name == "bad-return":
            return 42
        if name == "again" and len(calls.of(name)) == 1:
            return Result(requeue=True)
        return None

    metrics = Metrics()
    outcomes = Outcomes()
    async with Manager(sqlite, on, metrics=metrics, bus=outcomes.bus):
        for name in ("checksum", "bad-return", "again"):
            await sqlite.create(gs(name))
        obj = await wait_object(sqlite, GS, "checksum", lambda o: o is not None and is_true(o, ConditionType.STALLED))
        assert get_condition(obj, ConditionType.STALLED)["reason"] == "ChecksumMismatch"  # type: ignore[arg-type,index]
        obj = await wait_object(sqlite, GS, "bad-return", lambda o: o is not None and get_condition(
            o, ConditionType.READY) is not None)
        ready_cond = get_condition(obj, ConditionType.READY)  # type: ignore[arg-type]
        assert ready_cond is not None and ready_cond["status"] == "False"
        assert "returned int; return None or Result(...)" in ready_cond["message"]
        await wait_object(sqlite, GS, "again", lambda o: ready(o, 1))
        await outcomes.wait("again", ReconcileResult.SUCCESS)
        assert outcomes.of("again")[0] is ReconcileResult.REQUEUE
        assert metric(metrics, "requeue") == 1 and metric(metrics, "stalled") == 1
    assert calls.of("again") == [1, 1]


async def test_a_failing_daemon_is_restarted_and_a_permanent_failure_stops_it(sqlite: SQLiteStore) -> None:
    on = Registry()
    runs = Calls()

    @on.daemon(GS)
    async def pump(obj: Obj, ctx: Context) -> None:
        runs.add(obj["metadata"]["name"], obj)
        if obj["metadata"]["name"] == "broken":
            raise PermanentError("DeviceNotFound", "no ALSA device hw:9")
        if len(runs.of("flaky")) == 1:
            raise TemporaryError("device busy", delay=0)
        if len(runs.of("flaky")) == 2:
            raise RuntimeError("unexpected xrun storm")
        ctx.status["pumping"] = True

    options = ControllerOptions(daemon_backoff=(0.001, 0.01))
    async with Manager(sqlite, on, options=options):
        await sqlite.create(gs("flaky"))
        await sqlite.create(gs("broken"))
        await runs.wait(lambda: len(runs.of("flaky")) == 3)
        await wait_object(sqlite, GS, "flaky", lambda o: o is not None and o.get("status", {}).get("pumping"))
        event = await wait_event(sqlite, "DeviceNotFound")
    assert runs.of("broken") == [1], "a permanent failure is not retried"
    assert event["type"] == "Warning" and "no ALSA device hw:9" in event["message"]


async def test_the_manager_runs_until_cancelled_and_routes_keys_by_kind(sqlite: SQLiteStore) -> None:
    on = Registry()
    calls = Calls()

    @on.reconcile(GS)
    async def reconcile(obj: Obj, ctx: Context) -> None:
        calls.add(obj["metadata"]["name"], obj)

    manager = Manager(sqlite, on)
    with pytest.raises(KeyError, match="no controller for kind AudioSink"):
        manager.controller("AudioSink")
    async with anyio.create_task_group() as tg:
        tg.start_soon(manager.run)
        await sqlite.create(gs("a"))
        await calls.wait(lambda: calls.of("a") == [1])
        manager.enqueue(ObjectKey("AudioSink", "ignored"))  # nothing reconciles that kind
        manager.enqueue_after(ObjectKey(GS, "a"), 0)
        await calls.wait(lambda: calls.of("a") == [1, 1])
        tg.cancel_scope.cancel()


def test_registry_rejects_ambiguous_registrations_with_clear_messages() -> None:
    on = Registry()

    @on.reconcile(GS)
    async def one(obj: Obj, ctx: Context) -> None: ...

    with pytest.raises(ValueError, match="already has a reconcile handler"):
        on.reconcile(GS)(one)
    with pytest.raises(ValueError, match="exactly one of interval= and interval_from="):
        on.timer(GS)
    with pytest.raises(ValueError, match='"5 minutes" is not a duration'):
        on.timer(GS, interval="5 minutes")
    on.timer(GS, interval="5m")(one)
    with pytest.raises(ValueError, match="already has a timer named one"):
        on.timer(GS, interval=1)(one)
    on.delete(GS)(one)
    with pytest.raises(ValueError, match="already has a delete handler"):
        on.delete(GS)(one)
    on.daemon(GS)(one)
    with pytest.raises(ValueError, match="already has a daemon named one"):
        on.daemon(GS)(one)
    with pytest.raises(ValueError, match="needs a kind name"):
        on.reconcile("")
    assert on.kinds() == [GS]
    assert on.handlers("AudioSink").reconcile is None
