"""``mfx top``: rows from the API's objects and /metrics counters, rates between refreshes,
and one table printed against a real daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from rich.console import Console

from mfx.cli.top import build_rows, parse_sample, render
from observability.metrics import Metrics
from tests.daemon_harness import ThreadDaemon, run_cli


def plugin(name: str, **status: Any) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
            "metadata": {"name": name}, "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m x"},
            "status": status}


def test_rows_combine_status_and_counter_rates_between_two_refreshes() -> None:
    metrics = Metrics()
    metrics.init_plugin("busy", ("search",), process=True)
    metrics.plugin_process_resident_memory_bytes.labels("busy").set(32 * 1024 * 1024)
    first = parse_sample(generate_latest(metrics.registry).decode(), at=100.0)
    for _ in range(20):
        metrics.plugin_call_duration_seconds.labels("busy", "search").observe(0.002)
    metrics.plugin_call_errors_total.labels("busy", "search", "Timeout").inc(2)
    second = parse_sample(generate_latest(metrics.registry).decode(), at=102.0)
    objects = [
        plugin("busy", restartCount=3, conditions=[{"type": "Ready", "status": "True"}],
               lastHealthProbe={"durationSeconds": 0.0042}, circuitBreaker={"state": "open"}),
        plugin("idle"),
    ]
    assert [r.calls_per_second for r in build_rows(objects, first, None)] == [None, None]
    busy, idle = build_rows(objects, second, first)
    assert (busy.ready, busy.restarts, busy.breaker) == ("True", 3, "OPEN")
    assert busy.calls_per_second == 10.0 and busy.errors_per_second == 1.0
    assert busy.memory_bytes == 32 * 1024 * 1024 and busy.health_latency == 0.0042
    assert (idle.ready, idle.calls_per_second, idle.memory_bytes) == ("Unknown", None, None)

    console = Console(record=True, width=140)
    console.print(render([busy, idle]))
    text = console.export_text()
    assert "4.2ms" in text and "32.0Mi" in text and "10.0" in text and "OPEN" in text


def test_mfx_top_once_prints_every_plugin_from_a_real_daemon(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ThreadDaemon(home).running() as daemon:
        for name in ("alpha", "beta"):
            daemon.call(daemon.context.store.create, plugin(name))  # type: ignore[union-attr]
        shown = run_cli(home, "top", "--once", "--sort", "name")
        assert shown.exit_code == 0, shown.output
        lines = shown.output.splitlines()
        assert "0/2 plugins Ready" in lines[0]
        assert lines[1].split()[:4] == ["NAME", "TYPE", "VERSION", "READY"]
        assert [line.split()[0] for line in lines[2:]] == ["alpha", "beta"]
        bad = run_cli(home, "top", "--once", "--interval", "0s")
        assert bad.exit_code == 2 and "Invalid value for '--interval'" in bad.output  # a usage error
