"""End to end: a real Prometheus scrapes a real ``mfx serve`` running real plugins and an
AudioSink; every dashboard panel's PromQL returns series, and the alert rules are loaded."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.daemon_harness import REPO, SubprocessDaemon, mfx_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLUGINS = ("hello-rpc", "hello-python", "now-playing")
SINK = "speakers"
DASHBOARDS = REPO / "observability" / "dashboards"
RULES = REPO / "observability" / "alerts" / "mfx-alerts.yaml"
DEADLINE_SECONDS = 90.0

ALSA_TAP_CONFIG = """
pcm.null { type null  hint { show on description "Discard all samples" } }
pcm.tap {
    type file
    slave.pcm "null"
    file { @func getenv  vars [ ALSA_TAP_FILE ]  default "/tmp/alsa-tap.raw" }
    format "raw"
    hint { show on description "Raw samples to $ALSA_TAP_FILE" }
}
pcm.!default "tap"
ctl.!default { type hw card 0 }
"""


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends",
                        "prometheus"], check=True, capture_output=True, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        path = shutil.which("prometheus")
    assert path is not None, "the Debian package prometheus did not install a prometheus binary"
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(condition: Any, what: str, deadline: float) -> Any:
    """Re-check ``condition`` until it returns a truthy value or the deadline passes."""
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        threading.Event().wait(0.2)


def mfx(home: Path, *args: str, timeout: float = 120) -> str:
    done = subprocess.run([*mfx_command(), "--home", str(home), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "MFX_HOME": str(home)})
    assert done.returncode == 0, f"mfx {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    home = tmp_path / "home"
    alsa = tmp_path / "alsa.conf"
    alsa.write_text(ALSA_TAP_CONFIG)
    port = free_port()
    env = {"ALSA_CONFIG_PATH": str(alsa), "ALSA_TAP_FILE": str(tmp_path / "tap.raw")}
    process = SubprocessDaemon(home, "--metrics-address", f"127.0.0.1:{port}",
                               "--plugin-path", str(REPO / "plugins"), env=env)
    process.start()
    try:
        yield home, port
    finally:
        process.stop()


@pytest.fixture
def prometheus(tmp_path: Path, daemon: tuple[Path, int]) -> Iterator[str]:
    _, metrics_port = daemon
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "mfx", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }))
    process = subprocess.Popen(
        [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited: {process.stderr.read().decode() if process.stderr else ''}")
            try:
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        poll(ready, "prometheus to be ready", time.monotonic() + 30)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) for every target of every committed dashboard."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets") or []:
                queries.append((path.name, panel["title"], target["expr"]))
    return queries


def instances(expr: str) -> list[str]:
    """The query for each value a dashboard variable can take here (one must return series)."""
    expr = expr.replace("$__rate_interval", "30s")
    if "$plugin" in expr:
        return [expr.replace("$plugin", name) for name in PLUGINS]
    return [expr.replace("$sink", SINK)]


def test_every_dashboard_query_returns_series_and_the_alert_rules_are_loaded(
        tmp_path: Path, daemon: tuple[Path, int], prometheus: str) -> None:
    home, _ = daemon
    sink = tmp_path / "sink.yaml"
    sink.write_text(yaml.safe_dump({
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink", "metadata": {"name": SINK},
        "spec": {"device": "default", "rate": 48000, "channels": 2, "format": "S16_LE", "default": True},
    }))
    manifests = [arg for name in PLUGINS for arg in ("-f", str(REPO / "plugins" / name / "plugin.yaml"))]
    mfx(home, "apply", *manifests, "-f", str(sink))
    mfx(home, "wait", "--for=condition=Ready", "pm", "--all", "--timeout=60s")
    mfx(home, "wait", "--for=condition=Ready", "sink", "--all", "--timeout=60s")
    # Real service calls, as the player makes them, so the call panels have data.
    for _ in range(3):
        mfx(home, "call", "pm/hello-rpc", "greet", '{"name": "prometheus"}')

    deadline = time.monotonic() + DEADLINE_SECONDS
    with httpx.Client(base_url=prometheus, timeout=10) as api:
        def series(query: str) -> list[dict[str, Any]]:
            answer = api.get("/api/v1/query", params={"query": query})
            body = answer.json()
            assert answer.status_code == 200 and body["status"] == "success", f"{query}: {body}"
            return list(body["data"]["result"])

        for dashboard, title, expr in dashboard_queries():
            queries = instances(expr)
            poll(lambda qs=queries: any(series(q) for q in qs), f"{dashboard} / {title}: {expr}", deadline)

        def rules_loaded() -> set[str]:
            groups = api.get("/api/v1/rules").json()["data"]["groups"]
            return {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"}

        loaded = poll(rules_loaded, "the alert rules to load", deadline)
        assert loaded == {"PluginNotReady", "PluginCrashLooping", "PluginHealthCheckFailing",
                          "CircuitBreakerOpen", "ReconcileErrorsHigh", "AudioSinkXruns"}
        # A healthy daemon raises none of them.
        firing = [a for a in api.get("/api/v1/alerts").json()["data"]["alerts"] if a["state"] == "firing"]
        assert firing == []
