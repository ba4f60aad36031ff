"""Nodes: ``mfx serve`` registers its machine's Node and renews its Lease; a Node whose agent
stops renewing turns Ready=Unknown within the lease duration; cordon and uncordon."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import mfx
from mfx.api.kinds import LEASE, NODE
from mfx.api.objects import Obj
from mfx.cli.client import Client
from mfx.node.lease import micro_time
from mfx.server.fleet_services import LEADER_LEASE, leader_service, node_agent_service
from tests import gitops_fixtures
from tests.audio_env import use_tap
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.gitops_fixtures import wait_for

API = "mfx.musicfox.io/v1alpha1"
LEASE_SECONDS = 2
FAST_ELECTION: dict[str, Any] = {"leader_lease_seconds": 3, "leader_renew_deadline": 2, "leader_retry_period": 0.2}


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadDaemon]:
    use_tap(tmp_path, monkeypatch)  # the sound devices this node finds: the tap config's null and tap
    daemon = ThreadDaemon(tmp_path / "home", services=[node_agent_service, leader_service], node_name="kitchen",
                          node_labels={"room": "kitchen"}, node_lease_seconds=LEASE_SECONDS, **FAST_ELECTION)
    with daemon.running():
        yield daemon


home, client = gitops_fixtures.home, gitops_fixtures.client  # over this module's daemon

def ready(node: Obj) -> dict[str, Any]:
    return next((c for c in (node.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), {})


def test_serve_registers_its_node_and_renews_its_lease(daemon: ThreadDaemon, home: Path, client: Client) -> None:
    node = client.get(NODE, "kitchen")
    labels = node["metadata"]["labels"]
    assert labels["room"] == "kitchen"
    assert {"kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch"} <= set(labels)
    assert node["spec"] == {"unschedulable": False}
    status = node["status"]
    assert status["soundDevices"] == ["null", "tap"]
    assert status["nodeInfo"]["agentVersion"] == mfx.__version__
    assert ready(node)["status"] == "True" and ready(node)["reason"] == "AgentReady"

    lease = client.get(LEASE, "kitchen")
    assert lease["spec"]["holderIdentity"] == "kitchen"
    assert lease["spec"]["leaseDurationSeconds"] == LEASE_SECONDS
    first = lease["spec"]["renewTime"]
    renewed = wait_for(client, LEASE, "kitchen", lambda o: o["spec"]["renewTime"] != first,
                       timeout=LEASE_SECONDS * 5, what="to be renewed")
    assert renewed["spec"]["renewTime"] > first
    assert renewed["spec"]["acquireTime"] == lease["spec"]["acquireTime"]
    assert daemon.context is not None
    registry = daemon.context.metrics.registry
    assert (registry.get_sample_value("mfx_node_lease_renewals_total") or 0) >= 2
    assert registry.get_sample_value("mfx_leader_is_leader", {"lease": LEADER_LEASE}) == 1

    wide = run_cli(home, "get", "nodes", "-o", "wide")
    assert wide.exit_code == 0, wide.output
    header, row = wide.output.splitlines()
    assert header.split() == ["NAME", "STATUS", "AGE", "VERSION", "SOUND-DEVICES", "LAST-HEARTBEAT",
                              "AGENT-VERSION", "OS", "ARCH", "LABELS"]
    cells = row.split()
    assert cells[:2] == ["kitchen", "Ready"] and cells[3] == mfx.__version__
    assert cells[4] == "null,tap"
    labels = dict(pair.split("=", 1) for pair in cells[9].split(","))  # as kubectl --show-labels
    assert labels["room"] == "kitchen" and labels["kubernetes.io/os"] == "linux"
    leases = run_cli(home, "get", "leases").output.splitlines()
    assert leases[0].split() == ["NAME", "HOLDER", "DURATION", "RENEWED", "AGE"]
    assert any(line.split()[:3] == ["kitchen", "kitchen", str(LEASE_SECONDS)] for line in leases[1:])
    assert any(line.split()[0] == LEADER_LEASE and line.split()[1].startswith("kitchen_") for line in leases[1:])
    # Like kubectl's nodes and leases, they are not part of `get all`.
    assert "kitchen" not in run_cli(home, "get", "all").output


def test_a_node_whose_agent_stops_renewing_turns_unknown_within_the_lease_duration(client: Client) -> None:
    # A node whose agent renewed once, just now, then stopped: Ready until the lease runs out.
    client.create({"apiVersion": API, "kind": "Node", "metadata": {"name": "garage"}}, NODE)
    client.patch(NODE, "garage", {"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "AgentReady", "message": "renewing"}]}}, subresource="status")
    renewed = datetime.now(UTC)
    client.create({"apiVersion": API, "kind": "Lease", "metadata": {"name": "garage"},
                   "spec": {"holderIdentity": "garage", "leaseDurationSeconds": 1,
                            "acquireTime": micro_time(renewed), "renewTime": micro_time(renewed)}}, LEASE)
    node = wait_for(client, NODE, "garage", lambda o: ready(o).get("status") == "Unknown",
                    timeout=10, what="to turn Ready=Unknown")
    assert ready(node)["reason"] == "NodeStatusUnknown"
    assert "the node agent stopped renewing its lease at" in ready(node)["message"]
    assert "Reconciling" not in [c["type"] for c in node["status"]["conditions"]]
    assert client.get(NODE, "kitchen") and ready(client.get(NODE, "kitchen"))["status"] == "True"


def test_a_node_with_a_long_expired_lease_is_unknown_at_once(home: Path, client: Client) -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    client.create({"apiVersion": API, "kind": "Lease", "metadata": {"name": "attic"},
                   "spec": {"holderIdentity": "attic", "leaseDurationSeconds": 40,
                            "acquireTime": micro_time(old), "renewTime": micro_time(old)}}, LEASE)
    client.create({"apiVersion": API, "kind": "Node", "metadata": {"name": "attic"}}, NODE)
    wait_for(client, NODE, "attic", lambda o: ready(o).get("status") == "Unknown", timeout=10,
             what="to turn Ready=Unknown")
    table = run_cli(home, "get", "nodes", "attic").output.splitlines()
    assert table[1].split()[:2] == ["attic", "Unknown"]
    described = run_cli(home, "describe", "node", "attic").output
    assert "NodeStatusUnknown" in described and "NodeNotReady" in described


def test_the_agent_sets_its_node_ready_again_when_it_renews(client: Client) -> None:
    client.patch(NODE, "kitchen", {"status": {"conditions": [
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": "by hand"}]}},
        subresource="status")
    node = wait_for(client, NODE, "kitchen", lambda o: ready(o).get("status") == "True",
                    timeout=LEASE_SECONDS * 5, what="to be Ready again")
    assert ready(node)["reason"] == "AgentReady"


def test_cordon_and_uncordon_patch_unschedulable_and_show_scheduling_disabled(home: Path, client: Client) -> None:
    cordoned = run_cli(home, "cordon", "kitchen")
    assert cordoned.exit_code == 0 and cordoned.output == "node/kitchen cordoned\n"
    assert client.get(NODE, "kitchen")["spec"]["unschedulable"] is True
    assert run_cli(home, "get", "nodes").output.splitlines()[1].split()[:2] == ["kitchen", "Ready,SchedulingDisabled"]
    assert run_cli(home, "cordon", "-l", "room=kitchen").output == "node/kitchen already cordoned\n"

    uncordoned = run_cli(home, "uncordon", "node/kitchen")
    assert uncordoned.exit_code == 0 and uncordoned.output == "node/kitchen uncordoned\n"
    assert client.get(NODE, "kitchen")["spec"]["unschedulable"] is False
    assert run_cli(home, "get", "nodes").output.splitlines()[1].split()[:2] == ["kitchen", "Ready"]
    # The agent's labels stay where a user's cordon went: registration keeps the spec.
    assert client.get(NODE, "kitchen")["metadata"]["labels"]["room"] == "kitchen"

    missing = run_cli(home, "cordon", "cellar")
    assert missing.exit_code != 0
    assert 'nodes "cellar" not found' in missing.output


@pytest.mark.parametrize(("flags", "said"), [
    (["--node-labels", "room"], '"room" is not KEY=VALUE'),
    (["--node-labels", "room=living room"], "not a valid label value"),
    (["--node-name", "Kitchen_1"], "not a valid name"),
])
def test_serve_refuses_bad_node_flags_before_starting(tmp_path: Path, flags: list[str], said: str) -> None:
    result = run_cli(tmp_path / "home", "serve", *flags)
    assert result.exit_code == 2
    assert said in result.output
    assert not (tmp_path / "home").exists()
