"""``Store.write_status``: a status, the events about it and (optionally) a finalizer in one commit,
on both backends (the ``store`` fixture of tests/test_store.py)."""

from __future__ import annotations

from typing import Any

import pytest

from mfx.errors import ConflictError
from mfx.store import EventRecord, WatchEventType
from mfx.store.etcd import EtcdStore
from tests.test_store import AnyStore, store

__all__ = ["store"]  # the fixture, imported for pytest

pytestmark = pytest.mark.anyio

PM = "PluginManifest"
FINALIZER = "mfx.musicfox.io/finalizer"


def plugin(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1",
        "kind": PM,
        "metadata": {"name": name},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m hello"},
    }


def event(obj: dict[str, Any], reason: str) -> EventRecord:
    meta = obj["metadata"]
    return EventRecord(PM, meta["name"], meta["uid"], "Normal", reason, f"{reason} happened")


async def test_status_and_events_take_consecutive_versions_of_one_commit(store: AnyStore) -> None:
    created = await store.create(plugin("a"))
    before = await store.current_resource_version()
    sent = {**created, "status": {"phase": "Starting"}}
    written = await store.write_status(sent, [event(created, "Starting"), event(created, "Waiting")])
    assert written["status"] == {"phase": "Starting"}
    assert int(written["metadata"]["resourceVersion"]) == before + 1
    # One commit: SQLite numbers each of its rows, etcd gives the transaction one revision.
    on_etcd = isinstance(store, EtcdStore)
    assert await store.current_resource_version() == before + (1 if on_etcd else 3)
    versions = sorted(int(e["metadata"]["resourceVersion"]) for e in await store.list_events(PM, "a"))
    assert versions == ([before + 1, before + 1] if on_etcd else [before + 2, before + 3])
    reasons = {e["reason"] for e in await store.list_events(PM, "a")}
    assert reasons == {"Starting", "Waiting"}


async def test_status_write_keeps_metadata_and_spec(store: AnyStore) -> None:
    created = await store.create(plugin("a"))
    sent = {**created, "status": {"phase": "Ready"}, "spec": {"version": "9.9.9"},
            "metadata": {**created["metadata"], "labels": {"x": "y"}}}
    written = await store.write_status(sent)
    assert written["spec"] == created["spec"]
    assert "labels" not in written["metadata"]


async def test_with_metadata_adds_the_finalizer_with_the_status_and_keeps_the_generation(
    store: AnyStore,
) -> None:
    created = await store.create(plugin("a"))
    watch = store.watch(PM, await store.current_resource_version())
    sent = {**created, "status": {"phase": "Ready"}, "spec": {"version": "9.9.9"},
            "metadata": {**created["metadata"], "finalizers": [FINALIZER]}}
    written = await store.write_status(sent, with_metadata=True)
    assert written["metadata"]["finalizers"] == [FINALIZER]
    assert written["metadata"]["generation"] == 1
    assert written["spec"] == created["spec"], "the spec is not written through a status write"
    assert written["status"] == {"phase": "Ready"}
    async for change in watch:  # the finalizer is stored no later than the status it guards
        assert change.type is WatchEventType.MODIFIED
        assert change.object["metadata"]["finalizers"] == [FINALIZER]
        if "status" in change.object:  # over the API, the finalizer's own write comes first
            assert change.object["status"] == {"phase": "Ready"}
            break


async def test_a_stale_write_changes_nothing_and_records_nothing(store: AnyStore) -> None:
    created = await store.create(plugin("a"))
    await store.write_status({**created, "status": {"phase": "Starting"}})
    with pytest.raises(ConflictError):
        await store.write_status({**created, "status": {"phase": "Ready"}}, [event(created, "Ready")])
    assert (await store.get(PM, "a"))["status"] == {"phase": "Starting"}
    assert await store.list_events(PM, "a") == []


async def test_events_alone_are_recorded_when_the_status_is_unchanged(store: AnyStore) -> None:
    created = await store.create(plugin("a"))
    written = await store.write_status(created, [event(created, "Noticed")])
    assert written["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert [e["reason"] for e in await store.list_events(PM, "a")] == ["Noticed"]
