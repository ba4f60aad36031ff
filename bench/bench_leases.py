"""Node heartbeats and leader handover on the SQLite store, in one run.

1. Heartbeats: 200 node agents renewing their Lease (read, conditional update, then a read of
   their Node) concurrently, per second, against the floor of the same number of plain
   unconditional store updates of a Lease. With the kubelet's 40 s lease (a renewal every 10 s)
   the rate says how many nodes one store keeps alive: rate x 10 s.
2. Handover: cancel the leader of two candidates and time until the other leads (p50 over 10
   tries, retry period 50 ms), against the retry period, the bound a released lease allows
   (a successor takes it at its next try), and the 15 s a crashed leader's lease takes to run out.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio

from bench.common import Figure, percentile
from mfx.api.objects import Obj
from mfx.node.agent import AgentSettings, NodeAgent
from mfx.node.client import StoreClient
from mfx.node.facts import NodeFacts
from mfx.node.leader import LeaderElector
from mfx.node.lease import micro_time
from mfx.store import SQLiteStore

AGENTS = 200
ROUNDS = 5
HANDOVERS = 10
RETRY = 0.05

FACTS = NodeFacts(hostname="bench", os="linux", arch="amd64", kernel_version="6", python="3.11",
                  agent_version="0", sound_devices=("default",))


async def _facts() -> NodeFacts:
    return FACTS


async def _heartbeats(root: Path) -> list[Figure]:
    async with SQLiteStore(root / "agents.db") as store:
        client = StoreClient(store)
        agents = [NodeAgent(client, AgentSettings(f"node-{i:03d}"), facts=_facts) for i in range(AGENTS)]
        for agent in agents:
            await agent.register(FACTS)
            await agent.heartbeat(FACTS)

        async def beat_all() -> None:
            async with anyio.create_task_group() as group:
                for agent in agents:
                    group.start_soon(agent.heartbeat, FACTS)

        started = time.perf_counter()
        for _ in range(ROUNDS):
            await beat_all()
        heartbeats = AGENTS * ROUNDS / (time.perf_counter() - started)

        leases = [await store.get("Lease", f"node-{i:03d}") for i in range(AGENTS)]

        async def write(lease: Obj) -> None:
            # No resourceVersion: an unconditional write, the floor of any renewal.
            plain = {**lease, "metadata": {"name": lease["metadata"]["name"]},
                     "spec": {**lease["spec"], "renewTime": micro_time(datetime.now(UTC))}}
            await store.update(plain)

        started = time.perf_counter()
        for _ in range(ROUNDS):
            async with anyio.create_task_group() as group:
                for lease in leases:
                    group.start_soon(write, lease)
        floor = AGENTS * ROUNDS / (time.perf_counter() - started)
    return [
        Figure(f"heartbeats of {AGENTS} agents (renew + node read)", heartbeats, "heartbeats/s",
               "plain unconditional Lease updates", floor, higher_is_better=True),
        Figure("nodes one store keeps alive at a 40 s lease", heartbeats * 10, "nodes", higher_is_better=True),
    ]


async def _one_handover(client: StoreClient, lease: str) -> float:
    """Seconds from cancelling the leader to the other candidate leading."""
    leading = {"a": anyio.Event(), "b": anyio.Event()}
    scopes = {"a": anyio.CancelScope(), "b": anyio.CancelScope()}

    async def candidate(name: str) -> None:
        elector = LeaderElector(client, lease, name, lease_duration=15, renew_deadline=10, retry_period=RETRY)

        async def lead() -> None:
            leading[name].set()
            await anyio.sleep_forever()

        with scopes[name]:
            await elector.run(lead)

    async with anyio.create_task_group() as group:
        group.start_soon(candidate, "a")
        await leading["a"].wait()
        group.start_soon(candidate, "b")
        await anyio.sleep(RETRY * 2)  # "b" campaigns and finds the lease held
        started = time.perf_counter()
        scopes["a"].cancel()
        await leading["b"].wait()
        elapsed = time.perf_counter() - started
        group.cancel_scope.cancel()
    return elapsed


async def _handovers(root: Path) -> list[Figure]:
    async with SQLiteStore(root / "election.db") as store:
        client = StoreClient(store)
        samples = [await _one_handover(client, f"bench-{i}") for i in range(HANDOVERS)]
    return [
        Figure("handover after a clean release, p50", percentile(samples, 50) * 1000, "ms",
               "retry period", RETRY * 1000, baseline_computed=True, target="<= retry period x 1.2 (jitter)"),
        Figure("handover after a clean release, max", max(samples) * 1000, "ms",
               "expiry of a crashed leader's 15 s lease", 15000, baseline_computed=True),
    ]


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        figures = anyio.run(_heartbeats, root)
        figures += anyio.run(_handovers, root)
    return figures
