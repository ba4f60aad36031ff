"""Every store keeps Kubernetes API-server semantics: SQLite on a real file, etcd on a real
cluster, and ``ApiStore`` over the HTTP API of a real daemon (what a node agent uses).

The ``store`` fixture runs each contract test on every backend; the few that ask for what
the HTTP API cannot give (an all-kinds watch) skip the API one, saying why. Tests that build a
``SQLiteStore`` themselves are about SQLite's own knobs (history_limit, watch_buffer,
event_limit, the file): the etcd equivalents are in tests/test_store_etcd.py."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from mfx.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    GoneError,
    InvalidSelectorError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from mfx.store import SCHEMA_VERSION, EventRecord, SQLiteStore, WatchEvent, WatchEventType
from mfx.store.api_store import ApiStore
from mfx.store.base import BatchAction, BatchWrite
from mfx.store.etcd import EtcdStore
from mfx.store.etcd_keys import parse_store_url
from tests.daemon_harness import api_store_on_daemon
from tests.etcd_env import EtcdCluster

PM = "PluginManifest"
SINK = "AudioSink"
FINALIZER = "mfx.musicfox.io/finalizer"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def plugin(
    name: str,
    *,
    version: str = "1.0.0",
    labels: dict[str, str] | None = None,
    finalizers: list[str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    if finalizers:
        metadata["finalizers"] = finalizers
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1",
        "kind": PM,
        "metadata": metadata,
        "spec": {"version": version, "type": "rpc", "entryPoint": "python -m hello"},
    }


def sink(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1",
        "kind": SINK,
        "metadata": {"name": name},
        "spec": {"device": "default", "rate": 48000},
    }


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


AnyStore = SQLiteStore | EtcdStore | ApiStore


@pytest.fixture(params=["sqlite", "etcd", "api"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AnyStore]:
    if request.param == "sqlite":
        async with SQLiteStore(tmp_path / "store.db") as opened:
            yield opened
        return
    if request.param == "api":
        async with api_store_on_daemon(tmp_path / "home") as api:
            yield api
        return
    cluster: EtcdCluster = request.getfixturevalue("etcd_cluster")
    prefix: str = request.getfixturevalue("etcd_prefix")
    async with EtcdStore(parse_store_url(cluster.url + prefix)) as etcd_store:
        yield etcd_store


async def take(events: AsyncIterator[WatchEvent], count: int) -> list[WatchEvent]:
    taken: list[WatchEvent] = []
    with anyio.fail_after(10):  # a hang guard, not a speed check
        async for event in events:
            taken.append(event)
            if len(taken) == count:
                break
    return taken


# --- create / get ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_create_then_get_round_trips_the_object(store: AnyStore) -> None:
    sent = plugin("hello", labels={"tier": "core"})
    created = await store.create(sent)
    fetched = await store.get(PM, "hello")
    assert fetched == created
    if isinstance(store, ApiStore):  # the API server fills in the CRD's defaults, as Kubernetes does
        assert fetched["spec"].items() >= sent["spec"].items()
    else:
        assert fetched["spec"] == sent["spec"]
    assert fetched["metadata"]["labels"] == {"tier": "core"}
    assert "uid" not in sent["metadata"], "the caller's dict must not be modified"
    fetched["spec"]["version"] = "9.9.9"
    assert (await store.get(PM, "hello"))["spec"]["version"] == "1.0.0", "returned dicts are copies"


@pytest.mark.anyio
async def test_create_sets_uid_timestamp_generation_and_string_resource_version(
    store: AnyStore,
) -> None:
    created = await store.create(plugin("hello"))
    metadata = created["metadata"]
    assert uuid.UUID(metadata["uid"]).version == 4
    assert RFC3339.match(metadata["creationTimestamp"])
    assert metadata["generation"] == 1
    assert isinstance(metadata["resourceVersion"], str) and int(metadata["resourceVersion"]) >= 1
    other = await store.create(plugin("other"))
    assert other["metadata"]["uid"] != metadata["uid"]


@pytest.mark.anyio
async def test_create_of_an_existing_name_is_already_exists(store: AnyStore) -> None:
    await store.create(plugin("hello"))
    with pytest.raises(
        AlreadyExistsError, match=r'^pluginmanifests "hello" already exists$'
    ) as caught:
        await store.create(plugin("hello"))
    assert caught.value.code == 409
    await store.create(sink("hello"))  # names are per kind


@pytest.mark.anyio
async def test_get_of_a_missing_object_is_not_found(store: AnyStore) -> None:
    with pytest.raises(NotFoundError, match=r'^audiosinks "nope" not found$') as caught:
        await store.get(SINK, "nope")
    assert caught.value.code == 404


@pytest.mark.anyio
async def test_objects_without_kind_or_name_are_bad_requests(store: AnyStore) -> None:
    with pytest.raises(BadRequestError, match="metadata.name"):
        await store.create({"kind": PM, "metadata": {}})
    with pytest.raises(BadRequestError, match="kind"):
        await store.create({"metadata": {"name": "x"}})


# --- resourceVersion and generation -----------------------------------------------------------


@pytest.mark.anyio
async def test_resource_version_increases_strictly_across_kinds_and_operations(
    store: AnyStore,
) -> None:
    seen = [await store.current_resource_version()]
    a = await store.create(plugin("a"))
    seen.append(rv(a))
    seen.append(rv(await store.create(sink("s"))))
    a["spec"]["version"] = "2.0.0"
    a = await store.update(a)
    seen.append(rv(a))
    seen.append(rv(await store.update_status({**a, "status": {"observedGeneration": 2}})))
    seen.append(
        rv(
            await store.record_event(
                EventRecord(PM, "a", a["metadata"]["uid"], "Normal", "Started", "up")
            )
        )
    )
    seen.append(rv(await store.delete(SINK, "s")))
    assert seen == sorted(set(seen)), f"not strictly increasing: {seen}"
    assert await store.current_resource_version() == seen[-1]
    assert (await store.list(PM)).resource_version == seen[-1]


@pytest.mark.anyio
async def test_generation_bumps_only_when_spec_changes(store: AnyStore) -> None:
    obj = await store.create(plugin("a"))
    obj["metadata"]["labels"] = {"team": "audio"}
    obj = await store.update(obj)
    assert obj["metadata"]["generation"] == 1
    obj["spec"]["priority"] = 5
    obj = await store.update(obj)
    assert obj["metadata"]["generation"] == 2
    obj = await store.update_status({**obj, "status": {"observedGeneration": 2}})
    assert obj["metadata"]["generation"] == 2
    obj["spec"] = {**obj["spec"]}  # equal content, new dict: still no change
    obj = await store.update(obj)
    assert obj["metadata"]["generation"] == 2


@pytest.mark.anyio
async def test_an_update_that_changes_nothing_keeps_the_resource_version(
    store: AnyStore,
) -> None:
    obj = await store.create(plugin("a", labels={"x": "1"}))
    before = await store.current_resource_version()
    again = await store.update(obj)
    assert again == obj
    same_status = await store.update_status(obj)
    assert same_status == obj
    assert await store.current_resource_version() == before
    # And no watch event was written for it: the next change follows directly.
    await store.create(plugin("b"))
    (event,) = await take(store.watch(PM, before), 1)
    assert event.resource_version == before + 1
    assert event.object["metadata"]["name"] == "b"


# --- optimistic concurrency and status ----------------------------------------------------------


@pytest.mark.anyio
async def test_a_stale_resource_version_is_a_conflict_for_update_and_update_status(
    store: AnyStore,
) -> None:
    stale = await store.create(plugin("a"))
    fresh = {**stale, "spec": {**stale["spec"], "version": "2.0.0"}}
    await store.update(fresh)
    expected = (
        r'^Operation cannot be fulfilled on pluginmanifests "a": the object has been modified; '
        r"please apply your changes to the latest version and try again$"
    )
    stale["spec"]["version"] = "3.0.0"
    with pytest.raises(ConflictError, match=expected) as caught:
        await store.update(stale)
    assert caught.value.code == 409
    with pytest.raises(ConflictError, match=expected):
        await store.update_status({**stale, "status": {"observedGeneration": 1}})
    assert (await store.get(PM, "a"))["spec"]["version"] == "2.0.0"
    # Without a resourceVersion the write is unconditional.
    del stale["metadata"]["resourceVersion"]
    assert (await store.update(stale))["spec"]["version"] == "3.0.0"


@pytest.mark.anyio
async def test_a_batch_update_from_a_base_passes_a_controllers_write_but_not_a_spec_or_label_change(
    store: AnyStore,
) -> None:
    if isinstance(store, ApiStore):
        pytest.skip("a remote store writes each object by a request of its own and answers the conflict")
    base = await store.create(plugin("a"))
    reported = await store.update_status({**base, "status": {"observedGeneration": 1}})
    # A controller adds its finalizer too.
    reported = await store.update({**reported, "metadata": {**reported["metadata"], "finalizers": [FINALIZER]}})

    def applied(version: str) -> dict[str, Any]:
        return {**base, "metadata": dict(base["metadata"]), "spec": {**base["spec"], "version": version}}

    # Only the status and finalizers moved since the base: the update goes through and keeps them.
    [updated] = await store.write_all([BatchWrite(BatchAction.UPDATE, applied("2.0.0"), base)])
    assert updated["spec"]["version"] == "2.0.0"
    assert updated["status"] == reported["status"]
    assert updated["metadata"]["finalizers"] == [FINALIZER]
    assert rv(updated) > rv(reported)
    # An update that sets finalizers itself is not rebased onto the controller's.
    own_finalizers = applied("2.5.0")
    own_finalizers["metadata"]["finalizers"] = ["example.com/other"]
    with pytest.raises(ConflictError):
        await store.write_all([BatchWrite(BatchAction.UPDATE, own_finalizers, base)])
    # Without the base the same stale write is a conflict, as a single update is.
    with pytest.raises(ConflictError):
        await store.write_all([BatchWrite(BatchAction.UPDATE, applied("3.0.0"))])
    # Anything else changed since the base (here a label) is a conflict, base or not.
    await store.update({**updated, "metadata": {**updated["metadata"], "labels": {"x": "1"}}})
    relabelled = await store.get(PM, "a")
    stale = {**relabelled, "metadata": {**relabelled["metadata"], "resourceVersion": updated["metadata"]["resourceVersion"],
                                        "labels": {}}, "spec": {**updated["spec"], "version": "4.0.0"}}
    with pytest.raises(ConflictError):
        await store.write_all([BatchWrite(BatchAction.UPDATE, stale, updated)])
    assert await store.get(PM, "a") == relabelled


@pytest.mark.anyio
async def test_update_never_touches_status_or_server_owned_metadata(store: AnyStore) -> None:
    created = await store.create(plugin("a", finalizers=[FINALIZER]))
    with_status = await store.update_status(
        {**created, "status": {"observedGeneration": 1, "restartCount": 2}}
    )
    deleting = await store.delete(PM, "a")
    attempt = {
        **deleting,
        "status": {"restartCount": 99},
        "metadata": {
            **deleting["metadata"],
            "uid": "forged",
            "creationTimestamp": "2000-01-01T00:00:00Z",
            "generation": 42,
            "labels": {"new": "label"},
        },
        "spec": {**deleting["spec"], "version": "2.0.0"},
    }
    del attempt["metadata"]["deletionTimestamp"]
    updated = await store.update(attempt)
    assert updated["status"] == with_status["status"]
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    assert updated["metadata"]["deletionTimestamp"] == deleting["metadata"]["deletionTimestamp"]
    assert updated["metadata"]["generation"] == deleting["metadata"]["generation"] + 1
    assert updated["metadata"]["labels"] == {"new": "label"}
    assert updated["spec"]["version"] == "2.0.0"


@pytest.mark.anyio
async def test_update_status_never_touches_spec_or_metadata(store: AnyStore) -> None:
    created = await store.create(plugin("a", labels={"x": "1"}))
    changed = {
        **created,
        "spec": {"version": "9.9.9"},
        "metadata": {**created["metadata"], "labels": {}},
        "status": {"observedGeneration": 1},
    }
    updated = await store.update_status(changed)
    assert updated["spec"] == created["spec"]
    assert updated["metadata"]["labels"] == {"x": "1"}
    assert updated["metadata"]["generation"] == 1
    assert updated["status"] == {"observedGeneration": 1}
    assert await store.get(PM, "a") == updated


@pytest.mark.anyio
async def test_update_of_a_missing_object_is_not_found(store: AnyStore) -> None:
    with pytest.raises(NotFoundError):
        await store.update(plugin("ghost"))
    with pytest.raises(NotFoundError):
        await store.update_status(plugin("ghost"))


# --- delete and finalizers ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_delete_without_finalizers_removes_and_returns_the_last_state(
    store: AnyStore,
) -> None:
    created = await store.create(plugin("a"))
    deleted = await store.delete(PM, "a")
    assert deleted["spec"] == created["spec"]
    assert rv(deleted) > rv(created)
    with pytest.raises(NotFoundError):
        await store.get(PM, "a")
    with pytest.raises(NotFoundError):
        await store.delete(PM, "a")
    (event,) = await take(store.watch(PM, rv(created)), 1)
    assert event.type is WatchEventType.DELETED and event.resource_version == rv(deleted)


@pytest.mark.anyio
async def test_delete_with_a_stale_precondition_is_a_conflict(store: AnyStore) -> None:
    created = await store.create(plugin("a"))
    await store.update({**created, "spec": {**created["spec"], "version": "2.0.0"}})
    with pytest.raises(ConflictError, match="precondition"):
        await store.delete(PM, "a", resource_version=rv(created))
    await store.get(PM, "a")


@pytest.mark.anyio
async def test_finalizers_hold_the_object_until_the_last_one_is_removed(store: AnyStore) -> None:
    created = await store.create(plugin("a", finalizers=[FINALIZER, "example.com/other"]))
    marked = await store.delete(PM, "a")
    assert RFC3339.match(marked["metadata"]["deletionTimestamp"])
    assert marked["metadata"]["generation"] == created["metadata"]["generation"] + 1
    assert await store.get(PM, "a") == marked
    assert await store.delete(PM, "a") == marked, "a second delete changes nothing"

    with pytest.raises(ValidationError, match="no new finalizers"):
        await store.update(
            {
                **marked,
                "metadata": {
                    **marked["metadata"],
                    "finalizers": [FINALIZER, "x.io/y", "example.com/other"],
                },
            }
        )

    one_left = await store.update(
        {**marked, "metadata": {**marked["metadata"], "finalizers": ["example.com/other"]}}
    )
    assert await store.get(PM, "a") == one_left
    gone = await store.update({**one_left, "metadata": {**one_left["metadata"], "finalizers": []}})
    with pytest.raises(NotFoundError):
        await store.get(PM, "a")
    events = await take(store.watch(PM, rv(created)), 3)
    assert [e.type for e in events] == [
        WatchEventType.MODIFIED,
        WatchEventType.MODIFIED,
        WatchEventType.DELETED,
    ]
    assert events[-1].resource_version == rv(gone)


# --- list ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_list_filters_by_label_selector_and_sorts_by_name(store: AnyStore) -> None:
    await store.create(plugin("c", labels={"tier": "core", "env": "prod"}))
    await store.create(plugin("a", labels={"tier": "extra"}))
    await store.create(plugin("b", labels={"tier": "core"}))
    await store.create(plugin("d"))
    await store.create(sink("sink-a"))

    async def names(selector: str | None) -> list[str]:
        return [
            o["metadata"]["name"] for o in (await store.list(PM, label_selector=selector)).items
        ]

    assert await names(None) == ["a", "b", "c", "d"]
    assert await names("tier=core") == ["b", "c"]
    assert await names("tier==core,env=prod") == ["c"]
    assert await names("tier!=core") == ["a", "d"]
    assert await names("tier in (core, extra)") == ["a", "b", "c"]
    assert await names("tier notin (core)") == ["a", "d"]
    assert await names("tier") == ["a", "b", "c"]
    assert await names("!tier") == ["d"]
    with pytest.raises(InvalidSelectorError, match="invalid label selector"):
        await store.list(PM, label_selector="tier in (")


@pytest.mark.anyio
@pytest.mark.parametrize("selector", [None, "keep=yes"])
async def test_paging_with_limit_and_continue_returns_every_object_once(
    store: AnyStore, selector: str | None
) -> None:
    expected = []
    for i in range(23):
        keep = i % 3 != 0
        await store.create(plugin(f"p{i:02d}", labels={"keep": "yes" if keep else "no"}))
        if selector is None or keep:
            expected.append(f"p{i:02d}")
    pages: list[list[str]] = []
    token = None
    while True:
        result = await store.list(PM, label_selector=selector, limit=4, continue_token=token)
        assert result.resource_version == await store.current_resource_version()
        pages.append([o["metadata"]["name"] for o in result.items])
        token = result.continue_token
        if token is None:
            break
        # Writes between pages do not disturb the walk.
        await store.update_status({**result.items[0], "status": {"seen": True}})
    assert [name for page in pages for name in page] == expected
    assert all(len(page) == 4 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 4
    with pytest.raises(BadRequestError, match="continue token"):
        await store.list(PM, limit=4, continue_token="not-a-token")


# --- watch -------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_watch_replays_from_a_resource_version_then_follows_live_writes(
    store: AnyStore,
) -> None:
    await store.create(plugin("before"))
    start = await store.current_resource_version()
    for name in ("a", "b", "c"):
        await store.create(plugin(name))
    await store.create(sink("not-a-plugin"))
    received: list[WatchEvent] = []
    got_replay = anyio.Event()
    got_all = anyio.Event()

    async def consume() -> None:
        async with store.watch(PM, start) as events:
            async for event in events:
                received.append(event)
                if len(received) == 3:
                    got_replay.set()
                if len(received) == 5:
                    got_all.set()
                    return

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await got_replay.wait()
            await store.create(plugin("d"))
            obj = await store.get(PM, "a")
            await store.update({**obj, "spec": {**obj["spec"], "version": "2.0.0"}})
            await got_all.wait()
    assert [(e.type, e.object["metadata"]["name"]) for e in received] == [
        (WatchEventType.ADDED, "a"),
        (WatchEventType.ADDED, "b"),
        (WatchEventType.ADDED, "c"),
        (WatchEventType.ADDED, "d"),
        (WatchEventType.MODIFIED, "a"),
    ]
    versions = [e.resource_version for e in received]
    assert versions == sorted(versions) and versions[0] > start
    assert all(e.resource_version == rv(e.object) for e in received)
    assert store.watchers == 0


@pytest.mark.anyio
async def test_a_watch_from_the_resource_version_of_a_list_misses_nothing(
    store: AnyStore,
) -> None:
    listed = await store.list(PM)  # an empty, fresh store too has a version to watch from
    assert listed.items == [] and listed.resource_version > 0
    await store.create(plugin("first"))
    (event,) = await take(store.watch(PM, listed.resource_version), 1)
    assert (event.type, event.object["metadata"]["name"]) == (WatchEventType.ADDED, "first")


@pytest.mark.anyio
async def test_watch_of_all_kinds_from_zero_starts_now(store: AnyStore) -> None:
    if isinstance(store, ApiStore):
        pytest.skip("the Kubernetes API watches one kind at a time; informers watch each kind")
    await store.create(plugin("old"))
    events = store.watch(None, 0)
    await store.create(sink("new-sink"))
    await store.create(plugin("new-plugin"))
    got = await take(events, 2)
    assert [(e.object["kind"], e.object["metadata"]["name"]) for e in got] == [
        (SINK, "new-sink"),
        (PM, "new-plugin"),
    ]


@pytest.mark.anyio
async def test_a_resumed_watch_has_no_gap_and_no_duplicate(store: AnyStore) -> None:
    start = await store.current_resource_version()
    for i in range(5):
        await store.create(plugin(f"p{i}"))
    first = await take(store.watch(PM, start), 2)  # break closes it
    assert store.watchers == 0
    for i in range(5, 8):
        await store.create(plugin(f"p{i}"))
    resumed = await take(store.watch(PM, first[-1].resource_version), 6)
    names = [e.object["metadata"]["name"] for e in first + resumed]
    assert names == [f"p{i}" for i in range(8)]


@pytest.mark.anyio
@pytest.mark.parametrize("buffer", [1, 4, 1024])
async def test_a_watch_under_concurrent_writes_sees_every_change_once_in_order(
    tmp_path: Path, buffer: int
) -> None:
    """Replay, the switch to live changes, and buffer overflows lose and repeat nothing."""
    async with SQLiteStore(tmp_path / "store.db", watch_buffer=buffer) as store:
        await watch_sees_concurrent_writes_once_in_order(store, backlog=600, total=200)  # 600: over a log page


async def watch_sees_concurrent_writes_once_in_order(store: AnyStore, *, backlog: int, total: int) -> None:
    """``backlog`` writes, then a watch from just after the 10th of them while ``total`` more
    are written: it sees every change after its start once, in order, and is released."""
    start = await store.current_resource_version()
    for i in range(backlog):
        await store.create(plugin(f"early{i}"))
    last = start + backlog + total
    received: list[int] = []

    async def write() -> None:
        for i in range(total):
            await store.create(sink(f"s{i}"))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg, store.watch(None, start + 10) as events:
            tg.start_soon(write)
            async for event in events:
                received.append(event.resource_version)
                if event.resource_version == last:
                    break
    assert received == list(range(start + 11, last + 1))
    assert store.watchers == 0


@pytest.mark.anyio
async def test_a_compacted_resource_version_is_gone(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "store.db", history_limit=5) as store:
        start = await store.current_resource_version()
        for i in range(12):
            await store.create(plugin(f"p{i}"))
        with pytest.raises(GoneError, match=f"too old resource version: {start + 3}") as caught:
            store.watch(PM, start + 3)
        assert caught.value.code == 410
        # The 5 newest changes are kept: a watch from just before them still gets each one.
        got = await take(store.watch(PM, start + 7), 5)
        assert [e.resource_version for e in got] == [start + n for n in range(8, 13)]


@pytest.mark.anyio
async def test_a_watcher_left_behind_past_the_history_is_ended_with_gone(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "store.db", history_limit=10, watch_buffer=2) as store:
        start = await store.current_resource_version()
        events = store.watch(PM, 0)
        for i in range(30):  # writers never wait for the watcher
            await store.create(plugin(f"p{i}"))
        got: list[int] = []
        with pytest.raises(GoneError):
            async for event in events:
                got.append(event.resource_version)
        assert got == [start + 1, start + 2], "the buffered changes come first, then 410"
        assert store.watchers == 0


@pytest.mark.anyio
async def test_closing_the_store_ends_its_watches(tmp_path: Path) -> None:
    store = await SQLiteStore(tmp_path / "store.db").open()
    events = store.watch(None, 0)
    await store.create(plugin("a"))
    await store.close()
    got = [e async for e in events]
    assert [e.object["metadata"]["name"] for e in got] == ["a"]
    with pytest.raises(StoreError, match="not open"):
        await store.get(PM, "a")


# --- events ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_repeated_events_are_counted_on_one_event_object(store: AnyStore) -> None:
    obj = await store.create(plugin("hello"))
    uid = obj["metadata"]["uid"]
    watch = store.watch("Event", 0)
    first = await store.record_event(
        EventRecord(PM, "hello", uid, "Warning", "BackOff", "restarting", "plugin-controller")
    )
    assert re.fullmatch(r"hello\.[0-9a-f]{16}", first["metadata"]["name"])
    assert first["kind"] == "Event" and first["apiVersion"] == "v1"
    assert first["involvedObject"] == {
        "kind": PM,
        "name": "hello",
        "uid": uid,
        "apiVersion": "mfx.musicfox.io/v1alpha1",
    }
    assert first["count"] == 1 and first["source"] == {"component": "plugin-controller"}
    assert (
        RFC3339.match(first["firstTimestamp"]) and first["firstTimestamp"] == first["lastTimestamp"]
    )
    for _ in range(2):
        again = await store.record_event(
            EventRecord(PM, "hello", uid, "Warning", "BackOff", "restarting", "plugin-controller")
        )
    assert again["metadata"]["name"] == first["metadata"]["name"]
    assert again["count"] == 3 and again["lastTimestamp"] >= again["firstTimestamp"]
    other = await store.record_event(
        EventRecord(PM, "hello", uid, "Warning", "BackOff", "restarting again")
    )
    assert other["metadata"]["name"] != first["metadata"]["name"]
    await store.record_event(EventRecord(SINK, "card", "u2", "Normal", "Opened", "hw:0"))

    assert [e["count"] for e in await store.list_events(PM, "hello")] == [3, 1]
    assert [e["involvedObject"]["name"] for e in await store.list_events(involved_kind=SINK)] == [
        "card"
    ]
    assert len(await store.list_events()) == 3
    assert len((await store.list("Event")).items) == 3
    seen = await take(watch, 5)
    assert [e.type for e in seen] == [
        WatchEventType.ADDED,
        WatchEventType.MODIFIED,
        WatchEventType.MODIFIED,
        WatchEventType.ADDED,
        WatchEventType.ADDED,
    ]
    assert seen[2].object["count"] == 3


@pytest.mark.anyio
async def test_the_oldest_events_are_dropped_beyond_the_limit(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "store.db", event_limit=5) as store:
        for i in range(5):
            await store.record_event(EventRecord(PM, f"p{i}", "u", "Normal", "Started", "up"))
        since = await store.current_resource_version()
        await store.record_event(
            EventRecord(PM, "p0", "u", "Normal", "Started", "up")
        )  # p0 is recent again
        await store.record_event(EventRecord(PM, "p5", "u", "Normal", "Started", "up"))
        await store.record_event(EventRecord(PM, "p6", "u", "Normal", "Started", "up"))
        kept = await store.list_events()
        assert [e["involvedObject"]["name"] for e in kept] == ["p3", "p4", "p0", "p5", "p6"]
        assert len((await store.list("Event")).items) == 5
        changes = await take(store.watch("Event", since), 5)
        assert [(c.type, c.object["involvedObject"]["name"]) for c in changes] == [
            (WatchEventType.MODIFIED, "p0"),
            (WatchEventType.ADDED, "p5"),
            (WatchEventType.DELETED, "p1"),
            (WatchEventType.ADDED, "p6"),
            (WatchEventType.DELETED, "p2"),
        ]


@pytest.mark.anyio
async def test_a_restart_of_500_plugins_counts_their_repeated_events_with_the_default_limit(tmp_path: Path) -> None:
    """A restarted daemon tells each plugin's start again, after it told some news of its own
    (a plugin waiting for another): every repeat is counted on the Event it repeats, none is
    written anew (at a limit near one round of starts, the repeats' Events went first)."""
    starts = [EventRecord(PM, f"p{i:03d}", f"u{i}", "Normal", reason, message)
              for i in range(500) for reason, message in (("Starting", "starting 1.0.0"), ("Running", "1.0.0 running"))]
    async with SQLiteStore(tmp_path / "store.db") as store:
        for batch in range(0, len(starts), 50):
            async with anyio.create_task_group() as group:
                for record in starts[batch:batch + 50]:
                    group.start_soon(store.record_event, record)
        since = await store.current_resource_version()
        for i in range(50):
            await store.record_event(EventRecord(PM, f"p{i:03d}", f"u{i}", "Warning", "DependencyNotReady", "waiting"))
        for batch in range(0, len(starts), 50):
            async with anyio.create_task_group() as group:
                for record in starts[batch:batch + 50]:
                    group.start_soon(store.record_event, record)
        changes = await take(store.watch("Event", since), 50 + len(starts))
    assert {c.type for c in changes[50:]} == {WatchEventType.MODIFIED}
    assert {c.object["count"] for c in changes[50:]} == {2}


@pytest.mark.anyio
async def test_events_written_in_one_commit_are_deduplicated_and_kept_within_the_limit(tmp_path: Path) -> None:
    """Writes made together share a commit (group commit): the repeats among them still find
    each other, and the limit still holds once the commit is in."""
    async with SQLiteStore(tmp_path / "store.db", event_limit=9) as store:
        a = await store.create(plugin("a"))
        once = EventRecord(PM, "a", a["metadata"]["uid"], "Normal", "Pulled", "found 1.0.0")
        twice = EventRecord(PM, "a", a["metadata"]["uid"], "Normal", "Starting", "starting 1.0.0")
        await store.write_status({**a, "status": {"phase": "x"}}, [once, twice, twice])
        async with anyio.create_task_group() as group:
            for i in range(12):  # p0..p5, each twice
                group.start_soon(store.record_event, EventRecord(PM, f"p{i % 6}", "u", "Normal", "Started", "up"))
        events = await store.list_events()
        assert sorted((e["involvedObject"]["name"], e["reason"], e["count"]) for e in events) == [
            ("a", "Pulled", 1), ("a", "Starting", 2), *((f"p{i}", "Started", 2) for i in range(6))]
        async with anyio.create_task_group() as group:
            for i in range(5):
                group.start_soon(store.record_event, EventRecord(PM, f"q{i}", "u", "Normal", "Started", "up"))
        kept = await store.list_events()
        assert len(kept) == 9
        assert len((await store.list("Event")).items) == 9
        assert {f"q{i}" for i in range(5)} <= {e["involvedObject"]["name"] for e in kept}
        assert "a" not in {e["involvedObject"]["name"] for e in kept}  # the ones that occurred longest ago


# --- the file ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_reopening_the_file_keeps_everything_and_the_counter_continues(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    async with SQLiteStore(path) as store:
        start = await store.current_resource_version()
        a = await store.create(plugin("a", labels={"x": "1"}, finalizers=[FINALIZER]))
        a = await store.update_status({**a, "status": {"observedGeneration": 1}})
        await store.create(sink("s"))
        event = await store.record_event(
            EventRecord(PM, "a", a["metadata"]["uid"], "Normal", "Started", "up")
        )
        last = await store.current_resource_version()
        everything = [*(await store.list(PM)).items, *(await store.list(SINK)).items]
    async with SQLiteStore(path) as store:
        assert await store.current_resource_version() == last
        assert [*(await store.list(PM)).items, *(await store.list(SINK)).items] == everything
        again = await store.record_event(
            EventRecord(PM, "a", a["metadata"]["uid"], "Normal", "Started", "up")
        )
        assert again["metadata"]["name"] == event["metadata"]["name"] and again["count"] == 2
        b = await store.create(plugin("b"))
        assert rv(b) == last + 2
        replayed = await take(store.watch(None, start), 6)
        assert [e.resource_version for e in replayed] == [start + n for n in range(1, 7)]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.anyio
async def test_files_the_store_cannot_use_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this mfx"):
        await SQLiteStore(newer).open()

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(StoreError, match="did not create"):
        await SQLiteStore(foreign).open()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database file at all" * 200)
    with pytest.raises(StoreError, match="garbage.db"):
        await SQLiteStore(garbage).open()
