"""The event bus delivers by topic without ever blocking the publisher (a slow subscriber loses
and counts its overflow); the service registry orders Ready providers by priority and
announces changes; the task supervisor runs long operations and re-enqueues their key."""

from __future__ import annotations

import anyio
import pytest

from mfx.api.objects import ObjectKey
from mfx.errors import NotFoundError
from observability.metrics import Metrics
from reconciler import (
    ALL_TOPICS,
    SERVICES_TOPIC,
    ChangeType,
    EventBus,
    ServiceChange,
    ServiceRegistry,
    TaskState,
    TaskSupervisor,
)

pytestmark = pytest.mark.anyio


async def test_subscribers_get_their_topics_in_order() -> None:
    bus = EventBus()
    with bus.subscribe("player") as player, bus.subscribe(ALL_TOPICS) as everything:
        assert bus.publish("player", 1) == 2
        assert bus.publish("plugins", 2) == 1
        assert bus.publish("nobody-listens", 3) == 1
        assert [(await player.receive()).payload] == [1]
        assert [(await everything.receive()).payload for _ in range(3)] == [1, 2, 3]
    assert bus.subscriber_count("player") == 0


async def test_a_slow_subscriber_drops_and_counts_overflow_without_blocking_the_publisher() -> None:
    metrics = Metrics()
    bus = EventBus(metrics=metrics)
    slow = bus.subscribe("ticks", capacity=3)
    fast = bus.subscribe("ticks", capacity=1000)
    for i in range(10):
        bus.publish("ticks", i)  # synchronous: it cannot wait for anyone
    assert slow.dropped == 7 and slow.pending() == 3
    assert fast.dropped == 0 and fast.pending() == 10
    assert [slow.receive_nowait().payload for _ in range(3)] == [0, 1, 2]
    assert metrics.registry.get_sample_value("mfx_eventbus_dropped_total", {"topic": "ticks"}) == 7
    slow.close()
    fast.close()


async def test_iterating_a_subscription_ends_when_it_is_closed() -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    got: list[int] = []
    async with anyio.create_task_group() as tg:
        async def consume() -> None:
            async for message in sub:
                got.append(message.payload)
        tg.start_soon(consume)
        bus.publish("t", 1)
        bus.publish("t", 2)
        await anyio.wait_all_tasks_blocked()
        sub.close()
    assert got == [1, 2]
    assert bus.publish("t", 3) == 0
    with pytest.raises(ValueError):
        bus.publish(ALL_TOPICS, 1)


async def test_service_registry_orders_by_priority_and_announces_changes() -> None:
    bus = EventBus()
    registry = ServiceRegistry(bus=bus)
    changes: list[ServiceChange] = []
    remove = registry.add_listener(changes.append)
    with bus.subscribe(SERVICES_TOPIC) as sub:
        registry.register("MusicSource", "local-music", priority=0, instance="L")
        registry.register("MusicSource", "netease", priority=10, instance="N")
        registry.register("Codec", "codec-soundfile", priority=5)
        assert [p.name for p in registry.lookup("MusicSource")] == ["netease", "local-music"]
        assert registry.best("MusicSource").instance == "N"
        assert registry.provided_by("netease") == ["MusicSource"]
        assert registry.interfaces() == ["Codec", "MusicSource"]
        registry.unregister("netease")
        assert registry.best("MusicSource").name == "local-music"
        assert (await sub.receive()).payload.type is ChangeType.REGISTERED
        assert sub.pending() == 3
    assert [c.type for c in changes] == [ChangeType.REGISTERED] * 3 + [ChangeType.UNREGISTERED]
    remove()
    registry.register("Codec", "codec-soundfile", priority=5)  # same provider again: no change
    assert len(changes) == 4
    assert registry.lookup("UIExtension") == []
    with pytest.raises(NotFoundError, match="no Ready provider of interface UIExtension"):
        registry.best("UIExtension")


async def test_supervisor_runs_tasks_per_key_and_reenqueues_on_completion() -> None:
    key = ObjectKey("PluginManifest", "codec")
    completed: list[ObjectKey] = []
    release = anyio.Event()

    async def start() -> str:
        await release.wait()
        return "pid 42"

    async def broken() -> None:
        raise RuntimeError("entry point not found")

    async with TaskSupervisor(on_complete=completed.append) as sup:
        assert sup.start(key, "start", start) is True
        assert sup.start(key, "start", start) is False, "one task per key and name"
        assert sup.status(key, "start").state is TaskState.RUNNING  # type: ignore[union-attr]
        assert len(sup) == 1
        release.set()
        status = await sup.wait(key, "start")
        assert status is not None and status.state is TaskState.DONE and status.result == "pid 42"
        assert completed == [key]
        sup.start(key, "probe", broken)
        failed = await sup.wait(key, "probe")
        assert failed is not None and failed.state is TaskState.FAILED
        assert isinstance(failed.error, RuntimeError)
        assert completed == [key, key]
        sup.forget(key, "start")
        assert sup.status(key, "start") is None


async def test_supervisor_cancel_stops_a_task_without_reenqueueing() -> None:
    key = ObjectKey("PluginManifest", "slow")
    completed: list[ObjectKey] = []
    async with TaskSupervisor(on_complete=completed.append) as sup:
        sup.start(key, "start", anyio.sleep_forever)
        await anyio.wait_all_tasks_blocked()
        assert sup.running(key) == [(key, "start")]
        assert sup.cancel(key) == 1
        await anyio.wait_all_tasks_blocked()
        assert sup.status(key, "start") is None and len(sup) == 0
        sup.start(key, "start", anyio.sleep_forever)
        sup.start(key, "start", anyio.sleep_forever, replace=True)
        await anyio.wait_all_tasks_blocked()
        assert len(sup) == 1
    assert completed == []


async def test_supervisor_must_be_running_to_start_tasks() -> None:
    sup = TaskSupervisor()
    with pytest.raises(RuntimeError, match="async with"):
        sup.start(ObjectKey("X", "y"), "start", anyio.sleep_forever)
