"""500 plugins started by a node agent in a process of its own, through the API server.

The set of ``bench_convergence`` (500 testkit plugins, 50 ms starts, a DAG 10 levels deep),
stored as the API server would have stored them (defaulted) with the agent's Node (the fleet
has run before: this is a restart), then the processes launched; timed until every plugin
reads Ready through the API:

1. ``mfx serve`` alone: its in-process agent starts them (the single-machine daemon).
2. ``mfx serve --no-local-agent`` and ``mfx agent --server unix://...`` launched together:
   the agent reads, watches and writes every object over HTTP, and the server's leader
   writes each plugin's top-level Ready from the node's entry. Against 1 in the same run.
3. What the agent asked of the API server per plugin, by verb (the server's own
   ``mfx_api_requests_total``; the benchmark's list and metrics read are 2 of the GETs).
4. The CPU time of each process per plugin, until all were Ready.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_convergence import DELAY, LEVELS, N, _dag, _manifest, _plugin_path
from bench.common import Figure
from bench.daemon import is_ready, store_offline
from mfx.api.kinds import NODE, PLUGIN_MANIFEST
from mfx.cli.client import Client, Endpoint
from mfx.errors import DaemonUnavailableError
from mfx.server.admission import Admission
from tests.daemon_harness import mfx_command

NODE_NAME = "bench-node"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_socket(path: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    while not path.exists():  # a child process's socket: nothing to wait on but the file
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.002)


def _all_ready(socket: Path, names: set[str]) -> None:
    """Block until every name is Ready, on one list and a watch."""
    with Client(Endpoint(socket=socket), timeout=600) as client:
        page = _first_answer(client)
        pending = names - {o["metadata"]["name"] for o in page["items"] if is_ready(o)}
        if not pending:
            return
        for event in client.watch(PLUGIN_MANIFEST, resource_version=page["metadata"]["resourceVersion"]):
            obj = event.get("object") or {}
            if event.get("type") != "BOOKMARK" and is_ready(obj):
                pending.discard(obj["metadata"]["name"])
                if not pending:
                    return
    raise RuntimeError("the watch ended")


def _first_answer(client: Client) -> dict[str, Any]:
    """The list, once the server answers (its socket file exists a moment before it does)."""
    for _ in range(6000):
        try:
            answer: dict[str, Any] = client.request("GET", PLUGIN_MANIFEST.resource_path)
            return answer
        except DaemonUnavailableError:
            time.sleep(0.01)
    raise RuntimeError("the API server never answered")


def _requests(socket: Path) -> dict[str, float]:
    with Client(Endpoint(socket=socket)) as client:
        text = client.request("GET", "/metrics", accept="text/plain")
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("mfx_api_requests_total{"):
            verb = line.split('verb="', 1)[1].split('"', 1)[0]
            counts[verb] = counts.get(verb, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def _launch(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*mfx_command(), *args, "--log-level", "warning", "--no-file-tap"],
                                stdout=out, stderr=subprocess.STDOUT,
                                env={k: v for k, v in os.environ.items() if k != "MFX_HOME"})


def _stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _run(base: Path, root: Path, objects: list[Any], *, split: bool) -> tuple[float, dict[str, float], float, float]:
    """Launch -> all Ready; the server's request counts; CPU seconds of the server and the agent."""
    home = base / ("cp" if split else "serve")
    home.mkdir()
    node = {"apiVersion": NODE.api_version, "kind": NODE.kind, "metadata": {"name": NODE_NAME}, "spec": {}}
    store_offline(home / "state.db", [*objects, *([node] if split else [])])
    socket = home / "mfx.sock"
    names = {o["metadata"]["name"] for o in objects}
    started = time.perf_counter()
    serve = _launch(["serve", "--home", str(home), "--plugin-path", str(root),
                     *(["--no-local-agent"] if split else [])], base / f"{home.name}.log")
    agent = None
    try:
        if split:
            agent_home = base / "agent"
            agent = _launch(["agent", "--home", str(agent_home), "--server", f"unix://{socket}",
                             "--node-name", NODE_NAME, "--plugin-path", str(root)], base / "agent.log")
        _wait_socket(socket, serve, base / f"{home.name}.log")
        _all_ready(socket, names)
        took = time.perf_counter() - started
        server_cpu = _cpu_seconds(serve.pid)
        agent_cpu = _cpu_seconds(agent.pid) if agent is not None else 0.0
        return took, _requests(socket), server_cpu, agent_cpu
    finally:
        _stop(*([agent] if agent is not None else []), serve)


def run() -> list[Figure]:
    deps = _dag()
    names = sorted(deps)
    admission = Admission()
    objects = [admission.admit(_manifest(n, deps[n], DELAY)) for n in names]
    with tempfile.TemporaryDirectory(prefix="mfx-bench-agent-") as tmp:
        base = Path(tmp)
        root = _plugin_path(base, names)
        alone, _, alone_cpu, _ = _run(base, root, objects, split=False)
        split, requests, server_cpu, agent_cpu = _run(base, root, objects, split=True)
    figures = [
        Figure(f"{N} plugins (50 ms starts, DAG depth {LEVELS}) by an agent process through the API: launch -> all Ready",
               split, "s", "mfx serve with its in-process agent, same set, launch -> all Ready", alone),
        Figure("  CPU per plugin: the API server (store, API, leader)", server_cpu / N * 1000, "ms",
               "mfx serve alone, all of it", alone_cpu / N * 1000),
        Figure("  CPU per plugin: the agent (controllers, plugins, API client)", agent_cpu / N * 1000, "ms"),
    ]
    for verb in sorted(requests):
        figures.append(Figure(f"  requests per plugin the server answered: {verb}", requests[verb] / N, "requests"))
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
