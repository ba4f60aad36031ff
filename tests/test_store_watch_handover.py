"""Watchers of a ``write_all`` get the objects it stored without their JSON being decoded again
(SQLite: its watch fan-out is in-process; etcd's watchers decode what etcd sends them); every
other write's watchers get objects of their own (both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from mfx.store.base import BatchAction, BatchWrite
from mfx.store.sqlite import SQLiteStore
from tests.test_store import AnyStore, store, take

__all__ = ["store"]  # the fixture, imported for pytest

PM = "PluginManifest"


def _manifest(name: str) -> dict[str, object]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": PM, "metadata": {"name": name},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "x"}}


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "store.db") as opened:
        yield opened


@pytest.mark.anyio
async def test_write_all_hands_its_objects_to_watchers_as_stored(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    watch = store.watch(PM, 0)  # live from now: the changes as committed, not re-read from the log
    written = await store.write_all([BatchWrite(BatchAction.CREATE, _manifest(f"p{i}")) for i in range(3)])
    events = await take(watch, 3)
    assert [e.object for e in events] == written
    assert all(e.object is obj for e, obj in zip(events, written, strict=True))
    for event in events:  # what was handed over is exactly what the file holds
        stored = await store.get(PM, event.object["metadata"]["name"])
        assert orjson.dumps(stored) == orjson.dumps(event.object)


@pytest.mark.anyio
async def test_a_single_create_answers_with_an_object_watchers_do_not_share(store: AnyStore) -> None:
    watch = store.watch(PM, await store.current_resource_version())
    created = await store.create(_manifest("solo"))
    (event,) = await take(watch, 1)
    assert event.object == created and event.object is not created
