"""Stores that inject a fault behind the ``Store`` interface, for the tests that need one."""

from __future__ import annotations

from collections.abc import Iterable

from mfx.api.objects import Obj
from mfx.server.admission import Admission
from mfx.store.base import BatchWrite
from mfx.store.sqlite import SQLiteStore


class FaultyStore:
    """A real store, every call passed through but those a subclass puts a fault into."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def __getattr__(self, attribute: str) -> object:
        return getattr(self.store, attribute)


class RacingStore(FaultyStore):
    """A store in which another writer changes one object just before the first bulk write."""

    def __init__(self, store: SQLiteStore, name: str) -> None:
        super().__init__(store)
        self.name = name
        self.raced = False

    async def write_all(self, writes: list[BatchWrite]) -> list[Obj]:
        if not self.raced:
            self.raced = True
            live = await self.store.get("PluginManifest", self.name)
            live["metadata"].setdefault("labels", {})["touched"] = "meanwhile"
            await self.store.update(live)
        return await self.store.write_all(writes)


class StatusWritingStore(FaultyStore):
    """A store in which a controller writes the status of every object of a batch just before
    the batch is written, each time: as the reconciler does while it works through objects an
    earlier apply or sync changed."""

    def __init__(self, store: SQLiteStore) -> None:
        super().__init__(store)
        self.rounds = 0

    async def write_all(self, writes: list[BatchWrite]) -> list[Obj]:
        self.rounds += 1
        for write in writes:
            live = await self.store.get(write.obj["kind"], write.obj["metadata"]["name"])
            count = (live.get("status") or {}).get("restartCount", 0)
            await self.store.update_status({**live, "status": {"restartCount": count + 1}})
        return await self.store.write_all(writes)


async def create_admitted(store: SQLiteStore, objs: Iterable[Obj]) -> None:
    for obj in objs:
        await store.create(Admission().admit(obj))


async def assert_written_over_one_status_write(store: SQLiteStore, names: Iterable[str], version: str) -> None:
    """Each PluginManifest has the new spec, and the status the controller wrote once is kept."""
    for name in names:
        stored = await store.get("PluginManifest", name)
        assert stored["spec"]["version"] == version and stored["status"] == {"restartCount": 1}, stored
