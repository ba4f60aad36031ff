"""An rpc plugin's own process shows on /metrics: the resident memory and CPU time of the
process tree the status names, sampled at scrape, so the Grafana panels show real values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import psutil

from mfx.server.services import default_services
from tests.daemon_harness import REPO, ThreadDaemon, run_cli


def scrape(home: Path) -> str:
    transport = httpx.HTTPTransport(uds=str(home / "mfx.sock"))
    with httpx.Client(transport=transport, base_url="http://mfx") as http:
        answer = http.get("/metrics")
        assert answer.status_code == 200
        return answer.text


def call_greet(home: Path, times: int) -> None:
    transport = httpx.HTTPTransport(uds=str(home / "mfx.sock"))
    with httpx.Client(transport=transport, base_url="http://mfx") as http:
        for _ in range(times):
            answer = http.post("/apis/mfx.musicfox.io/v1alpha1/pluginmanifests/hello-rpc/call",
                               json={"method": "greet", "params": {"name": "Ada"}})
            assert answer.status_code == 200, answer.text


def sample(text: str, family: str, name: str) -> float | None:
    found = re.search(rf'^{family}{{name="{re.escape(name)}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_an_rpc_plugins_memory_and_cpu_are_on_metrics(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ThreadDaemon(home, services=default_services(), plugin_paths=[REPO / "plugins"]).running():
        for plugin in ("hello-rpc", "hello-python"):
            applied = run_cli(home, "apply", "-f", str(REPO / "plugins" / plugin / "plugin.yaml"))
            assert applied.exit_code == 0, applied.output
        ready = run_cli(home, "wait", "--for=condition=Ready", "pm", "--all", "--timeout=60s")
        assert ready.exit_code == 0, ready.output
        shown = run_cli(home, "get", "pm", "hello-rpc", "-o", "json")
        pid = json.loads(shown.output)["status"]["runtime"]["pid"]

        first = scrape(home)
        rss = sample(first, "mfx_plugin_process_resident_memory_bytes", "hello-rpc")
        assert rss is not None and rss >= psutil.Process(pid).memory_info().rss // 2 > 0
        cpu = sample(first, "mfx_plugin_process_cpu_seconds_total", "hello-rpc")
        assert cpu is not None  # a process forked ready to serve may not have used a clock tick yet

        # Work in the plugin shows as CPU seconds, and the counter never goes down.
        for _ in range(30):
            call_greet(home, 200)
            later = sample(scrape(home), "mfx_plugin_process_cpu_seconds_total", "hello-rpc")
            assert later is not None and later >= cpu
            if later > cpu:
                break
        assert later > cpu, "6000 calls into the plugin never showed as CPU time"

        # An in-process plugin has no process of its own, so no such series.
        assert sample(first, "mfx_plugin_process_resident_memory_bytes", "hello-python") is None
