"""Placement by ``spec.nodeSelector``, DaemonSet-style: one control plane, two ``mfx agent`` nodes.

Real processes on loopback (the harness of tests/test_agent.py): ``mfx serve --no-local-agent``
and two agents with their own homes, names and labels. Each agent writes only its own entry
of ``status.nodes`` (a merge patch, no resourceVersion), the leader counts the nodes. Waits
poll a condition read through the API, with a deadline as a safety net.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml

from mfx.api.objects import FINALIZER
from mfx.server.services import default_services
from mfx.store.sqlite import SQLiteStore
from tests.audio_env import write_tap_config
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import apply, condition, get, manifest, plugin_root, wait_for, wait_ready
from tests.test_agent import (
    agent,
    alive,
    control_plane,
    get_json,
    hello_rpc,
    http_address,
    node_ready,
    parent_of,
    poll,
)


def sink(selector: dict[str, Any]) -> str:
    return yaml.safe_dump({
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink", "metadata": {"name": "kitchen"},
        "spec": {"device": "null", "pacing": "none", "nodeSelector": selector},
    })


def counts(home: Path, resource: str, name: str) -> tuple[Any, Any, Any]:
    status = (get_json(home, resource, name) or {}).get("status", {})
    return status.get("desiredNumberScheduled"), status.get("numberReady"), status.get("updatedNumberScheduled")


def entries(home: Path, resource: str, name: str) -> dict[str, Any]:
    return dict(((get_json(home, resource, name) or {}).get("status", {})).get("nodes") or {})


def conflicts(home: Path) -> dict[str, float]:
    """409 answers the API server gave, by verb, from its /metrics."""
    address, token = http_address(home), (home / "token").read_text().strip()
    text = httpx.get(f"{address}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    pattern = r'^mfx_api_requests_total\{code="409",verb="(\w+)"\} (\S+)$'
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, text, re.MULTILINE) if float(m.group(2))}


def relabel(home: Path, node: str, room: str) -> None:
    patched = run_cli(home, "patch", "node", node, "-p", json.dumps({"metadata": {"labels": {"room": room}}}))
    assert patched.exit_code == 0, patched.output


@pytest.fixture
def tap_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agents' ALSA: a config with a ``null`` PCM (no sound card needed)."""
    for key, value in write_tap_config(tmp_path).env.items():
        monkeypatch.setenv(key, value)


