"""What per-node status costs a single machine's status writes, and the leader's count of a fleet.

1. Status writes of 300 PluginManifests on the SQLite store through ``NodeStatusStore`` (the
   in-process agent: each write carries the node's entry and the counts), against the same
   writes straight to the store, in the same run.
2. The leader's count (``placement_status.figures``) of one object over 1000 nodes with
   selectors, per second, against a plain pass over the same nodes' labels.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Figure
from controllers.node_status import NodeStatusStore
from controllers.placement import NodePlacement, selector_matches
from controllers.placement_status import figures
from mfx.store import SQLiteStore

OBJECTS = 300
ROUNDS = 3
NODES = 1000


def _manifest(i: int) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
            "metadata": {"name": f"p{i:04d}"}, "spec": {"version": "1.0.0", "type": "rpc"}}


def _with_status(obj: dict[str, Any], round_: int) -> dict[str, Any]:
    ready = {"type": "Ready", "status": "True", "reason": "Running", "message": f"round {round_}",
             "lastTransitionTime": "2026-12-06T00:00:00Z"}
    return {**obj, "status": {"observedGeneration": 1, "restartCount": round_, "resolvedVersion": "1.0.0",
                              "runtime": {"pid": 4242}, "conditions": [ready]}}


async def _writes(root: Path) -> list[Figure]:
    rates: dict[str, float] = {}
    for label in ("plain", "node"):
        async with SQLiteStore(root / f"{label}.db") as store:
            placement = NodePlacement("bench", labels={"room": "kitchen"})
            placement.nodes["bench"] = {"metadata": {"name": "bench", "labels": {"room": "kitchen"}}, "spec": {}}
            writer = NodeStatusStore(store, placement, shared=False) if label == "node" else store
            objects = [await store.create(_manifest(i)) for i in range(OBJECTS)]
            started = time.perf_counter()
            for round_ in range(ROUNDS):
                objects = [await writer.write_status(_with_status(obj, round_)) for obj in objects]
            rates[label] = OBJECTS * ROUNDS / (time.perf_counter() - started)
    return [Figure(f"status writes of {OBJECTS} plugins with the node's entry and counts", rates["node"],
                   "writes/s", "the same writes straight to the store", rates["plain"], higher_is_better=True)]


def _counts() -> list[Figure]:
    nodes = {f"n{i:04d}": {"metadata": {"name": f"n{i:04d}", "labels": {"room": ("kitchen", "hall")[i % 2]}},
                           "spec": {"unschedulable": i % 10 == 0}} for i in range(NODES)}
    obj = {"kind": "PluginManifest", "metadata": {"name": "p", "generation": 2},
           "spec": {"nodeSelector": {"matchExpressions": [{"key": "room", "operator": "In", "values": ["kitchen"]}]}},
           "status": {"nodes": {name: {"ready": True, "observedGeneration": 2} for name in nodes}}}
    passes = 50
    started = time.perf_counter()
    for _ in range(passes):
        figures(obj, nodes, write_ready=True)
    counted = passes / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(passes):
        sum(selector_matches(obj["spec"]["nodeSelector"], n["metadata"]["labels"]) for n in nodes.values())
    floor = passes / (time.perf_counter() - started)
    return [Figure(f"leader counts of one object over {NODES} nodes", counted, "counts/s",
                   "a plain selector pass over the nodes", floor, higher_is_better=True)]


def run() -> list[Figure]:
    import anyio

    with tempfile.TemporaryDirectory() as tmp:
        writes = anyio.run(_writes, Path(tmp))
    return writes + _counts()
