"""SQLiteStore against plain sqlite3 on the same rows, same file settings, same run.

Baselines: inserting the objects' JSON into an (kind, name)-keyed table with ``sqlite3`` (WAL,
synchronous=NORMAL, as the store uses), once as one ``executemany`` transaction (the floor
for bulk loading) and once with one transaction per row (what a store that acknowledges each
write must do at least). Gets are compared with a plain primary-key SELECT plus JSON decode. Status writes, through
enough WAL to pass its checkpoint mark several times, are timed with the daemon's upkeep
(checkpoints on their own connection and thread) against the same store without it.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

import anyio
import orjson

from bench.common import Figure, percentile
from mfx.collector import collection_paused
from mfx.store import SQLiteStore

COUNT = 1000
GETS = 2000
WRITERS = 50  # concurrent callers, as a daemon's workers and API requests are
STATUS_ROUNDS = 30  # 30000 status writes: their WAL passes SQLite's checkpoint mark a few times
STATUS_RUNS = 3


def _objects() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "mfx.musicfox.io/v1alpha1",
            "kind": "PluginManifest",
            "metadata": {
                "name": f"plugin-{i:04d}",
                "labels": {"tier": "core" if i % 2 else "extra"},
            },
            "spec": {
                "version": "1.2.0",
                "type": "rpc",
                "entryPoint": "python -m hello",
                "interfaces": ["MusicSource"],
                "resources": {"limits": {"memory": "256Mi", "cpu": "500m", "timeout": "5s"}},
                "healthCheck": {"interval": "10s", "timeout": "2s", "failureThreshold": 3},
                "config": {"index": i},
            },
        }
        for i in range(COUNT)
    ]


def _plain(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE objects (kind TEXT NOT NULL, name TEXT NOT NULL, resource_version INTEGER NOT NULL,"
        " body TEXT NOT NULL, PRIMARY KEY (kind, name))"
    )
    return conn


def _rows(objects: list[dict[str, Any]]) -> list[tuple[str, str, int, str]]:
    return [
        (o["kind"], o["metadata"]["name"], i + 1, orjson.dumps(o).decode())
        for i, o in enumerate(objects)
    ]


def _bulk_insert(path: Path, objects: list[dict[str, Any]]) -> float:
    conn = _plain(path)
    start = time.perf_counter()
    rows = _rows(objects)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO objects VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(objects) / elapsed


def _per_row_insert(path: Path, objects: list[dict[str, Any]]) -> tuple[float, list[float]]:
    conn = _plain(path)
    start = time.perf_counter()
    for row in _rows(objects):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO objects VALUES (?, ?, ?, ?)", row)
        conn.execute("COMMIT")
    rate = len(objects) / (time.perf_counter() - start)
    names = [o["metadata"]["name"] for o in objects]
    samples = []
    for i in range(GETS):
        began = time.perf_counter()
        body = conn.execute(
            "SELECT body FROM objects WHERE kind = ? AND name = ?",
            ("PluginManifest", names[i % len(names)]),
        ).fetchone()[0]
        orjson.loads(body)
        samples.append(time.perf_counter() - began)
    conn.close()
    return rate, samples


async def _store(path: Path, objects: list[dict[str, Any]]) -> tuple[float, list[float]]:
    async with SQLiteStore(path) as store:
        start = time.perf_counter()
        for obj in objects:
            await store.create(obj)
        rate = len(objects) / (time.perf_counter() - start)
        names = [o["metadata"]["name"] for o in objects]
        samples = []
        for i in range(GETS):
            began = time.perf_counter()
            await store.get("PluginManifest", names[i % len(names)])
            samples.append(time.perf_counter() - began)
    return rate, samples


async def _store_concurrent(path: Path, objects: list[dict[str, Any]]) -> float:
    """The same creates from ``WRITERS`` tasks at once: what group commit is for."""
    async with SQLiteStore(path) as store:
        start = time.perf_counter()

        async def writer(offset: int) -> None:
            for obj in objects[offset::WRITERS]:
                await store.create(obj)

        async with anyio.create_task_group() as group:
            for offset in range(WRITERS):
                group.start_soon(writer, offset)
        return len(objects) / (time.perf_counter() - start)


async def _status_writes(path: Path, objects: list[dict[str, Any]], *, maintained: bool) -> list[float]:
    """Each status write's latency, ``WRITERS`` writers at once, while ``STATUS_ROUNDS`` rounds
    over every object take the WAL through several checkpoints: with the daemon's upkeep
    (``maintain``: checkpoints on a thread of their own) or without (SQLite checkpoints inside
    the commit that reaches its mark)."""
    async with SQLiteStore(path) as store, anyio.create_task_group() as group:
        if maintained:
            group.start_soon(store.maintain)
        stored = [await store.create(obj) for obj in objects]
        samples: list[float] = []

        async def writer(offset: int) -> None:
            mine = stored[offset::WRITERS]
            for round_ in range(STATUS_ROUNDS):
                for i, obj in enumerate(mine):
                    began = time.perf_counter()
                    mine[i] = await store.update_status({**obj, "status": {"phase": "Ready", "round": round_,
                                                                           "message": "x" * 400}})
                    samples.append(time.perf_counter() - began)

        # A full collection stops every thread for as long as a checkpoint (over 100 ms with
        # the modules earlier benchmarks loaded): it would hide what is measured here.
        with collection_paused():
            async with anyio.create_task_group() as writers:
                for offset in range(WRITERS):
                    writers.start_soon(writer, offset)
        group.cancel_scope.cancel()
    return samples


def run() -> list[Figure]:
    objects = _objects()
    with tempfile.TemporaryDirectory(prefix="mfx-bench-store-") as tmp:
        root = Path(tmp)
        store_rate, store_gets = anyio.run(_store, root / "store.db", objects)
        concurrent_rate = anyio.run(_store_concurrent, root / "concurrent.db", objects)
        bulk_rate = _bulk_insert(root / "bulk.db", objects)
        row_rate, plain_gets = _per_row_insert(root / "rows.db", objects)
        # The longest write is one event a run: the median of a few runs, taken in turns.
        longest: dict[bool, list[float]] = {False: [], True: []}
        for run_ in range(STATUS_RUNS):
            for maintained in (False, True):
                samples = anyio.run(partial(_status_writes, root / f"status-{maintained}-{run_}.db", objects,
                                            maintained=maintained))
                longest[maintained].append(max(samples))
    ms = 1000.0
    return [
        Figure(
            f"SQLiteStore.create x{COUNT}",
            store_rate,
            "objects/s",
            "sqlite3 one transaction per row",
            row_rate,
            higher_is_better=True,
        ),
        Figure(
            f"SQLiteStore.create x{COUNT}",
            store_rate,
            "objects/s",
            "sqlite3 executemany, one transaction",
            bulk_rate,
            higher_is_better=True,
        ),
        Figure(
            f"SQLiteStore.create x{COUNT}, {WRITERS} concurrent writers",
            concurrent_rate,
            "objects/s",
            "sqlite3 one transaction per row",
            row_rate,
            higher_is_better=True,
        ),
        Figure(
            "SQLiteStore.get p50",
            percentile(store_gets, 50) * ms,
            "ms",
            "sqlite3 SELECT by key + JSON decode p50",
            percentile(plain_gets, 50) * ms,
        ),
        Figure(
            "SQLiteStore.get p99",
            percentile(store_gets, 99) * ms,
            "ms",
            "sqlite3 SELECT by key + JSON decode p99",
            percentile(plain_gets, 99) * ms,
        ),
        Figure(f"longest status write of {COUNT * STATUS_ROUNDS}, {WRITERS} writers, checkpoints off the commit "
               f"path (the daemon's upkeep), median of {STATUS_RUNS} runs",
               median(longest[True]) * ms, "ms", "the same, checkpoints inside commits (a store without upkeep)",
               median(longest[False]) * ms),
    ]
