"""The metrics catalog (observability/METRICS.md) matches what /metrics exports; the scrape
passes promtool's lint; object-state series follow the objects in the store."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mfx.errors import GoneError
from mfx.store.base import ListResult, WatchEvent
from mfx.store.cache import ObjectCache
from mfx.store.sqlite import SQLiteStore
from observability.fastmetrics import render_registry
from observability.metrics import Metrics
from observability.state_metrics import ObjectStateCollector

REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / "observability" / "METRICS.md"


def plugin(name: str, *, version: str = "1.0.0", type_: str = "rpc", conditions: list[dict[str, Any]] | None = None,
           suspend: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
        "metadata": {"name": name, "generation": 2},
        "spec": {"version": version, "type": type_, "entryPoint": "python -m x", "suspend": suspend},
    }
    if conditions is not None:
        obj["status"] = {"observedGeneration": 1, "conditions": conditions}
    return obj


def running(obj: dict[str, Any], version: str) -> dict[str, Any]:
    """``obj`` whose controller runs ``version`` (as after a failed upgrade, the old one)."""
    return {**obj, "status": {**(obj.get("status") or {}), "resolvedVersion": version}}


def sample_snapshot() -> dict[str, dict[str, dict[str, Any]]]:
    ready = [{"type": "Ready", "status": "True", "reason": "Started"},
             {"type": "Healthy", "status": "False", "reason": "ProbeFailed"}]
    return {
        "PluginManifest": {"hello": plugin("hello", conditions=ready), "fresh": plugin("fresh", suspend=True),
                           "upgraded": running(plugin("upgraded", version="2.0.0"), "1.0.0")},
        "AudioSink": {"speakers": {"kind": "AudioSink", "metadata": {"name": "speakers"},
                                   "spec": {"device": "default", "default": True},
                                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}}},
        "GitSource": {"fleet": {"kind": "GitSource", "metadata": {"name": "fleet"},
                                "spec": {"url": "https://user:secret@example.org/p.git", "ref": {"tag": "v1"}}}},
    }


def populated_metrics() -> Metrics:
    """A registry where every labelled metric has one child with a sample value."""
    metrics = Metrics()
    metrics.build_info.info({"version": "0.1.0"})
    for collector in list(metrics.registry._collector_to_names):  # noqa: SLF001
        labelnames = getattr(collector, "_labelnames", None)
        if labelnames is None:
            continue
        child = collector.labels(*["x"] * len(labelnames)) if labelnames else collector
        kind = collector._type  # noqa: SLF001
        if kind == "counter":
            child.inc(3)
        elif kind == "gauge":
            child.set(1)
        elif kind == "histogram":
            child.observe(0.003)
    metrics.registry.register(ObjectStateCollector(sample_snapshot))
    return metrics


def exported(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, label names) of every family in an exposition (derived series dropped)."""
    families = list(text_string_to_metric_families(text))
    bases = {f.name for f in families if f.type in ("counter", "histogram")}
    result: dict[str, tuple[str, frozenset[str]]] = {}
    for family in families:
        if family.type == "gauge" and family.name.endswith("_created") and family.name[: -len("_created")] in bases:
            continue
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = frozenset(k for s in family.samples for k in s.labels if k != "le")
        result[name] = (family.type, labels)
    return result


def catalog() -> dict[str, tuple[str, frozenset[str]]]:
    rows: dict[str, tuple[str, frozenset[str]]] = {}
    for line in CATALOG.read_text().splitlines():
        match = re.match(r"\|\s*`(mfx_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|\s*\S", line)
        if match:
            name, type_, labels = match.groups()
            assert name not in rows, f"{name} is listed twice in {CATALOG.name}"
            rows[name] = (type_, frozenset(re.findall(r"`([a-z_]+)`", labels)))
    return rows


def test_catalog_lists_exactly_the_exported_metrics_with_their_types_and_labels() -> None:
    scraped = exported(render_registry(populated_metrics().registry).decode())
    documented = catalog()
    assert sorted(set(scraped) - set(documented)) == [], "exported but missing from METRICS.md"
    assert sorted(set(documented) - set(scraped)) == [], "in METRICS.md but not exported"
    for name, (type_, labels) in scraped.items():
        assert documented[name] == (type_, labels), f"{name}: METRICS.md says {documented[name]}"


def test_the_scrape_passes_promtool_check_metrics() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is missing: install the Debian package prometheus (make system)")
    text = render_registry(populated_metrics().registry)
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


