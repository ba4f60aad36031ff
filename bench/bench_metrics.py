"""/metrics scrape time with 1000 plugins against 10 plugins, in one run.

Each plugin has what a running daemon keeps for it: its object (conditions, generation) in
the object cache, read by the state collector at scrape time, and its instrumentation series
(restarts, health histogram, three call-method histograms, breaker, RPC memory and CPU).
The scrape is ``render_registry`` on the daemon's registry, as the /metrics route runs it.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Figure, median
from observability.fastmetrics import render_registry
from observability.metrics import Metrics
from observability.state_metrics import ObjectStateCollector

METHODS = ("search", "song_url", "lyrics")
TARGET_MS = 50.0


def plugin_object(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
        "metadata": {"name": f"plugin-{i:04d}", "generation": 3, "resourceVersion": str(1000 + i)},
        "spec": {"version": "1.2.0", "type": "rpc", "entryPoint": "python -m p", "suspend": False},
        "status": {"observedGeneration": 3, "conditions": [
            {"type": t, "status": "True" if t in ("Ready", "Healthy", "DependenciesReady") else "False"}
            for t in ("Ready", "Reconciling", "Stalled", "DependenciesReady", "Healthy")]},
    }


def daemon_registry(plugins: int) -> Metrics:
    metrics = Metrics()
    metrics.build_info.info({"version": "bench"})
    objects = {"PluginManifest": {}, "AudioSink": {}, "GitSource": {}}  # type: dict[str, dict[str, Any]]
    for i in range(plugins):
        obj = plugin_object(i)
        name = obj["metadata"]["name"]
        objects["PluginManifest"][name] = obj
        metrics.init_plugin(name, METHODS, process=True)
        metrics.plugin_health_check_duration_seconds.labels(name).observe(0.002)
        for method in METHODS:
            metrics.plugin_call_duration_seconds.labels(name, method).observe(0.001)
        metrics.plugin_process_resident_memory_bytes.labels(name).set(40e6)
    metrics.registry.register(ObjectStateCollector(lambda: {k: dict(v) for k, v in objects.items()}))
    return metrics


def scrape_ms(metrics: Metrics, rounds: int, *, busy: bool = False) -> tuple[float, int]:
    """Median scrape time; ``busy``: every plugin had a health probe and calls since the last scrape."""
    size = len(render_registry(metrics.registry))  # warm-up
    samples = []
    children = list(metrics.plugin_health_check_duration_seconds._metrics.values())
    children += list(metrics.plugin_call_duration_seconds._metrics.values())
    for _ in range(rounds):
        if busy:
            for child in children:
                child.observe(0.003)
        started = time.perf_counter()
        render_registry(metrics.registry)
        samples.append((time.perf_counter() - started) * 1000)
    return median(samples), size


def run() -> list[Figure]:
    small_ms, small_bytes = scrape_ms(daemon_registry(10), rounds=50)
    large = daemon_registry(1000)
    large_ms, large_bytes = scrape_ms(large, rounds=10)
    busy_ms, _ = scrape_ms(large, rounds=10, busy=True)
    return [
        Figure("scrape /metrics, 1000 plugins, all probed and called since the last scrape", busy_ms, "ms",
               baseline_name="10 plugins", baseline=small_ms, target=f"< {TARGET_MS:g} ms at 1000 plugins"),
        Figure("scrape /metrics, 1000 plugins", large_ms, "ms", baseline_name="10 plugins",
               baseline=small_ms, target=f"< {TARGET_MS:g} ms at 1000 plugins"),
        Figure("scrape size, 1000 plugins", large_bytes / 1024, "KiB", baseline_name="10 plugins",
               baseline=small_bytes / 1024),
        Figure("scrape time per plugin, 1000 plugins", large_ms / 1000 * 1000, "µs",
               baseline_name="10 plugins", baseline=small_ms / 10 * 1000, target="ratio close to 1 (linear)"),
    ]
