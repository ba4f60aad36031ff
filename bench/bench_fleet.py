"""A fleet in network namespaces (tests/fleet_env.py: 3 etcd members, 2 API servers, 3 agents),
each figure against a baseline measured in the same run.

1. Apply -> seen by all 3 agents: a PluginManifest created through an API server until every
   agent's plugin controller acts on it (its "starting" log record, JSON, ms), p50/p99 over
   SAMPLES, against the watch event reaching one plain client (an HTTPS watch from another
   host, on the same server the agents use).
2. Node loss detected: a node's link cut until its Node reads Ready=Unknown, against the
   configured node lease duration (target ratio <= 1.2: the cut lands anywhere in a renewal
   period, so detection takes between 3/4 of the lease and the whole lease, plus the check).
3. Leader failover: the leading ``mfx serve`` SIGKILLed until the other holds the
   ``mfx-controllers`` Lease, against etcd's own leader failover (its leader SIGKILLed until
   the survivors report a new leader), both timed the same way, in the same run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import Figure, median, percentile
from tests.daemon_harness import REPO
from tests.fleet_env import Fleet, Process, start_fleet, wait_for

SAMPLES = 30
NODE_LOSSES = 3
FAILOVERS = 3
NODE_LEASE = 2
LEADER_LEASE = 2.0
POLL = 0.01
PM = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"

# A plain client: one HTTPS watch, each event printed with the wall time it arrived.
WATCHER = """
import json, sys, time, httpx
url, token, ca, path = sys.argv[1:5]
with httpx.Client(base_url=url, verify=ca, headers={"Authorization": "Bearer " + token}, timeout=None) as c:
    rv = c.get(path).json()["metadata"]["resourceVersion"]
    print("ready", flush=True)
    with c.stream("GET", path, params={"watch": "true", "resourceVersion": rv}) as r:
        for line in r.iter_lines():
            if line.strip():
                e = json.loads(line)
                print(f"{time.time():.6f} {e['type']} {e['object']['metadata']['name']}", flush=True)