def test_two_agents_place_plugins_and_sinks_by_node_selector_without_conflicts(tmp_path: Path, tap_env: None) -> None:
    cp_home = tmp_path / "cp"
    server = control_plane(cp_home, "--listen-http", "127.0.0.1:0")
    address, token = http_address(cp_home), str(cp_home / "token")
    try:
        with agent(tmp_path / "node-a", "--server", address, "--token-file", token, "--node-name", "node-a",
                   "--node-labels", "room=kitchen") as node_a, \
             agent(tmp_path / "node-b", "--server", address, "--token-file", token, "--node-name", "node-b",
                   "--node-labels", "room=hall") as node_b:
            poll("both nodes Ready", lambda: node_ready(cp_home, "node-a") and node_ready(cp_home, "node-b"))

            # A plugin without a selector runs on every node, like a DaemonSet.
            applied = run_cli(cp_home, "apply", "-f", "-", input=yaml.safe_dump(hello_rpc()))
            assert applied.exit_code == 0, applied.output
            waited = run_cli(cp_home, "wait", "--for=condition=Ready", "pm/hello-rpc", "--timeout=60s")
            assert waited.exit_code == 0, waited.output
            poll("DESIRED 2 READY 2 UP-TO-DATE 2", lambda: counts(cp_home, "pm", "hello-rpc") == (2, 2, 2))
            nodes = entries(cp_home, "pm", "hello-rpc")
            assert sorted(nodes) == ["node-a", "node-b"] and all(e["ready"] for e in nodes.values())
            pid_a, pid_b = nodes["node-a"]["pid"], nodes["node-b"]["pid"]
            assert pid_a != pid_b
            assert parent_of(pid_a) == node_a.process.pid and parent_of(pid_b) == node_b.process.pid
            plugin = get_json(cp_home, "pm", "hello-rpc")
            ready = next(c for c in plugin["status"]["conditions"] if c["type"] == "Ready")
            assert ready["reason"] == "AllNodesReady", ready
            table = run_cli(cp_home, "get", "pm", "hello-rpc").output.splitlines()
            assert table[0].split()[4:8] == ["REASON", "DESIRED", "NODES-READY", "UP-TO-DATE"], table
            assert table[1].split()[4:8] == ["AllNodesReady", "2", "2", "2"], table

            # A sink selected by room=kitchen opens on node-a only.
            applied = run_cli(cp_home, "apply", "-f", "-", input=sink({"matchLabels": {"room": "kitchen"}}))
            assert applied.exit_code == 0, applied.output
            poll("the sink Ready on node-a only",
                 lambda: counts(cp_home, "sink", "kitchen") == (1, 1, 1)
                 and list(entries(cp_home, "sink", "kitchen")) == ["node-a"])
            assert conflicts(cp_home) == {}, "agents writing their own entries and finalizers never conflict"
            # Relabelling moves it: off node-a, onto node-b. (A Node's agent may lose one race
            # with the relabel when it reports the Node's status: that is the Node, not the sink.)
            relabel(cp_home, "node-a", "hall")
            relabel(cp_home, "node-b", "kitchen")
            poll("the sink moved to node-b",
                 lambda: list(entries(cp_home, "sink", "kitchen")) == ["node-b"]
                 and counts(cp_home, "sink", "kitchen") == (1, 1, 1))
            # The plugin kept running on both, through every write of both agents.
            assert alive(pid_a) and alive(pid_b)
            assert sorted(entries(cp_home, "pm", "hello-rpc")) == ["node-a", "node-b"]
            # A cordoned node keeps what runs there, as a DaemonSet does; it is no longer desired.
            assert run_cli(cp_home, "cordon", "node-b").exit_code == 0
            poll("DESIRED 1 after the cordon", lambda: counts(cp_home, "pm", "hello-rpc")[0] == 1)
            assert alive(pid_b) and entries(cp_home, "pm", "hello-rpc")["node-b"]["pid"] == pid_b
            # A plugin no longer selected stops on that node (node-a is in the hall now).
            selector = json.dumps({"spec": {"nodeSelector": {"matchLabels": {"room": "kitchen"}}}})
            assert run_cli(cp_home, "patch", "pm", "hello-rpc", "-p", selector).exit_code == 0
            poll("hello-rpc stopped on node-a", lambda: not alive(pid_a)
                 and list(entries(cp_home, "pm", "hello-rpc")) == ["node-b"])
            # ... and lets go of it: a delete no longer waits for node-a.
            poll("node-a's finalizer removed", lambda: get_json(cp_home, "pm", "hello-rpc")["metadata"].get(
                "finalizers") == ["node.mfx.musicfox.io/node-b"])
            assert alive(pid_b), "node-b keeps it (cordoned, selected)"
            assert "PATCH" not in conflicts(cp_home)
    finally:
        server.stop()


