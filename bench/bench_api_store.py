"""What the HTTP API costs a node agent: ``ApiStore`` against a local ``SQLiteStore``, in one run.

A real daemon (API server over SQLite, no controllers) in a thread, ``ApiStore`` on its
loopback HTTP listener; the baseline is a ``SQLiteStore`` opened in this process.

1. ``get`` and ``update_status`` of one PluginManifest: p50 over 300 calls each.
2. Watch delivery: from a status write returning to its event arriving on an open watch,
   p50 over 100 writes.
3. Node heartbeats (Lease renewal + Node read) of 50 agents at once, per second: with the
   kubelet's 40 s lease (a renewal every 10 s) the rate x 10 s is how many agents one API
   server keeps alive.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from bench.common import Figure, percentile
from mfx.node.agent import AgentSettings, NodeAgent
from mfx.node.client import StoreClient
from mfx.node.facts import NodeFacts
from mfx.store import SQLiteStore
from mfx.store.api_connection import ApiConnection
from mfx.store.api_store import ApiStore
from mfx.store.base import Store
from tests.daemon_harness import ThreadDaemon

CALLS = 300
WATCHED = 100
AGENTS = 50
ROUNDS = 5
PM = "PluginManifest"
FACTS = NodeFacts(hostname="bench", os="linux", arch="amd64", kernel_version="6", python="3.11",
                  agent_version="0", sound_devices=("default",))


def _plugin(name: str) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": PM, "metadata": {"name": name},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m x", "suspend": True}}


async def _p50(call: Callable[[int], Awaitable[object]], n: int) -> float:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - started)
    return percentile(samples, 50) * 1000


async def _measure(store: Store) -> dict[str, float]:
    obj = await store.create(_plugin("bench"))
    figures = {"get": await _p50(lambda _: store.get(PM, "bench"), CALLS)}

    async def write(i: int) -> None:
        await store.update_status({**obj, "metadata": {"name": "bench"}, "status": {"observedGeneration": i}})

    figures["update_status"] = await _p50(write, CALLS)
    delays: list[float] = []
    since = await store.current_resource_version()
    async with store.watch(PM, since) as events:  # type: ignore[attr-defined]
        for i in range(WATCHED):
            await write(CALLS + i)
            written = time.perf_counter()
            await events.__anext__()
            delays.append(time.perf_counter() - written)
    figures["watch"] = percentile(delays, 50) * 1000

    async def facts() -> NodeFacts:
        return FACTS

    client = StoreClient(store)
    agents = [NodeAgent(client, AgentSettings(f"node-{i:03d}"), facts=facts) for i in range(AGENTS)]
    for agent in agents:
        await agent.register(FACTS)
        await agent.heartbeat(FACTS)
    started = time.perf_counter()
    for _ in range(ROUNDS):
        async with anyio.create_task_group() as group:
            for agent in agents:
                group.start_soon(agent.heartbeat, FACTS)
    figures["heartbeats"] = AGENTS * ROUNDS / (time.perf_counter() - started)
    return figures


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        async def local() -> dict[str, float]:
            async with SQLiteStore(root / "local.db") as store:
                return await _measure(store)

        baseline = anyio.run(local)
        daemon = ThreadDaemon(root / "home", listen_http="127.0.0.1:0")
        with daemon.running():
            url = "http://" + daemon.config.listen_http_address_path.read_text().strip()
            connection = ApiConnection((url,), token=daemon.config.token_path.read_text().strip())

            async def remote() -> dict[str, float]:
                async with ApiStore(connection) as store:
                    return await _measure(store)

            over_api = anyio.run(remote)
    return [
        Figure("get over the API, p50", over_api["get"], "ms", "local SQLiteStore.get", baseline["get"]),
        Figure("update_status over the API, p50", over_api["update_status"], "ms",
               "local SQLiteStore.update_status", baseline["update_status"]),
        Figure("write -> watch event over the API, p50", over_api["watch"], "ms",
               "local SQLiteStore watch", baseline["watch"]),
        Figure(f"heartbeats of {AGENTS} agents over the API", over_api["heartbeats"], "heartbeats/s",
               "the same agents on a local SQLiteStore", baseline["heartbeats"], higher_is_better=True),
        Figure("agents one API server keeps alive at a 40 s lease", over_api["heartbeats"] * 10, "agents",
               higher_is_better=True),
    ]