def test_conditions_are_one_hot_per_type_and_unwritten_types_are_unknown() -> None:
    metrics = Metrics()
    metrics.registry.register(ObjectStateCollector(sample_snapshot))
    value = metrics.registry.get_sample_value
    cond = "mfx_plugin_status_condition"
    assert value(cond, {"name": "hello", "condition": "Ready", "status": "True"}) == 1
    assert value(cond, {"name": "hello", "condition": "Ready", "status": "False"}) == 0
    assert value(cond, {"name": "hello", "condition": "Healthy", "status": "False"}) == 1
    assert value(cond, {"name": "fresh", "condition": "Ready", "status": "Unknown"}) == 1
    assert value("mfx_plugin_info", {"name": "hello", "version": "1.0.0", "running_version": "", "type": "rpc"}) == 1
    assert value("mfx_plugin_info", {"name": "upgraded", "version": "2.0.0", "running_version": "1.0.0",
                                      "type": "rpc"}) == 1
    assert value("mfx_plugin_spec_suspended", {"name": "fresh"}) == 1
    assert value("mfx_plugin_status_observed_generation", {"name": "hello"}) == 1
    assert value("mfx_plugin_metadata_generation", {"name": "hello"}) == 2
    info = {"sink": "speakers", "device": "default", "format": "S16_LE", "rate": "48000",
            "channels": "2", "default": "true"}
    assert value("mfx_audio_sink_info", info) == 1
    # Credentials never reach a label.
    assert value("mfx_gitsource_info", {"name": "fleet", "url": "https://example.org/p.git", "ref": "tag:v1"}) == 1


def test_a_deleted_plugins_instrumentation_series_are_forgotten() -> None:
    metrics = Metrics()
    metrics.init_plugin("gone", ("search",), process=True)
    metrics.init_plugin("kept", ("search",))
    metrics.plugin_restarts_total.labels("gone").inc()
    metrics.forget("name", "gone")
    text = render_registry(metrics.registry).decode()
    assert 'name="gone"' not in text
    assert 'mfx_plugin_call_duration_seconds_count{method="search",name="kept"} 0.0' in text


# --- object state from a real store through the cache -----------------------------------------


class InterruptibleStore:
    """The real SQLite store, with a fault a test can inject: end the open watches, answer the
    next watch with GoneError (410), and hold the next list until released."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.streams: list[Any] = []
        self.gone_next = False
        self.list_gate: anyio.Event | None = None
        self.lists_started = anyio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def list(self, kind: str, **options: Any) -> ListResult:
        if self.list_gate is not None:
            self.lists_started.set()
            await self.list_gate.wait()
        return await self.store.list(kind, **options)

    def watch(self, kind: str | None, since: int) -> AsyncIterator[WatchEvent]:
        if self.gone_next:
            self.gone_next = False
            raise GoneError(f"too old resource version: {since}")
        stream = self.store.watch(kind, since)
        self.streams.append(stream)
        return stream

    async def interrupt(self) -> None:
        for stream in self.streams:
            await stream.aclose()
        self.streams.clear()


@pytest.mark.anyio
async def test_state_series_follow_the_store_and_a_deleted_object_vanishes_at_once(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "state.db") as store:
        await store.create(plugin("a"))
        cache = ObjectCache(store)
        metrics = Metrics()
        metrics.registry.register(ObjectStateCollector(cache.snapshot))
        async with anyio.create_task_group() as group:
            group.start_soon(cache.run)
            await cache.wait_synced()
            assert metrics.registry.get_sample_value(
                "mfx_plugin_info", {"name": "a", "version": "1.0.0", "running_version": "", "type": "rpc"}) == 1

            b = await store.create(plugin("b", version="2.0.0", type_="webassembly"))
            await cache.wait_for(lambda s: "b" in s["PluginManifest"])
            b["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
            await store.update_status(b)
            await cache.wait_for(lambda s: bool(s["PluginManifest"]["b"].get("status")))
            assert metrics.registry.get_sample_value(
                "mfx_plugin_status_condition", {"name": "b", "condition": "Ready", "status": "True"}) == 1

            await store.delete("PluginManifest", "b")
            await cache.wait_for(lambda s: "b" not in s["PluginManifest"])
            text = render_registry(metrics.registry).decode()
            assert 'name="b"' not in text
            assert 'mfx_plugin_info{name="a",running_version="",type="rpc",version="1.0.0"} 1.0' in text
            group.cancel_scope.cancel()


@pytest.mark.anyio
async def test_the_cache_resumes_an_interrupted_watch_and_relists_after_gone(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "state.db") as real:
        store = InterruptibleStore(real)
        await real.create(plugin("a"))
        await real.create(plugin("b"))
        cache = ObjectCache(store, ["PluginManifest"])  # type: ignore[arg-type]
        async with anyio.create_task_group() as group:
            group.start_soon(cache.run)
            await cache.wait_synced()
            assert cache.relists == 1

            # Interrupted: the watch resumes from the last resourceVersion and misses nothing.
            await store.interrupt()
            await real.create(plugin("c"))
            await cache.wait_for(lambda s: "c" in s["PluginManifest"])
            assert cache.relists == 1 and cache.resumes >= 1

            # Gone: the cache lists again; an object deleted meanwhile leaves without a DELETED event.
            store.gone_next = True
            store.list_gate = anyio.Event()
            await store.interrupt()
            await store.lists_started.wait()
            await real.delete("PluginManifest", "a")
            store.list_gate.set()
            snapshot = await cache.wait_for(lambda s: "a" not in s["PluginManifest"])
            assert sorted(snapshot["PluginManifest"]) == ["b", "c"]
            assert cache.relists == 2
            group.cancel_scope.cancel()
