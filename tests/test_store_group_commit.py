"""Group commit in the SQLite store: writes queued together commit in one transaction, yet each
caller gets its own outcome, watchers see every change in order, and acknowledged writes last."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from mfx.errors import AlreadyExistsError, ConflictError, NotFoundError, StoreError
from mfx.store import SQLiteStore, WatchEventType, sqlite_database
from tests.test_store import PM, plugin

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the real store commits (the real method runs unchanged)."""
    sizes: list[int] = []
    real = sqlite_database.Database.write_batch

    def observed(self: Any, ops: list[Any], *args: Any) -> Any:
        sizes.append(len(ops))
        return real(self, ops, *args)

    monkeypatch.setattr(sqlite_database.Database, "write_batch", observed)
    return sizes


async def test_a_failing_op_leaves_the_rest_of_its_batch_committed_and_each_caller_gets_its_own_result(
    store: SQLiteStore, batches: list[int]
) -> None:
    existing = await store.create(plugin("existing"))
    stale = dict(existing, metadata=dict(existing["metadata"], resourceVersion="1"))
    stale["spec"] = dict(existing["spec"], version="9.9.9")
    outcomes: dict[str, Any] = {}

    async def run(label: str, write: Any) -> None:
        try:
            outcomes[label] = await write
        except Exception as error:  # each caller's own outcome, success or failure
            outcomes[label] = error

    batches.clear()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "lead", store.create(plugin("lead")))
        tg.start_soon(run, "before", store.create(plugin("before")))
        tg.start_soon(run, "duplicate", store.create(plugin("existing")))
        tg.start_soon(run, "conflict", store.update(stale))
        tg.start_soon(run, "missing", store.update(plugin("ghost")))
        tg.start_soon(run, "missing-delete", store.delete(PM, "ghost"))
        tg.start_soon(run, "after", store.create(plugin("after")))

    # Queued in one pass of the event loop, they commit together (the leader may or may not
    # have taken its batch before the others queued: at least six of the seven share one).
    assert sum(batches) == 7 and max(batches) >= 6, batches
    assert isinstance(outcomes["duplicate"], AlreadyExistsError)
    assert isinstance(outcomes["conflict"], ConflictError)
    assert isinstance(outcomes["missing"], NotFoundError)
    assert isinstance(outcomes["missing-delete"], NotFoundError)
    for label in ("lead", "before", "after"):
        assert outcomes[label]["metadata"]["name"] == label
    # The writes around the failures are committed, in order, with consecutive versions.
    before, after = int(outcomes["before"]["metadata"]["resourceVersion"]), int(
        outcomes["after"]["metadata"]["resourceVersion"])
    assert after == before + 1, "the failed ops took no resourceVersion"
    assert (await store.get(PM, "existing"))["spec"]["version"] == "1.0.0", "the conflicting update left no trace"
    names = [o["metadata"]["name"] for o in (await store.list(PM)).items]
    assert names == ["after", "before", "existing", "lead"]


async def test_concurrent_writes_from_many_tasks_are_watched_in_resource_version_order_without_gaps(
    store: SQLiteStore, batches: list[int]
) -> None:
    start = await store.current_resource_version()
    writers, rounds = 40, 5
    watch = store.watch(PM, start)
    seen: list[tuple[int, WatchEventType, str, str]] = []

    async def writer(i: int) -> None:
        obj = await store.create(plugin(f"p{i:02d}"))
        for r in range(1, rounds):
            obj["spec"]["version"] = f"1.0.{r}"
            obj = await store.update(obj)

    async with anyio.create_task_group() as tg:
        for i in range(writers):
            tg.start_soon(writer, i)
    async with watch:
        async for event in watch:
            seen.append((event.resource_version, event.type, event.object["metadata"]["name"],
                         event.object["spec"]["version"]))
            if len(seen) == writers * rounds:
                break

    versions = [rv for rv, *_ in seen]
    assert versions == list(range(start + 1, start + 1 + writers * rounds)), "every change, in order, no gap"
    assert any(size > 1 for size in batches), "the writes were group-committed"
    for i in range(writers):
        mine = [(kind, version) for _, kind, name, version in seen if name == f"p{i:02d}"]
        assert mine == [(WatchEventType.ADDED, "1.0.0")] + [
            (WatchEventType.MODIFIED, f"1.0.{r}") for r in range(1, rounds)], "each object's changes in order"


async def test_watchers_share_one_object_per_change_and_a_get_returns_a_private_copy(store: SQLiteStore) -> None:
    start = await store.current_resource_version()
    first, second = store.watch(PM, start), store.watch(PM, start)
    await store.create(plugin("shared"))
    async with first, second:
        a = await first.__anext__()
        b = await second.__anext__()
    assert a.object == b.object and a.resource_version == b.resource_version
    mine = await store.get(PM, "shared")
    mine["spec"]["version"] = "2.0.0"  # a caller may change what get returns...
    assert (await store.get(PM, "shared"))["spec"]["version"] == "1.0.0"  # ...without touching the store
    assert a.object["spec"]["version"] == "1.0.0", "or what watchers were handed"


async def test_an_acknowledged_write_survives_reopening_the_store(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with SQLiteStore(path) as store:
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(store.create, plugin(f"p{i:02d}"))
        obj = await store.get(PM, "p07")
        obj["spec"]["version"] = "2.0.0"
        acknowledged = await store.update(obj)
        with pytest.raises(AlreadyExistsError):
            await store.create(plugin("p03"))
        rv = await store.current_resource_version()
    async with SQLiteStore(path) as reopened:
        assert await reopened.current_resource_version() == rv
        again = await reopened.get(PM, "p07")
        assert again["spec"]["version"] == "2.0.0"
        assert again["metadata"]["resourceVersion"] == acknowledged["metadata"]["resourceVersion"]
        assert len((await reopened.list(PM)).items) == 20


async def test_an_op_failing_after_it_wrote_is_undone_alone_and_the_rest_of_the_batch_commits(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with SQLiteStore(path):
        pass  # creates the schema
    # A real SQLite failure half-way through one op: its object row is written, its log row fails.
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TRIGGER poison BEFORE INSERT ON changes WHEN NEW.name = 'poison'"
                     " BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
    async with SQLiteStore(path) as store:
        start = await store.current_resource_version()
        outcomes: dict[str, Any] = {}

        async def run(name: str) -> None:
            try:
                outcomes[name] = await store.create(plugin(name))
            except Exception as error:  # each caller's own outcome, success or failure
                outcomes[name] = error

        async with anyio.create_task_group() as tg:
            for name in ("a", "poison", "b"):
                tg.start_soon(run, name)
        assert isinstance(outcomes["poison"], StoreError) and "injected failure" in str(outcomes["poison"])
        assert [outcomes[n]["metadata"]["resourceVersion"] for n in ("a", "b")] == [str(start + 1), str(start + 2)]
        with pytest.raises(NotFoundError):
            await store.get(PM, "poison")
    async with SQLiteStore(path) as reopened:
        assert sorted(o["metadata"]["name"] for o in (await reopened.list(PM)).items) == ["a", "b"]
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM objects WHERE name = 'poison'").fetchone()[0] == 0
