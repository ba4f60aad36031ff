"""``mfx agent``: a node's controllers against a remote control plane, through its HTTP API only.

Real processes on loopback: ``mfx serve --no-local-agent`` (the control plane) and ``mfx
agent --server http://...`` (the node), each with a home of its own. Waits poll a condition
read through the API, with a deadline as a safety net; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.cli.agent_connection import from_kubeconfig
from tests.daemon_harness import REPO, SubprocessDaemon, mfx_command, run_cli
from tests.plugin_fixtures import client, manifest, plugin_root, poll, wait_for


def control_plane(home: Path, *extra: str) -> SubprocessDaemon:
    return SubprocessDaemon(home, "--no-local-agent", *extra).start()


def http_address(home: Path) -> str:
    return "http://" + (home / "listen-http-address").read_text().strip()


class Agent:
    """``mfx agent`` as a child process; its stderr goes to HOME/../agent.log."""

    def __init__(self, home: Path, *args: str) -> None:
        self.home = home
        self.log = home.parent / f"{home.name}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("MFX_HOME", None)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*mfx_command(), "agent", "--home", str(home), "--plugin-path", str(REPO / "plugins"),
                 "--no-file-tap", *args], env=env, stdout=out, stderr=subprocess.STDOUT)

    def said(self, text: str) -> bool:
        assert self.process.poll() is None, f"mfx agent exited:\n{self.log.read_text()}"
        return text in self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def agent(home: Path, *args: str) -> Iterator[Agent]:
    running = Agent(home, *args)
    try:
        yield running
    finally:
        running.stop()


def get_json(home: Path, *args: str) -> Any:
    result = run_cli(home, "get", *args, "-o", "json")
    return json.loads(result.output) if result.exit_code == 0 else None


def node_ready(home: Path, name: str) -> bool:
    node = get_json(home, "nodes", name)
    conditions = (node or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def lease_renewed(home: Path, name: str) -> str:
    lease = get_json(home, "leases", name) or {}
    return str(lease.get("spec", {}).get("renewTime", ""))


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def hello_rpc() -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "plugins" / "hello-rpc" / "plugin.yaml").read_text())
    doc["spec"]["healthCheck"] = {"interval": "500ms", "timeout": "2s", "failureThreshold": 3}
    return dict(doc)


def test_an_agent_runs_plugins_for_a_remote_control_plane_and_keeps_them_through_its_outage(tmp_path: Path) -> None:
    cp_home, agent_home = tmp_path / "cp", tmp_path / "node-a"
    server = control_plane(cp_home, "--listen-http", "127.0.0.1:0")
    address = http_address(cp_home)
    try:
        with agent(agent_home, "--server", address, "--token-file", str(cp_home / "token"),
                   "--node-name", "node-a", "--node-labels", "room=kitchen", "--node-lease-seconds", "4") as node:
            poll("node-a Ready through the server", lambda: node_ready(cp_home, "node-a"))
            assert get_json(cp_home, "nodes", "node-a")["metadata"]["labels"]["room"] == "kitchen"

            applied = run_cli(cp_home, "apply", "-f", "-", input=yaml.safe_dump(hello_rpc()))
            assert applied.exit_code == 0, applied.output
            waited = run_cli(cp_home, "wait", "--for=condition=Ready", "pm/hello-rpc", "--timeout=60s")
            assert waited.exit_code == 0, waited.output
            plugin = get_json(cp_home, "pm", "hello-rpc")
            # Each node reports in its own entry (tests/test_placement.py has two of them).
            pid = plugin["status"]["nodes"]["node-a"]["pid"]
            assert parent_of(pid) == node.process.pid, "the plugin runs under the agent"
            # The agent's own socket serves the player (and passes object requests on).
            assert run_cli(agent_home, "now").exit_code == 0
            assert get_json(agent_home, "pm", "hello-rpc")["status"]["nodes"]["node-a"]["pid"] == pid

            server.stop(signal.SIGKILL)
            poll("the agent to notice the outage", lambda: node.said("no API server reachable"))
            poll("a lease renewal to fail", lambda: node.said("could not renew its lease"))
            assert alive(pid) and parent_of(pid) == node.process.pid, "the plugin keeps running"
            assert run_cli(agent_home, "now").exit_code == 0, "the player keeps answering"

            server = control_plane(cp_home, "--listen-http", address.removeprefix("http://"))
            poll("the agent to reach the server again", lambda: node.said("answers again"))
            first = poll("the lease as stored", lambda: lease_renewed(cp_home, "node-a"))
            poll("a lease renewal after the outage", lambda: lease_renewed(cp_home, "node-a") > first)
            poll("node-a Ready again", lambda: node_ready(cp_home, "node-a"))
            entry = get_json(cp_home, "pm", "hello-rpc")["status"]["nodes"]["node-a"]
            assert entry["pid"] == pid and alive(pid), "the plugin was not restarted"
            assert entry.get("restartCount", 0) == 0
            log = node.log.read_text()
            assert log.count("what runs keeps running") == 1, "the outage is logged once, not per retry"
            assert log.count("could not renew its lease") == 1
            assert log.count("starting 0.1.0") == 1, "the plugin started once"
        assert not alive(pid), "stopping the agent stops its plugins"
    finally:
        server.stop()


def api_gets(home: Path) -> float:
    """The GET requests the API server has answered (its ``mfx_api_requests_total``)."""
    with client(home) as c:
        text = c.request("GET", "/metrics", accept="text/plain")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("mfx_api_requests_total{") and 'verb="GET"' in line)


def ready_on(node_name: str) -> Callable[[Any], bool]:
    return lambda obj: bool(obj and ((obj.get("status") or {}).get("nodes") or {}).get(node_name, {}).get("ready"))


def test_an_agent_reads_what_it_reconciles_from_its_watches_not_from_the_server(tmp_path: Path) -> None:
    """Each reconcile read its object, and each waiting plugin its dependencies, with a GET
    of its own: ~8 per plugin started, and more of the agent's CPU and the server's than the
    writes took. Now they come from what the agent's watches delivered."""
    cp_home = tmp_path / "cp"
    names = [f"chain-{i}" for i in range(8)]
    root = plugin_root(tmp_path, *names)
    server = control_plane(cp_home)
    try:
        with agent(tmp_path / "node-a", "--server", f"unix://{cp_home / 'mfx.sock'}", "--node-name", "node-a",
                   "--plugin-path", str(root)) as node:
            poll("node-a Ready through the server", lambda: node_ready(cp_home, "node-a"))
            before = api_gets(cp_home)
            with client(cp_home) as c:  # created, not applied: an apply reads each object first
                for i, name in enumerate(names):
                    c.create(manifest(name, deps=names[max(i - 1, 0):i]), PLUGIN_MANIFEST)
            # The last of a chain of dependencies is Ready on the node last.
            wait_for(cp_home, names[-1], ready_on("node-a"))
            gets = api_gets(cp_home) - before
            assert node.said(f"[{names[-1]}] 1.0.0 is running")
        # The wait and the metrics reads are a handful of GETs; the agent's own were about
        # five a plugin (40 for these 8).
        assert gets < len(names), f"{gets:g} GET requests while {len(names)} plugins started"
    finally:
        server.stop()


