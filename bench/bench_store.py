"""SQLiteStore against plain sqlite3 on the same rows, same file settings, same run.

Baselines: inserting the objects' JSON into an (kind, name)-keyed table with ``sqlite3`` (WAL,
synchronous=NORMAL, as the store uses), once as one ``executemany`` transaction (the floor
for bulk loading) and once with one transaction per row (what a store that acknowledges each
write must do at least). Gets are compared with a plain primary-key SELECT plus JSON decode.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import orjson

from bench.common import Figure, percentile
from mfx.store import SQLiteStore

COUNT = 1000
GETS = 2000
WRITERS = 50  # concurrent callers, as a daemon's workers and API requests are


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


def run() -> list[Figure]:
    objects = _objects()
    with tempfile.TemporaryDirectory(prefix="mfx-bench-store-") as tmp:
        root = Path(tmp)
        store_rate, store_gets = anyio.run(_store, root / "store.db", objects)
        concurrent_rate = anyio.run(_store_concurrent, root / "concurrent.db", objects)
        bulk_rate = _bulk_insert(root / "bulk.db", objects)
        row_rate, plain_gets = _per_row_insert(root / "rows.db", objects)
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
    ]