def test_a_deleted_plugin_waits_for_the_finalizer_of_every_node_until_that_node_is_deleted(tmp_path: Path) -> None:
    cp_home = tmp_path / "cp"
    server = control_plane(cp_home, "--listen-http", "127.0.0.1:0")
    address, token = http_address(cp_home), str(cp_home / "token")
    try:
        with agent(tmp_path / "node-a", "--server", address, "--token-file", token, "--node-name", "node-a") as node_a, \
             agent(tmp_path / "node-b", "--server", address, "--token-file", token, "--node-name", "node-b") as node_b:
            poll("both nodes Ready", lambda: node_ready(cp_home, "node-a") and node_ready(cp_home, "node-b"))
            applied = run_cli(cp_home, "apply", "-f", "-", input=yaml.safe_dump(hello_rpc()))
            assert applied.exit_code == 0, applied.output
            poll("hello-rpc Ready on both nodes", lambda: counts(cp_home, "pm", "hello-rpc") == (2, 2, 2))
            pid_a = entries(cp_home, "pm", "hello-rpc")["node-a"]["pid"]
            # One finalizer per node that placed it, each node's own (a node whose first one
            # another node's crossed adds it again: see NodeStatusStore.update).
            poll("one finalizer per node", lambda: sorted(get_json(cp_home, "pm", "hello-rpc")["metadata"].get(
                "finalizers") or []) == ["node.mfx.musicfox.io/node-a", "node.mfx.musicfox.io/node-b"])

            node_b.stop()  # down, its Node still there: the delete waits for it
            deleted = run_cli(cp_home, "delete", "pm", "hello-rpc", "--no-wait")
            assert deleted.exit_code == 0, deleted.output
            poll("node-a stopped its copy", lambda: not alive(pid_a))
            waiting = poll("only node-b's finalizer left", lambda: (
                (obj := get_json(cp_home, "pm", "hello-rpc")) is not None
                and obj["metadata"].get("finalizers") == ["node.mfx.musicfox.io/node-b"] and obj))
            assert waiting["metadata"].get("deletionTimestamp"), waiting["metadata"]
            table = run_cli(cp_home, "get", "pm", "hello-rpc").output.splitlines()
            assert table[0].split()[4] == "REASON" and table[1].split()[4] == "Terminating", table
            timed_out = run_cli(cp_home, "delete", "pm", "hello-rpc", "--timeout", "1s")
            assert timed_out.exit_code != 0, timed_out.output
            assert "held by its finalizers: node.mfx.musicfox.io/node-b" in timed_out.output, timed_out.output
            assert "mfx delete node NAME" in timed_out.output, timed_out.output

            # A node that is gone lets go of what it held, as a deleted Node's pods are collected.
            assert node_a.process.poll() is None
            assert run_cli(cp_home, "delete", "node", "node-b").exit_code == 0
            poll("hello-rpc gone", lambda: get_json(cp_home, "pm", "hello-rpc") is None)
    finally:
        server.stop()


def test_the_one_shared_finalizer_of_earlier_versions_is_kept_while_the_object_lives_then_let_go(
        tmp_path: Path) -> None:
    cp_home = tmp_path / "cp"
    cp_home.mkdir()
    plugin = hello_rpc()

    async def store_as_earlier_versions_did() -> None:
        async with SQLiteStore(cp_home / "state.db") as store:
            created = await store.create(plugin)
            created["metadata"]["finalizers"] = [FINALIZER]
            await store.update(created)

    anyio.run(store_as_earlier_versions_did)
    server = control_plane(cp_home, "--listen-http", "127.0.0.1:0")
    try:
        with agent(tmp_path / "node-a", "--server", http_address(cp_home), "--token-file", str(cp_home / "token"),
                   "--node-name", "node-a"):
            poll("hello-rpc Ready on node-a", lambda: counts(cp_home, "pm", "hello-rpc") == (1, 1, 1))
            assert get_json(cp_home, "pm", "hello-rpc")["metadata"]["finalizers"] == [
                FINALIZER, "node.mfx.musicfox.io/node-a"]
            deleted = run_cli(cp_home, "delete", "pm", "hello-rpc", "--timeout", "30s")
            assert deleted.exit_code == 0, deleted.output
            assert get_json(cp_home, "pm", "hello-rpc") is None
    finally:
        server.stop()


