"""A fleet: two API servers on a 3-member etcd cluster and three agents, each host in a network
namespace of its own (tests/fleet_env.py), and what a user sees when parts of it fail.

One fleet serves the whole module (it takes a few seconds to start); each test leaves it as
it found it (a killed process is started again before the test ends). Leases are short (node
and leader: 2 s) so that expiries happen within the test; every wait polls a condition with a
deadline as a safety net, and nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.daemon_harness import REPO
from tests.fleet_env import (
    AgentNode,
    ApiServer,
    Fleet,
    NetnsUnavailable,
    alive,
    start_fleet,
    wait_for,
)
from tests.gitops_fixtures import Repo

PLUGINS = ("hello-rpc", "greeter-b")  # the plugin set: two copies of the RPC example
LATE_PLUGIN = "greeter-c"  # applied while a node is cut off
DELETED_PLUGIN = "greeter-d"  # applied, then deleted
LEASES = "/apis/mfx.musicfox.io/v1alpha1/leases"


def _plugin(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "plugins" / "hello-rpc" / "plugin.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["healthCheck"] = {"interval": "500ms", "timeout": "2s", "failureThreshold": 3}
    return dict(doc)


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    for name in (*PLUGINS, LATE_PLUGIN, DELETED_PLUGIN):
        shutil.copytree(REPO / "plugins" / "hello-rpc", root / name)
        (root / name / "plugin.yaml").write_text(yaml.safe_dump(_plugin(name)))
    return root


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, plugin_path: Path) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    try:
        with start_fleet(root, plugin_paths=[plugin_path]) as running:
            yield running
    except NetnsUnavailable as why:
        pytest.skip(f"no network namespaces here: {why}")


@pytest.fixture(autouse=True)
def logs_on_failure(request: pytest.FixtureRequest, fleet: Fleet) -> Iterator[None]:
    """Every host's log tail beside a failed test (pytest shows a teardown's output)."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        fleet.print_logs()


@pytest.fixture(scope="module")
def plugin_set(fleet: Fleet) -> dict[str, dict[str, int]]:
    """The plugin set applied once through one API server; per node, plugin -> pid."""
    docs = "---\n".join(yaml.safe_dump(_plugin(name)) for name in PLUGINS)
    applied = fleet.mfx(fleet.servers[0], "apply", "-f", "-", stdin=docs)
    assert applied.returncode == 0, applied.stderr
    return {agent.name: wait_for(f"the plugin set running under {agent.name}",
                                 lambda a=agent: _running(a, PLUGINS)) for agent in fleet.agents}


def _running(agent: AgentNode, names: tuple[str, ...]) -> dict[str, int] | None:
    """Plugin name -> pid of the plugin processes under ``agent``, once every one of ``names`` runs."""
    found = agent.plugins()
    return found if set(found) >= set(names) else None


def _leases(server: ApiServer) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://mfx", timeout=10.0)


def _lease(name: str) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "Lease", "metadata": {"name": name},
            "spec": {"holderIdentity": "writer", "leaseDurationSeconds": 3600}}


def test_a_plugin_set_applied_once_runs_on_every_node(fleet: Fleet, plugin_set: dict[str, dict[str, int]]) -> None:
    for agent in fleet.agents:
        pids = plugin_set[agent.name]
        assert set(pids) == set(PLUGINS)
        assert all(alive(pid) for pid in pids.values()), f"{agent.name} runs {pids}"
    listed = fleet.mfx(fleet.servers[1], "get", "nodes")
    for agent in fleet.agents:
        assert any(line.split()[:2] == [agent.name, "Ready"] for line in listed.stdout.splitlines()), listed.stdout