"""


def _plugin(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "plugins" / "hello-python" / "plugin.yaml").read_text())
    doc["metadata"]["name"] = name
    return dict(doc)


class _Lines:
    """The lines a file or pipe gains, read by a thread; ``find`` waits for a matching one."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def add(self, line: str) -> None:
        with self.changed:
            self.lines.append(line)
            self.changed.notify_all()

    def find(self, match: Any, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    if match(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching line")
                self.changed.wait(left)


def _follow(path: Path, into: _Lines, stop: threading.Event) -> None:
    with path.open(errors="replace") as file:
        while not stop.is_set():
            line = file.readline()
            if line:
                into.add(line)
            else:
                stop.wait(POLL)


def _starting_at(line: str, name: str) -> float | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if record.get("plugin") == name and "starting" in str(record.get("message")):
        return datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
    return None


def _apply_seen(fleet: Fleet, root: Path) -> list[Figure]:
    server = fleet.servers[0]
    assert fleet.ops is not None
    watcher = Process(fleet.ops, [sys.executable, "-c", WATCHER, server.url, fleet.token_file.read_text().strip(),
                                  str(fleet.ca_file), PM], root / "watcher.log").start()
    stop = threading.Event()
    plain, agents = _Lines(), {a.name: _Lines() for a in fleet.agents}
    threads = [threading.Thread(target=_follow, args=(watcher.log, plain, stop), daemon=True),
               *(threading.Thread(target=_follow, args=(a.process.log, agents[a.name], stop), daemon=True)
                 for a in fleet.agents if a.process is not None)]
    for thread in threads:
        thread.start()
    seen_plain: list[float] = []
    seen_all: list[float] = []
    try:
        plain.find(lambda line: line.startswith("ready"))
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://mfx",
                          timeout=30) as client:
            for i in range(SAMPLES):
                name = f"bench-{i}"
                started = time.time()
                answer = client.post(PM, json=_plugin(name))
                assert answer.status_code == 201, answer.text
                line = plain.find(lambda text, n=name: text.split()[1:] == ["ADDED", n])
                seen_plain.append(float(line.split()[0]) - started)
                latest = 0.0
                for lines in agents.values():
                    found = lines.find(lambda text, n=name: _starting_at(text, n) is not None)
                    latest = max(latest, _starting_at(found, name) or 0.0)
                seen_all.append(latest - started)
                client.delete(f"{PM}/{name}")
    finally:
        stop.set()
        watcher.stop(signal.SIGKILL)
    return [
        Figure("apply -> acted on by all 3 agents, p50", percentile(seen_all, 50) * 1000, "ms",
               "watch event at one plain client, p50", percentile(seen_plain, 50) * 1000),
        Figure("apply -> acted on by all 3 agents, p99", percentile(seen_all, 99) * 1000, "ms",
               "watch event at one plain client, p99", percentile(seen_plain, 99) * 1000),
    ]


def _node_loss(fleet: Fleet) -> list[Figure]:
    samples = []
    for i in range(NODE_LOSSES):
        agent = fleet.agents[i % len(fleet.agents)]
        wait_for(f"{agent.name} Ready", lambda a=agent: fleet.node_ready(a.name))
        started = time.monotonic()
        fleet.network.cut(agent.host)
        try:
            wait_for(f"{agent.name} Unknown", lambda a=agent: fleet.node_ready(a.name, "Unknown"), poll=POLL)
            samples.append(time.monotonic() - started)
        finally:
            fleet.network.heal(agent.host)
        wait_for(f"{agent.name} Ready again", lambda a=agent: fleet.node_ready(a.name))
    return [Figure(f"node loss detected (link cut -> Ready=Unknown), median of {NODE_LOSSES}",
                   median(samples) * 1000, "ms", "configured node lease", NODE_LEASE * 1000,
                   baseline_computed=True, target="ratio <= 1.2"),
            Figure("node loss detected, max", max(samples) * 1000, "ms", "configured node lease",
                   NODE_LEASE * 1000, baseline_computed=True, target="ratio <= 1.2")]


def _mfx_failover(fleet: Fleet) -> float:
    holder = wait_for("a leader", fleet.leader)
    leader = fleet.server_of(holder)
    survivor = next(s for s in fleet.servers if s is not leader)
    assert leader.process is not None
    started = time.monotonic()
    leader.process.stop(signal.SIGKILL)
    wait_for("another leader", lambda: fleet.leader(survivor) not in ("", holder), poll=POLL)
    elapsed = time.monotonic() - started
    fleet.start_server(leader)
    return elapsed


def _etcd_failover(fleet: Fleet) -> float:
    old = fleet.etcd_leader()
    assert old.process is not None
    started = time.monotonic()
    old.process.stop(signal.SIGKILL)

    def new_leader() -> bool:
        try:
            return fleet.etcd_leader() is not old
        except (AssertionError, ValueError, StopIteration):
            return False

    wait_for("etcd to elect another leader", new_leader, poll=POLL)
    elapsed = time.monotonic() - started
    fleet.start_etcd_member(old, state="existing")
    wait_for("the member back", fleet.etcd_healthy)
    return elapsed


def _failovers(fleet: Fleet) -> list[Figure]:
    mfx = [_mfx_failover(fleet) for _ in range(FAILOVERS)]
    etcd = [_etcd_failover(fleet) for _ in range(FAILOVERS)]
    return [Figure(f"leader failover (leading mfx serve SIGKILLed -> other holds the Lease), median of {FAILOVERS}",
                   median(mfx) * 1000, "ms", "etcd leader failover (SIGKILL -> new leader), median",
                   median(etcd) * 1000),
            Figure("leader failover, median", median(mfx) * 1000, "ms", "configured leader lease",
                   LEADER_LEASE * 1000, baseline_computed=True)]


def run() -> list[Figure]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("  skipped: the fleet benchmark makes network namespaces (run it as root, with iproute2)")
        return []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plugins = root / "plugins"
        for i in range(SAMPLES):
            shutil.copytree(REPO / "plugins" / "hello-python", plugins / f"bench-{i}")
            (plugins / f"bench-{i}" / "plugin.yaml").write_text(yaml.safe_dump(_plugin(f"bench-{i}")))
        (root / "fleet").mkdir()
        with start_fleet(root / "fleet", node_lease_seconds=NODE_LEASE, leader_lease_seconds=LEADER_LEASE,
                         plugin_paths=[plugins], log_format="json") as fleet:
            figures = _apply_seen(fleet, root)
            figures += _node_loss(fleet)
            figures += _failovers(fleet)
    return figures

