"""End to end: a real Prometheus scrapes a real ``mfx serve`` running real plugins, the music
plugins and an AudioSink. The test makes the traffic each panel shows (searches, a played track,
calls and failed calls, a plugin killed and restarted, reconcile errors), then every dashboard
panel's PromQL must return real samples: finite values (a quantile of nothing is NaN), a
fallback such as ``or ... * 0`` does not count (its real side must have samples), and the panels
that show traffic must show more than zero. The alert rules are loaded, and none fires."""

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
from tests.music_fixtures import build_library
from tests.player_env import local_music_manifest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLUGINS = ("hello-rpc", "hello-python", "now-playing")
# A range that covers the whole test, so a panel shows the traffic made at its start.
RANGE = "5m"

# Panels that show traffic the test makes: their value must be above zero, not just present.
TRAFFIC_PANELS = {
    "Plugins Ready", "Readiness by plugin", "Ready", "Version", "Restarts", "Restarts (1h)",
    "Reconcile rate", "Reconcile errors", "Reconcile duration p99", "Work queue wait p99",
    "API requests", "Health check latency", "Call latency p99", "Call rate", "Call errors",
    "Memory (RPC process)", "CPU (RPC process)", "WebAssembly fuel", "Tracks started",
    "Search latency p99", "Frames written", "Device open", "Output latency", "Writer lateness",
    "WAL checkpoint duration p99", "WAL pages checkpointed",
}
# Panels that get real samples here but cannot show more than zero, and why.
ZERO_IS_THE_TRUTH = {
    "Xruns": "the ALSA file tap never underruns (tests/test_audiosink_realtime.py sees xruns on a paced sink)",
    "Health check failures": "no first-party plugin fails its health check while its process lives",
    "Circuit breaker": "no plugin's breaker is open in a healthy run",
    "Circuit breaker state": "no plugin's breaker is open in a healthy run",
    "Plugins suspended": "nothing is suspended",
    "Plugins stalled": "nothing is stalled",
    "Plugins not Ready": "every plugin becomes Ready",
    "Work queue depth": "the queues are drained when nothing changes",
    "Silence inserted": "the idle tap is fed silence only between tracks",
    "Buffer fill": "the file tap takes every period at once, so the ring buffer is empty at each scrape",
    "Engine restarts": "nothing kills the audio engine in a healthy run",
}
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
    expr = expr.replace("$__rate_interval", RANGE)
    if "$plugin" in expr:
        return [expr.replace("$plugin", name) for name in PLUGINS]
    return [expr.replace("$sink", SINK)]


def real_side(expr: str) -> str:
    """The query without a fallback: ``A or B * 0`` shows samples of nothing when A has none."""
    return expr.split(" or ")[0] if " or " in expr else expr


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    values = [float(item["value"][1]) for item in result]
    return [v for v in values if v == v and v not in (float("inf"), float("-inf"))]