def _engine_runs(agent: AgentNode) -> bool:
    """Whether ``agent`` has started an audio engine (it does for its first AudioSink)."""
    try:
        pid = int((agent.home / "engine" / "engine.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return alive(pid)


def test_a_deleted_plugin_stops_on_every_node_before_it_is_gone(
        fleet: Fleet, plugin_set: dict[str, dict[str, int]]) -> None:
    applied = fleet.mfx(fleet.servers[0], "apply", "-f", "-", stdin=yaml.safe_dump(_plugin(DELETED_PLUGIN)))
    assert applied.returncode == 0, applied.stderr
    pids = [wait_for(f"{DELETED_PLUGIN} under {agent.name}", lambda a=agent: _running(a, (DELETED_PLUGIN,)))
            for agent in fleet.agents]
    deleted = fleet.mfx(fleet.servers[1], "delete", "pm", DELETED_PLUGIN)
    assert deleted.returncode == 0, deleted.stderr
    wait_for("the object gone", lambda: fleet.get_json(fleet.servers[0], "pm", DELETED_PLUGIN) is None)
    # Gone only once every node has stopped its copy: each node holds its own finalizer.
    for agent, running in zip(fleet.agents, pids, strict=True):
        assert not alive(running[DELETED_PLUGIN]), f"{DELETED_PLUGIN} still runs under {agent.name}"
        assert set(agent.plugins()) >= set(PLUGINS)  # the others run on


def test_a_node_selector_places_an_audio_sink_on_one_node_only(fleet: Fleet) -> None:
    sink = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink", "metadata": {"name": "hall"},
            "spec": {"device": "null", "rate": 48000, "channels": 2, "format": "S16_LE",
                     "nodeSelector": {"matchLabels": {"host": "node-b"}}}}
    applied = fleet.mfx(fleet.servers[0], "apply", "-f", "-", stdin=yaml.safe_dump(sink))
    assert applied.returncode == 0, applied.stderr
    try:
        placed = wait_for("the sink Ready on node-b, and counted", lambda: (
            (obj := fleet.get_json(fleet.servers[1], "audiosink", "hall")) is not None
            and ((obj.get("status") or {}).get("nodes") or {}).get("node-b", {}).get("ready") is True
            and obj["status"].get("desiredNumberScheduled") == 1 and obj["status"].get("numberReady") == 1
            and obj))
        assert set(placed["status"]["nodes"]) == {"node-b"}, placed["status"]["nodes"]
        by_name = {agent.name: agent for agent in fleet.agents}
        assert _engine_runs(by_name["node-b"])  # the device is opened there ...
        assert not _engine_runs(by_name["node-a"]) and not _engine_runs(by_name["node-c"])  # ... only
    finally:
        fleet.mfx(fleet.servers[0], "delete", "audiosink", "hall")


def test_kubectl_sees_the_same_objects_through_either_api_server(
        fleet: Fleet, plugin_set: dict[str, dict[str, int]], tmp_path: Path) -> None:
    assert fleet.ops is not None
    seen = []
    for server in fleet.servers:
        kubeconfig = tmp_path / f"{server.name}.kubeconfig"
        written = fleet.mfx(server, "config", "kubeconfig", "--output", str(kubeconfig))
        assert written.returncode == 0, written.stderr
        assert server.url in kubeconfig.read_text()
        got = fleet.on(fleet.ops, "kubectl", "--kubeconfig", str(kubeconfig), "get",
                       "pluginmanifests,nodes.mfx.musicfox.io", "-o", "json")
        assert got.returncode == 0, got.stderr
        seen.append(sorted((item["kind"], item["metadata"]["name"], item["metadata"]["uid"])
                           for item in json.loads(got.stdout)["items"]))
        # The per-node counts are printer columns: kubectl shows them as mfx get does.
        table = fleet.on(fleet.ops, "kubectl", "--kubeconfig", str(kubeconfig), "get", "pm", *PLUGINS)
        assert table.returncode == 0, table.stderr
        header, *rows = table.stdout.splitlines()
        version = header.index("VERSION")
        assert [row[version:].split()[0] for row in rows if row.strip()] == ["0.1.0"] * len(PLUGINS), table.stdout
        start, end = header.index("DESIRED"), header.index("AGE")  # columns are fixed-width
        assert header[start:end].split() == ["DESIRED", "NODES-READY", "UP-TO-DATE"], header
        assert [row[start:end].split() for row in rows if row.strip()] == [["3", "3", "3"]] * len(PLUGINS), \
            table.stdout
    assert seen[0] == seen[1]
    names = {name for _, name, _ in seen[0]}
    assert names >= {*PLUGINS, *(a.name for a in fleet.agents)}


def test_writes_go_on_when_an_etcd_member_is_killed_and_none_acknowledged_is_lost(fleet: Fleet) -> None:
    server = fleet.servers[0]
    victim = fleet.etcd_leader()  # the hardest member to lose: an election follows
    acknowledged: list[str] = []
    after_kill: list[str] = []
    with _leases(server) as client:
        def write(name: str) -> bool:
            try:
                answer = client.post(LEASES, json=_lease(name))
            except httpx.HTTPError:
                return False
            return answer.status_code == 201

        for i in range(10):
            if write(f"write-before-{i}"):
                acknowledged.append(f"write-before-{i}")
        assert victim.process is not None
        victim.process.stop(signal.SIGKILL)
        for i in range(40):
            name = f"write-after-{i}"
            if write(name):
                acknowledged.append(name)
                after_kill.append(name)
            if len(after_kill) >= 10:
                break
        assert len(after_kill) >= 10, "writes go on with two members of three"
        fleet.start_etcd_member(victim, state="existing")
        wait_for("the killed member back in the cluster", fleet.etcd_healthy)
        for reader in fleet.servers:
            with _leases(reader) as other:
                stored = {item["metadata"]["name"] for item in other.get(LEASES).json()["items"]}
            assert not set(acknowledged) - stored, f"{reader.name} lost acknowledged writes"
        for name in acknowledged:
            client.delete(f"{LEASES}/{name}")


def _serving(agent: AgentNode) -> str:
    """The API server ``agent`` said it talks to last."""
    assert agent.process is not None
    lines = [line for line in agent.process.output().splitlines() if "talking to the API server at" in line]
    return lines[-1].split("talking to the API server at ", 1)[1].split()[0].rstrip(".,;") if lines else ""


def test_an_agent_whose_api_server_is_killed_fails_over_to_the_other(
        fleet: Fleet, plugin_set: dict[str, dict[str, int]]) -> None:
    agent = fleet.agents[0]
    url = wait_for(f"{agent.name} to name its API server", lambda: _serving(agent))
    used = next(s for s in fleet.servers if url.startswith(s.url))
    other = next(s for s in fleet.servers if s is not used)
    assert used.process is not None
    used.process.stop(signal.SIGKILL)
    try:
        wait_for(f"{agent.name} to talk to {other.name}", lambda: _serving(agent).startswith(other.url))
        first = _renewed(fleet, other, agent.name)
        wait_for(f"{agent.name}'s lease renewed through {other.name}",
                 lambda: _renewed(fleet, other, agent.name) > first)
        wait_for(f"{agent.name} Ready through {other.name}", lambda: fleet.node_ready(agent.name, server=other))
        assert agent.plugins() == plugin_set[agent.name], "the plugins kept running"
    finally:
        fleet.start_server(used)


def _renewed(fleet: Fleet, server: ApiServer, name: str) -> str:
    lease = fleet.get_json(server, "leases", name) or {}
    return str(lease.get("spec", {}).get("renewTime", ""))


def test_a_cut_off_node_goes_unknown_keeps_its_plugins_and_converges_when_back(
        fleet: Fleet, plugin_set: dict[str, dict[str, int]]) -> None:
    agent = fleet.agents[-1]
    before = plugin_set[agent.name]
    fleet.network.cut(agent.host)
    try:
        wait_for(f"{agent.name} Unknown once its lease runs out", lambda: fleet.node_ready(agent.name, "Unknown"))
        assert all(fleet.node_ready(a.name) for a in fleet.agents if a is not agent)
        late = fleet.mfx(fleet.servers[0], "apply", "-f", "-", stdin=yaml.safe_dump(_plugin(LATE_PLUGIN)))
        assert late.returncode == 0, late.stderr
        assert agent.plugins() == before, "its plugins keep running, same processes"
    finally:
        fleet.network.heal(agent.host)
    wait_for(f"{agent.name} Ready again", lambda: fleet.node_ready(agent.name))
    wait_for(f"{agent.name} to run what was applied while it was cut off",
             lambda: _running(agent, (*PLUGINS, LATE_PLUGIN)))
    now = _running(agent, (*PLUGINS, LATE_PLUGIN))
    assert now is not None and {n: now[n] for n in PLUGINS} == before, "not restarted"
    deleted = fleet.mfx(fleet.servers[0], "delete", "pm", LATE_PLUGIN)
    assert deleted.returncode == 0, deleted.stderr
    for each in fleet.agents:
        wait_for(f"{LATE_PLUGIN} stopped on {each.name}", lambda a=each: LATE_PLUGIN not in a.plugins())


def test_a_killed_leader_is_replaced_and_the_gitsource_keeps_syncing(fleet: Fleet, tmp_path: Path) -> None:
    repo = Repo.create(tmp_path / "repo")
    first = repo.commit("one", {"fleet/a.yaml": yaml.safe_dump(_lease("git-a"))})
    source = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "GitSource", "metadata": {"name": "fleet"},
              "spec": {"url": repo.url, "ref": {"branch": "main"}, "path": "fleet", "interval": "1s", "prune": True}}
    applied = fleet.mfx(fleet.servers[0], "apply", "-f", "-", stdin=yaml.safe_dump(source))
    assert applied.returncode == 0, applied.stderr
    try:
        wait_for("the first revision applied", lambda: _applied(fleet, first))
        holder = wait_for("a leader", fleet.leader)
        leader = fleet.server_of(holder)
        assert leader.process is not None
        leader.process.stop(signal.SIGKILL)
        try:
            survivor = fleet.live_server()
            new = wait_for("another daemon to take the lease", lambda: (fleet.leader(survivor) or holder) != holder
                           and fleet.leader(survivor))
            assert fleet.server_of(new) is survivor
            lease = fleet.get_json(survivor, "leases", "mfx-controllers")
            assert lease["spec"]["leaseDurationSeconds"] == 2, "mfx serve --leader-lease-seconds 2"
            second = repo.commit("two", {"fleet/b.yaml": yaml.safe_dump(_lease("git-b"))})
            wait_for("the second revision applied by the new leader", lambda: _applied(fleet, second))
            assert fleet.get_json(survivor, "leases", "git-b") is not None
        finally:
            fleet.start_server(leader)
    finally:
        fleet.mfx(fleet.live_server(), "delete", "gitsource", "fleet")


def _applied(fleet: Fleet, sha: str) -> bool:
    source = fleet.get_json(fleet.live_server(), "gitsources", "fleet") or {}
    return sha in str(source.get("status", {}).get("lastAppliedRevision", ""))