def test_a_dependency_placed_elsewhere_is_not_ready_on_this_node(tmp_path: Path) -> None:
    cp_home = tmp_path / "cp"
    server = control_plane(cp_home, "--listen-http", "127.0.0.1:0")
    try:
        with agent(tmp_path / "node-a", "--server", http_address(cp_home), "--token-file", str(cp_home / "token"),
                   "--node-name", "node-a", "--node-labels", "room=kitchen") as node_a:
            poll("node-a Ready", lambda: node_ready(cp_home, "node-a"))
            assert node_a.process.poll() is None
            base = hello_rpc()
            elsewhere = {**base, "metadata": {**base["metadata"], "name": "base"},
                         "spec": {**base["spec"], "nodeSelector": {"matchExpressions": [
                             {"key": "room", "operator": "In", "values": ["hall"]}]}}}
            dependent = {**base, "spec": {**base["spec"], "dependencies": [{"name": "base", "version": ">=0.1.0"}]}}
            applied = run_cli(cp_home, "apply", "-f", "-", input=yaml.safe_dump_all([elsewhere, dependent]))
            assert applied.exit_code == 0, applied.output

            poll("hello-rpc to wait for base, not placed on node-a",
                 lambda: entries(cp_home, "pm", "hello-rpc").get("node-a", {}).get("reason") == "DependencyNotOnNode")
            poll("no node runs base", lambda: counts(cp_home, "pm", "base")[0] == 0)
            plugin = get_json(cp_home, "pm", "base")
            ready = next(c for c in plugin["status"]["conditions"] if c["type"] == "Ready")
            assert ready["reason"] == "NoNodesSelected" and "room in (hall)" in ready["message"]
            entry = entries(cp_home, "pm", "hello-rpc")["node-a"]
            assert entry["ready"] is False and entry["reason"] == "DependencyNotOnNode"
            assert "base not placed on node node-a" in entry["message"]

            # The entry of a node that is gone (Node deleted) is removed by the leader.
            ghost = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "Node", "metadata": {"name": "ghost"}}
            assert run_cli(cp_home, "apply", "-f", "-", input=yaml.safe_dump(ghost)).exit_code == 0
            stale = json.dumps({"status": {"nodes": {"ghost": {"ready": True}}}})
            patched = run_cli(cp_home, "patch", "pm", "hello-rpc", "--subresource", "status", "-p", stale)
            assert patched.exit_code == 0, patched.output
            assert "ghost" in entries(cp_home, "pm", "hello-rpc")
            assert run_cli(cp_home, "delete", "node", "ghost").exit_code == 0
            poll("the ghost's entry collected", lambda: sorted(entries(cp_home, "pm", "hello-rpc")) == ["node-a"])
    finally:
        server.stop()


def test_a_bad_node_selector_names_the_field(tmp_path: Path) -> None:
    cp_home = tmp_path / "cp"
    server = control_plane(cp_home)
    try:
        doc = hello_rpc()
        doc["spec"]["nodeSelector"] = {"matchExpressions": [{"key": "room", "operator": "Near"}]}
        applied = run_cli(cp_home, "apply", "-f", "-", input=yaml.safe_dump(doc))
        assert applied.exit_code != 0
        assert "spec.nodeSelector.matchExpressions[0].operator" in applied.output
    finally:
        server.stop()


def test_one_machine_keeps_its_conditions_adds_its_entry_and_skips_what_is_placed_elsewhere(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "here", "away")
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root], node_name="solo",
                      node_labels={"room": "kitchen"}).running():
        away = manifest("away")
        away["spec"]["nodeSelector"] = {"matchLabels": {"room": "hall"}}
        apply(home, manifest("here"), away)
        wait_ready(home, "here")
        here = get(home, "here")
        assert condition(here, "Ready")["reason"] != "AllNodesReady", "the in-process agent's conditions stay"
        assert here["status"]["nodes"]["solo"]["ready"] is True
        assert counts(home, "pm", "here") == (1, 1, 1)
        obj = wait_for(home, "away", lambda o: o is not None and condition(o, "Ready").get("reason") == "NotScheduled")
        assert obj is not None and "room=hall" in condition(obj, "Ready")["message"]
        assert "nodes" not in obj["status"] and counts(home, "pm", "away") == (0, 0, 0)
