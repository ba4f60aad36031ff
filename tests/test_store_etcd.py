"""The etcd store on a real 3-member cluster: what only etcd has (several stores on one prefix,
compaction, member failure, quorum loss, event leases). The shared contract is tests/test_store.py."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import grpc
import pytest
from aetcd import rpc

from mfx.errors import ConflictError, GoneError, StoreError, StoreUnavailableError
from mfx.store import EventRecord, WatchEvent, WatchEventType
from mfx.store.etcd import EtcdStore
from mfx.store.etcd_client import EtcdConnection
from mfx.store.etcd_compaction import CompactionState, compaction_round
from mfx.store.etcd_keys import Keys, parse_store_url
from tests.etcd_env import EtcdCluster
from tests.test_store import PM, plugin, rv, take, watch_sees_concurrent_writes_once_in_order


def open_store(cluster: EtcdCluster, prefix: str, **options: Any) -> EtcdStore:
    return EtcdStore(parse_store_url(cluster.url + prefix), **options)


@pytest.fixture
async def store(etcd_cluster: EtcdCluster, etcd_prefix: str) -> AsyncIterator[EtcdStore]:
    async with open_store(etcd_cluster, etcd_prefix) as opened:
        yield opened


@pytest.mark.anyio
async def test_two_stores_on_one_prefix_see_each_others_writes_through_watch(
    etcd_cluster: EtcdCluster, etcd_prefix: str
) -> None:
    async with open_store(etcd_cluster, etcd_prefix) as a, open_store(etcd_cluster, etcd_prefix) as b:
        start = await b.current_resource_version()
        on_b = b.watch(PM, start)
        created = await a.create(plugin("shared"))
        (event,) = await take(on_b, 1)
        assert (event.type, event.object, event.resource_version) == (WatchEventType.ADDED, created, rv(created))
        # A write through B with A's stale view is refused: both compare etcd's mod_revision.
        await b.update({**created, "spec": {**created["spec"], "version": "2.0.0"}})
        with pytest.raises(ConflictError) as caught:
            await a.update({**created, "spec": {**created["spec"], "version": "3.0.0"}})
        assert caught.value.code == 409
        assert (await a.get(PM, "shared"))["spec"]["version"] == "2.0.0"
        assert [o["metadata"]["name"] for o in (await b.list(PM)).items] == ["shared"]
    async with open_store(etcd_cluster, etcd_prefix + "-other") as elsewhere:
        assert (await elsewhere.list(PM)).items == [], "another prefix is another installation"


@pytest.mark.anyio
async def test_a_compacted_revision_is_gone_and_a_newer_one_still_watches(store: EtcdStore) -> None:
    start = await store.current_resource_version()
    for i in range(6):
        await store.create(plugin(f"p{i}"))
    keep_from = await store.current_resource_version() - 2
    connection = EtcdConnection(store.target)
    try:
        await connection.kv("Compact", rpc.CompactionRequest(revision=keep_from, physical=True))
    finally:
        await connection.close()
    with pytest.raises(GoneError, match="too old resource version") as caught:
        await take(store.watch(PM, start + 1), 1)
    assert caught.value.code == 410
    got = await take(store.watch(PM, keep_from), 2)
    assert [e.resource_version for e in got] == [keep_from + 1, keep_from + 2]
    assert store.watchers == 0


@pytest.mark.anyio
async def test_a_watch_under_concurrent_writes_sees_every_change_once_in_order(store: EtcdStore) -> None:
    await watch_sees_concurrent_writes_once_in_order(store, backlog=50, total=100)


@pytest.mark.anyio
async def test_closing_the_store_ends_its_watches(etcd_cluster: EtcdCluster, etcd_prefix: str) -> None:
    store = await open_store(etcd_cluster, etcd_prefix).open()
    events = store.watch(None, 0)
    await store.create(plugin("a"))
    got: list[WatchEvent] = []
    first = anyio.Event()

    async def consume() -> None:
        async for event in events:
            got.append(event)
            first.set()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await first.wait()
            await store.close()
    assert [e.object["metadata"]["name"] for e in got] == ["a"]
    with pytest.raises(StoreError, match="not open"):
        await store.get(PM, "a")


@pytest.mark.anyio
async def test_events_carry_a_lease_and_expire_with_it(etcd_cluster: EtcdCluster, etcd_prefix: str) -> None:
    async with open_store(etcd_cluster, etcd_prefix, event_ttl=1) as store:
        event = await store.record_event(EventRecord(PM, "hello", "u1", "Normal", "Started", "up"))
        again = await store.record_event(EventRecord(PM, "hello", "u1", "Normal", "Started", "up"))
        assert again["metadata"]["name"] == event["metadata"]["name"] and again["count"] == 2
        assert len(await store.list_events(PM, "hello")) == 1
        deadline = time.monotonic() + 20  # a safety net: etcd expires a 1 s lease within ~2 s
        while await store.list_events(PM, "hello"):
            assert time.monotonic() < deadline, "the event outlived its lease"
            await anyio.sleep(0.1)
        fresh = await store.record_event(EventRecord(PM, "hello", "u1", "Normal", "Started", "up"))
        assert fresh["count"] == 1, "the de-duplication index expired with the event"


@pytest.mark.anyio
async def test_sigkill_of_one_member_keeps_writes_going_and_loses_nothing_acknowledged(
    restore_members: EtcdCluster, etcd_prefix: str
) -> None:
    cluster = restore_members
    acknowledged: list[str] = []
    async with open_store(cluster, etcd_prefix) as store:
        watch = store.watch(PM, await store.current_resource_version())
        for i in range(20):
            acknowledged.append((await store.create(plugin(f"before{i}")))["metadata"]["name"])
        watched = [e.object["metadata"]["name"] for e in await take(watch, 20)]
        # The first member is the one this store talks to (its writes and its watch stream):
        # both must move to another member.
        cluster.kill(cluster.members[0], signal.SIGKILL)
        for i in range(20):
            acknowledged.append((await store.create(plugin(f"after{i}")))["metadata"]["name"])
        watched += [e.object["metadata"]["name"] for e in await take(watch, 20)]
        await watch.aclose()
        listed = [o["metadata"]["name"] for o in (await store.list(PM)).items]
    assert sorted(listed) == sorted(acknowledged)
    assert watched == acknowledged, "the watch resumed on another member with no gap and no repeat"
    cluster.restart(cluster.members[0])
    cluster.wait_healthy()
    # The restarted member caught up: a store that talks to it alone sees every object.
    only_first = f"etcd://{cluster.members[0].endpoint}{etcd_prefix}"
    async with EtcdStore(parse_store_url(only_first)) as store:
        assert sorted(o["metadata"]["name"] for o in (await store.list(PM)).items) == sorted(acknowledged)


@pytest.mark.anyio
async def test_losing_quorum_is_a_503_naming_etcd_and_nothing_acknowledged_is_lost(
    restore_members: EtcdCluster, etcd_prefix: str
) -> None:
    cluster = restore_members
    async with open_store(cluster, etcd_prefix, timeout=2.0) as store:
        kept = [await store.create(plugin(f"kept{i}")) for i in range(5)]
        for member in cluster.members[1:]:
            cluster.kill(member, signal.SIGKILL)
        with pytest.raises(StoreUnavailableError, match=r"^etcd at .* lost quorum") as caught:
            await store.create(plugin("during"))
        assert caught.value.code == 503
        for member in cluster.members[1:]:
            cluster.restart(member)
        cluster.wait_healthy()
        later = await store.create(plugin("later"))
        assert rv(later) > max(rv(o) for o in kept)
        names = {o["metadata"]["name"] for o in (await store.list(PM)).items}
    assert {o["metadata"]["name"] for o in kept} | {"later"} <= names


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        # A member that cannot reach quorum ends a linearizable read on its own deadline.
        (grpc.StatusCode.UNKNOWN, "context deadline exceeded"),
    ],
)
async def test_a_member_without_quorum_is_retried_until_the_deadline_then_a_503(
    code: grpc.StatusCode, details: str
) -> None:
    connection = EtcdConnection(parse_store_url("etcd://127.0.0.1:1,127.0.0.1:2"), timeout=0.2)
    tried: list[str] = []

    async def attempt(channel: Any, seconds: float) -> Any:
        tried.append(str(channel))
        raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)

    try:
        with pytest.raises(StoreUnavailableError, match=r"lost quorum"):
            await connection._call("a Range request", attempt)
    finally:
        await connection.close()
    assert len(tried) >= 2  # the other member too, not only the first


@pytest.mark.anyio
async def test_an_error_no_member_can_fix_is_refused_at_once() -> None:
    connection = EtcdConnection(parse_store_url("etcd://127.0.0.1:1"), timeout=5.0)
    tried = 0

    async def attempt(channel: Any, seconds: float) -> Any:
        nonlocal tried
        tried += 1
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(), "etcdserver: key is not provided"
        )

    try:
        with pytest.raises(StoreError, match=r"refused the request: etcdserver: key is not provided"):
            await connection._call("a Range request", attempt)
    finally:
        await connection.close()
    assert tried == 1


@pytest.mark.anyio
async def test_a_serving_store_compacts_history_older_than_one_interval(
    etcd_cluster: EtcdCluster, etcd_prefix: str
) -> None:
    async with open_store(etcd_cluster, etcd_prefix, compaction_interval=0.3) as store:
        first = await store.create(plugin("old"))
        async with anyio.create_task_group() as group:
            group.start_soon(store.maintain)
            # Keep writing: each round compacts to the revision the round before saw.
            deadline = time.monotonic() + 30  # a hang guard, not a speed check
            while True:
                await store.create(plugin(f"new{await store.current_resource_version()}"))
                try:
                    await take(store.watch(PM, rv(first)), 1)
                except GoneError:
                    break
                assert time.monotonic() < deadline, "history was never compacted"
                await anyio.sleep(0.1)
            group.cancel_scope.cancel()
        # What is recent still resumes: compaction keeps at least one interval of history.
        now = await store.current_resource_version()
        latest = await store.create(plugin("latest"))
        (event,) = await take(store.watch(PM, now), 1)
        assert event.object["metadata"]["name"] == "latest" and event.resource_version == rv(latest)


@pytest.mark.anyio
async def test_daemons_sharing_etcd_compact_once_per_round_between_them(
    etcd_cluster: EtcdCluster, etcd_prefix: str
) -> None:
    key = Keys(etcd_prefix).compaction
    a = EtcdConnection(parse_store_url(etcd_cluster.url + etcd_prefix))
    b = EtcdConnection(parse_store_url(etcd_cluster.url + etcd_prefix))
    try:
        state_a, state_b = CompactionState(), CompactionState()
        state_a, compacted = await compaction_round(a.kv, key, state_a)
        assert compacted is None  # the first round only records where history starts
        state_b, compacted = await compaction_round(b.kv, key, state_b)
        assert compacted is None and state_b.version == state_a.version == 1  # b lost: a had the turn
        rounds: list[tuple[int | None, int | None]] = []
        for _ in range(3):
            state_a, by_a = await compaction_round(a.kv, key, state_a)
            state_b, by_b = await compaction_round(b.kv, key, state_b)
            rounds.append((by_a, by_b))
        assert all((by_a is None) != (by_b is None) for by_a, by_b in rounds[1:]), rounds
    finally:
        await a.close()
        await b.close()