def test_an_agent_given_a_dead_server_first_uses_the_live_one(tmp_path: Path) -> None:
    cp_home = tmp_path / "cp"
    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    server = control_plane(cp_home, "--listen-http", "127.0.0.1:0")
    live = http_address(cp_home)
    try:
        with agent(tmp_path / "node-b", "--server", f"{dead},{live}", "--token-file", str(cp_home / "token"),
                   "--node-name", "node-b") as node:
            poll("node-b Ready through the live server", lambda: node_ready(cp_home, "node-b"))
            assert node.said(f"talking to the API server at {live}")
    finally:
        server.stop()


def test_an_agent_reaches_an_https_server_with_the_kubeconfig_mfx_writes(tmp_path: Path) -> None:
    cp_home = tmp_path / "cp"
    server = control_plane(cp_home, "--listen", "127.0.0.1:0")
    try:
        written = run_cli(cp_home, "config", "kubeconfig", "--output", str(tmp_path / "kubeconfig"))
        assert written.exit_code == 0, written.output
        connection = from_kubeconfig(tmp_path / "kubeconfig", tmp_path / "node-c")
        assert connection.servers[0].startswith("https://") and connection.token
        assert connection.ca_file is not None and connection.ca_file.read_bytes() == (cp_home / "tls" / "ca.crt").read_bytes()
        with agent(tmp_path / "node-c", "--kubeconfig", str(tmp_path / "kubeconfig"), "--node-name", "node-c"):
            poll("node-c Ready through the https server", lambda: node_ready(cp_home, "node-c"))
    finally:
        server.stop()


@pytest.mark.parametrize(("flags", "said"), [
    (["--node-name", "n"], "--server"),
    (["--server", "ftp://x", "--node-name", "n"], "ftp://x"),
    (["--server", "http://127.0.0.1:1", "--node-name", "Bad_Name"], "Bad_Name"),
])
def test_agent_refuses_bad_flags_before_starting(tmp_path: Path, flags: list[str], said: str) -> None:
    result = run_cli(tmp_path, "agent", "--home", str(tmp_path / "a"), *flags)
    assert result.exit_code == 2 and said in result.output
    assert not (tmp_path / "a" / "mfx.sock").exists()


def test_an_agent_started_before_its_server_registers_once_the_server_answers(tmp_path: Path) -> None:
    cp_home = tmp_path / "cp"
    with socket.socket() as probe:  # the port the server will listen on; nothing does yet
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    cp_home.mkdir()
    token = cp_home / "token"
    token.write_text("shared-token\n")  # the daemon keeps a token it finds in its home
    token.chmod(0o600)
    with agent(tmp_path / "node-d", "--server", f"http://{address}", "--token-file", str(token),
               "--node-name", "node-d", "--node-lease-seconds", "4") as node:
        poll("the agent to find no server", lambda: node.said("cannot register with the API server yet"))
        server = control_plane(cp_home, "--listen-http", address)
        try:
            poll("node-d Ready once the server answers", lambda: node_ready(cp_home, "node-d"))
            poll("the agent to say it registered", lambda: node.said("node node-d registered"))
            log = node.log.read_text()
            assert log.count("what runs keeps running") == 1, log
            assert log.count("cannot register with the API server yet") == 1, log
        finally:
            server.stop()


def test_an_agent_whose_server_never_answers_stops_at_sigterm(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with agent(tmp_path / "node-e", "--server", dead, "--node-name", "node-e") as node:
        poll("the agent to find no server", lambda: node.said("no API server reachable"))
        node.process.send_signal(signal.SIGTERM)
        assert node.process.wait(timeout=30) == 0, node.log.read_text()
