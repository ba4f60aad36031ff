"""The SQLite store's write-ahead log is checkpointed by the daemon's upkeep, off the commit path."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mfx.server.daemon import store_upkeep
from mfx.store import sqlite_checkpoint
from mfx.store.base import MaintainedStore
from mfx.store.sqlite import SQLiteStore
from mfx.store.sqlite_checkpoint import Checkpoint, Checkpointer
from observability.fastmetrics import render_registry
from observability.metrics import Metrics

pytestmark = pytest.mark.anyio
THRESHOLD = 256 * 1024
BODY = "x" * 4000


def track(i: int) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "Track", "metadata": {"name": f"t{i:05d}"},
            "spec": {"title": BODY}}


def wal(path: Path) -> int:
    return Checkpointer(path).wal_bytes()


async def fill(store: SQLiteStore, path: Path, past: int, first: int = 0) -> int:
    """Objects created until the WAL holds ``past`` bytes; the next free number."""
    i = first
    while wal(path) < past:
        await store.create(track(i))
        i += 1
    return i


def stored(path: Path) -> int:
    """Objects in the database file itself, leaving out what only its WAL holds (a copy of the
    file alone; a reader of the store would see through the WAL)."""
    alone = path.with_name("alone.db")
    alone.write_bytes(path.read_bytes())
    reader = sqlite3.connect(f"file:{alone}?immutable=1", uri=True)
    try:
        return int(reader.execute("SELECT COUNT(*) FROM objects").fetchone()[0])
    except sqlite3.OperationalError:  # no table yet: the schema itself is only in the WAL
        return 0
    finally:
        reader.close()
        alone.unlink()


async def test_the_wal_is_copied_into_the_file_and_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    done: list[Checkpoint] = []
    checkpointed = anyio.Event()

    def heard(checkpoint: Checkpoint) -> None:
        done.append(checkpoint)
        checkpointed.set()

    async with SQLiteStore(path, checkpoint_bytes=THRESHOLD) as store, anyio.create_task_group() as group:
        written = await fill(store, path, THRESHOLD)
        group.start_soon(store.maintain, heard)  # it looks at the WAL: commits came since the store opened
        with anyio.fail_after(30):  # a guard against a hang, not a timing
            await checkpointed.wait()
        assert done[0].copied == done[0].pages > 0  # no write came meanwhile: all of it was copied
        assert stored(path) == written  # every object is in the database file now
        # The next commit starts the WAL over: the file shrinks to what it holds.
        assert wal(path) >= THRESHOLD
        await store.create(track(written))
        assert wal(path) < THRESHOLD // 4
        group.cancel_scope.cancel()


async def test_without_the_upkeep_the_wal_keeps_growing(tmp_path: Path) -> None:
    """What the upkeep is for: a store nobody maintains checkpoints at SQLite's own mark, far
    higher, and then inside a commit."""
    path = tmp_path / "state.db"
    async with SQLiteStore(path, checkpoint_bytes=THRESHOLD) as store:
        await fill(store, path, 4 * THRESHOLD)
        assert stored(path) == 0  # all of it still only in the WAL


async def test_commits_go_on_while_a_checkpoint_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint held up on its thread (a slow disk) holds up no write."""
    path = tmp_path / "state.db"
    release = threading.Event()
    entered = threading.Event()
    real = Checkpointer._checkpoint

    def slow(self: Checkpointer) -> Checkpoint | None:
        entered.set()
        release.wait(60)
        return real(self)

    monkeypatch.setattr(Checkpointer, "_checkpoint", slow)
    async with SQLiteStore(path, checkpoint_bytes=THRESHOLD) as store, anyio.create_task_group() as group:
        written = await fill(store, path, THRESHOLD)
        group.start_soon(store.maintain)
        with anyio.fail_after(30):
            await anyio.to_thread.run_sync(entered.wait)
        with anyio.fail_after(30):  # a guard against a hang, not a timing
            for i in range(written, written + 50):  # the checkpoint is stuck meanwhile
                await store.create(track(i))
        assert not release.is_set()
        assert len((await store.list("Track")).items) == written + 50
        release.set()
        group.cancel_scope.cancel()


async def test_only_what_no_checkpoint_copied_is_due(tmp_path: Path) -> None:
    """A write during a checkpoint keeps the WAL from starting over: the next checkpoint is due
    only once as much again has been written, not at every look."""
    path = tmp_path / "state.db"
    async with SQLiteStore(path) as store:
        written = await fill(store, path, THRESHOLD)
        checkpointer = Checkpointer(path, threshold_bytes=THRESHOLD)
        assert checkpointer.due_bytes() >= THRESHOLD
        assert await checkpointer.run_when_due() is not None
        assert checkpointer.due_bytes() == 0
        reader = sqlite3.connect(path)  # a reader pinned to the old end keeps the WAL from starting over
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM objects").fetchone()
        try:
            await store.create(track(written))
            assert 0 < checkpointer.due_bytes() < THRESHOLD
            assert await checkpointer.run_when_due() is None
        finally:
            reader.close()
        await checkpointer.close()


async def test_a_failed_checkpoint_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"not a database, and far longer than its header would be" * 100)
    path.with_name(path.name + "-wal").write_bytes(b"x" * 100)
    checkpointer = Checkpointer(path, threshold_bytes=1)
    with caplog.at_level("WARNING", logger=sqlite_checkpoint.__name__):
        assert await checkpointer.run_when_due() is None
    await checkpointer.close()
    assert "checkpointing the store's write-ahead log" in caplog.text
    assert "Check the disk" in caplog.text


async def test_no_checkpoint_below_the_mark(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with SQLiteStore(path) as store:
        await store.create(track(0))
        checkpointer = Checkpointer(path)
        assert 0 < checkpointer.wal_bytes() < sqlite_checkpoint.CHECKPOINT_BYTES
        assert await checkpointer.run_when_due() is None
        await checkpointer.close()
    assert Checkpointer(tmp_path / "none.db").wal_bytes() == 0


def scraped(metrics: Metrics, name: str) -> float:
    """A series' value as Prometheus scrapes it from the daemon's registry."""
    for family in text_string_to_metric_families(render_registry(metrics.registry).decode()):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} is not exported")


async def test_the_daemon_measures_each_checkpoint(tmp_path: Path) -> None:
    """What Grafana shows: the checkpoints' durations and the pages they copied."""
    metrics = Metrics()
    path = tmp_path / "state.db"
    assert scraped(metrics, "mfx_store_wal_checkpoint_pages_total") == 0
    async with SQLiteStore(path, checkpoint_bytes=THRESHOLD) as store, anyio.create_task_group() as group:
        upkeep = store_upkeep(store, metrics)
        assert upkeep is not None
        group.start_soon(upkeep)
        i = 0
        while scraped(metrics, "mfx_store_wal_checkpoint_duration_seconds_count") == 0:
            await store.create(track(i))  # each write lets the upkeep look at the WAL
            i += 1
            assert i < 10_000, "no checkpoint was measured"
        group.cancel_scope.cancel()
    assert scraped(metrics, "mfx_store_wal_checkpoint_pages_total") >= THRESHOLD // 4096
    assert scraped(metrics, "mfx_store_wal_checkpoint_duration_seconds_sum") > 0


def test_only_stores_with_upkeep_get_it(tmp_path: Path) -> None:
    """SQLite's upkeep is measured; a store without any (the API's, under ``mfx agent``) gets none."""
    assert isinstance(SQLiteStore(tmp_path / "state.db"), MaintainedStore)
    assert store_upkeep(object(), Metrics()) is None  # type: ignore[arg-type]