def make_traffic(home: Path, tmp_path: Path, scraped: Any) -> None:
    """What the panels show: plugins, music searched and played, calls, failures, a restart."""
    music = build_library(tmp_path / "music").root
    (tmp_path / "music.yaml").write_text(yaml.safe_dump(local_music_manifest(music)))
    mfx(home, "apply", "-f", str(tmp_path / "music.yaml"),
        "-f", str(REPO / "plugins" / "codec-soundfile" / "plugin.yaml"))
    mfx(home, "wait", "--for=condition=Ready", "pm", "--all", "--timeout=90s")
    mfx(home, "search", "cafe del mar")
    mfx(home, "play", "cafe del mar")
    # Calls as the player makes them, a failing one, and calls into the WebAssembly plugin.
    transport = httpx.HTTPTransport(uds=str(home / "mfx.sock"))
    with httpx.Client(transport=transport, base_url="http://mfx", timeout=30) as http:
        def call(plugin: str, method: str, params: Any) -> int:
            return http.post(f"/apis/mfx.musicfox.io/v1alpha1/pluginmanifests/{plugin}/call",
                             json={"method": method, "params": params}).status_code
        for _ in range(500):
            assert call("hello-rpc", "greet", {"name": "prometheus"}) == 200
        # A series is born at its first error; rate() shows errors only once Prometheus has it.
        assert call("hello-rpc", "no_such_method", None) >= 400
        scraped('mfx_plugin_call_errors_total{name="hello-rpc"}')
        for _ in range(5):
            assert call("hello-rpc", "no_such_method", None) >= 400
        for _ in range(20):
            call("now-playing", "format", {"title": "Café Del Mar", "artist": "Energy 52"})
    # A crash: the controller restarts the plugin (the Restarts panels).
    pid = json.loads(mfx(home, "get", "pm", "hello-rpc", "-o", "json"))["status"]["runtime"]["pid"]
    os.kill(pid, 9)
    poll(lambda: json.loads(mfx(home, "get", "pm", "hello-rpc", "-o", "json"))["status"].get("restartCount", 0) >= 1,
         "hello-rpc to be restarted", time.monotonic() + 60)
    mfx(home, "wait", "--for=condition=Ready", "pm/hello-rpc", "--timeout=60s")
    # A GitSource whose repository does not exist: its reconciles end in errors, retried.
    (tmp_path / "git.yaml").write_text(yaml.safe_dump({
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "GitSource", "metadata": {"name": "missing"},
        "spec": {"url": str(tmp_path / "no-such-repository"), "interval": "1m"}}))
    mfx(home, "apply", "-f", str(tmp_path / "git.yaml"))
    # A GitOps-sized apply and its removal: enough writes for the store to checkpoint its
    # write-ahead log (the Store panels). Suspended plugins: nothing starts.
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    for i in range(300):
        (bulk / f"b{i:03d}.yaml").write_text(yaml.safe_dump({
            "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
            "metadata": {"name": f"bulk-{i:03d}", "labels": {"bulk": "yes"}, "annotations": {"note": "x" * 16384}},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m none", "suspend": True}}))
    mfx(home, "apply", "-f", str(bulk))
    mfx(home, "delete", "pm", "-l", "bulk=yes")


def test_every_dashboard_panel_shows_real_samples_and_the_alert_rules_are_loaded(
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
    # increase() and rate() see a change only between two samples: let Prometheus take its
    # first sample of the daemon before the traffic starts.
    with httpx.Client(base_url=prometheus, timeout=10) as api:
        def scraped(query: str) -> None:
            poll(lambda: api.get("/api/v1/query", params={"query": query}).json()["data"]["result"],
                 f"Prometheus to have {query}", time.monotonic() + DEADLINE_SECONDS)

        scraped('up{job="mfx"} == 1')
        make_traffic(home, tmp_path, scraped)

    panels = dashboard_queries()
    assert {title for _, title, _ in panels} == TRAFFIC_PANELS | set(ZERO_IS_THE_TRUTH), \
        "a panel was added or renamed: say whether the test makes its traffic"
    deadline = time.monotonic() + DEADLINE_SECONDS
    with httpx.Client(base_url=prometheus, timeout=10) as api:
        def values(query: str) -> list[float]:
            answer = api.get("/api/v1/query", params={"query": query})
            body = answer.json()
            assert answer.status_code == 200 and body["status"] == "success", f"{query}: {body}"
            return finite_values(list(body["data"]["result"]))

        for dashboard, title, expr in panels:
            queries = [real_side(q) for q in instances(expr)]
            if title in TRAFFIC_PANELS:
                def shown(qs: list[str] = queries) -> bool:
                    return any(v > 0 for q in qs for v in values(q))
                what = f"{dashboard} / {title} to show the test's traffic: {real_side(expr)}"
            else:
                def shown(qs: list[str] = queries) -> bool:
                    return any(values(q) for q in qs)
                what = f"{dashboard} / {title} to return finite samples: {real_side(expr)}"
            poll(shown, what, deadline)

        def rules_loaded() -> set[str]:
            groups = api.get("/api/v1/rules").json()["data"]["groups"]
            return {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"}

        loaded = poll(rules_loaded, "the alert rules to load", deadline)
        assert loaded == {"PluginNotReady", "PluginCrashLooping", "PluginHealthCheckFailing",
                          "CircuitBreakerOpen", "ReconcileErrorsHigh", "AudioSinkXruns"}
        # A healthy daemon raises none of them (each waits minutes before it fires).
        firing = [a for a in api.get("/api/v1/alerts").json()["data"]["alerts"] if a["state"] == "firing"]
        assert firing == []
