"""Apply 1000 objects through the daemon's API against inserting the same rows straight into
SQLite, in one run; and ``get`` of one object p50/p99 over the API."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.common import Figure, percentile
from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.cli.apply import apply_one
from mfx.cli.client import Client, Endpoint
from tests.daemon_harness import ThreadDaemon

OBJECTS = 1000


def manifest(i: int) -> dict[str, object]:
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
        "metadata": {"name": f"bench-{i:04d}", "labels": {"bench": "apply"}},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m bench_plugin", "suspend": True},
    }


def raw_sqlite_inserts(path: Path) -> float:
    """The floor: the same JSON rows, one transaction per row (durable like an apply)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE objects (kind TEXT, name TEXT, body TEXT, PRIMARY KEY (kind, name))")
    started = time.perf_counter()
    for i in range(OBJECTS):
        with conn:
            conn.execute("INSERT INTO objects VALUES (?, ?, ?)", ("PluginManifest", f"bench-{i:04d}",
                                                                  json.dumps(manifest(i))))
    elapsed = time.perf_counter() - started
    conn.close()
    return OBJECTS / elapsed


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="mfx-bench-apply-") as tmp:
        root = Path(tmp)
        baseline = raw_sqlite_inserts(root / "raw.db")
        with ThreadDaemon(root / "home").running() as daemon:
            client = Client(Endpoint(socket=daemon.socket))
            started = time.perf_counter()
            for i in range(OBJECTS):
                apply_one(client, manifest(i), dry_run=False)
            applied = OBJECTS / (time.perf_counter() - started)
            samples = []
            for i in range(OBJECTS):
                begin = time.perf_counter()
                client.get(PLUGIN_MANIFEST, f"bench-{i:04d}")
                samples.append((time.perf_counter() - begin) * 1000)
            client.close()
    return [
        Figure(f"mfx apply of {OBJECTS} objects over the API", applied, "objects/s",
               baseline_name="plain sqlite3 insert, one transaction per row", baseline=baseline,
               higher_is_better=True),
        Figure("get one object over the API, p50", percentile(samples, 50), "ms"),
        Figure("get one object over the API, p99", percentile(samples, 99), "ms"),
    ]
