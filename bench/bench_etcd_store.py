"""``mfx apply -f DIR`` of 1000 manifests through a daemon on etcd, against raw etcd puts of the
same objects from the same client library (aetcd), in one run, on a real 3-member etcd cluster
on loopback (Debian's etcd-server).

Figures:
- the bulk apply path (what ``mfx apply -f DIR`` sends: one request; the daemon reads the
  objects with ``get_many`` and writes them with ``write_all``, transactions comparing
  mod_revision, 128 objects each), in-process CLI against a ThreadDaemon with
  ``store_url=etcd://...``; median of REPEATS applies after one warm-up apply;
- the baseline: 1000 sequential ``aetcd.Client.put`` of the same JSON, one request each
  (durable as the apply: etcd acknowledges a put once a majority has it);
- the requirement is baseline/value <= 3 in time, i.e. a rate ratio >= 0.333;
- for reference, the same puts batched as the store batches them (aetcd transactions of 128
  puts): the floor of the bulk path, so value/that shows what the API server costs on top.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import aetcd
import anyio
import orjson
from click.testing import CliRunner

from bench.bench_apply import OBJECTS, manifest, manifest_directory
from bench.common import Figure, median
from mfx.cli.main import build_cli
from tests.daemon_harness import ThreadDaemon
from tests.etcd_env import EtcdCluster

REPEATS = 3
TARGET = "baseline/value <= 3 (ratio >= 0.333)"
BATCH = 128  # etcd's default --max-txn-ops, the store's write_all transaction size


async def raw_puts(cluster: EtcdCluster) -> float:
    host, _, port = cluster.members[0].endpoint.rpartition(":")
    async with aetcd.Client(host, int(port)) as client:
        bodies = [orjson.dumps(manifest(i)) for i in range(OBJECTS)]
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            await client.put(f"/bench-raw/o/PluginManifest/bench-{i:04d}".encode(), body)
        return OBJECTS / (time.perf_counter() - started)


async def raw_batched_puts(cluster: EtcdCluster) -> float:
    host, _, port = cluster.members[0].endpoint.rpartition(":")
    async with aetcd.Client(host, int(port)) as client:
        bodies = [orjson.dumps(manifest(i)) for i in range(OBJECTS)]
        started = time.perf_counter()
        for start in range(0, OBJECTS, BATCH):
            puts = [client.transactions.put(f"/bench-batched/o/PluginManifest/bench-{i:04d}".encode(), bodies[i])
                    for i in range(start, min(OBJECTS, start + BATCH))]
            await client.transaction(compare=[], success=puts, failure=[])
        return OBJECTS / (time.perf_counter() - started)


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="mfx-bench-etcd-") as tmp:
        root = Path(tmp)
        cluster = EtcdCluster(root / "etcd")
        (root / "etcd").mkdir()
        try:
            cluster.start()
            baseline = anyio.run(raw_puts, cluster)
            batched = anyio.run(raw_batched_puts, cluster)
            warm = manifest_directory(root, "warm")
            dirs = [manifest_directory(root, f"apply{i}") for i in range(REPEATS)]
            home = root / "home"
            with ThreadDaemon(home, store_url=cluster.url + "/bench").running():
                runner = CliRunner()

                def apply(directory: Path) -> float:
                    started = time.perf_counter()
                    done = runner.invoke(build_cli(), ["--home", str(home), "apply", "-f", str(directory)])
                    elapsed = time.perf_counter() - started
                    created = [line for line in done.output.splitlines() if line.endswith(" created")]
                    assert len(created) == OBJECTS, done.output[-500:]
                    return OBJECTS / elapsed

                apply(warm)
                rate = median([apply(d) for d in dirs])
        finally:
            cluster.stop()
    return [
        Figure(f"mfx apply -f DIR of {OBJECTS} manifests to a daemon on etcd (3 members), in-process", rate,
               "objects/s", baseline_name=f"{OBJECTS} raw aetcd puts of the same objects, one request each",
               baseline=baseline, higher_is_better=True, target=TARGET),
        Figure(f"mfx apply -f DIR of {OBJECTS} manifests to a daemon on etcd (3 members), in-process", rate,
               "objects/s", baseline_name=f"raw aetcd transactions of {BATCH} puts (the bulk path's floor)",
               baseline=batched, higher_is_better=True),
    ]
