"""Object state as metrics, kube-state-metrics style, computed at scrape time.

``ObjectStateCollector(snapshot_fn)`` is a prometheus-client custom collector: every scrape it
calls ``snapshot_fn()`` (``kind -> name -> object``, e.g. ``ObjectCache.snapshot``) and turns
the objects into series. Nothing is stored between scrapes, so a deleted object's series are
gone from the next scrape, and the number of series is bounded by the number of objects times
a fixed set of condition types and statuses.

Conditions follow kube-state-metrics: for each condition type one series per status
(``True``, ``False``, ``Unknown``), the one in force valued 1 and the others 0. The condition
types a kind documents are always exported (``Unknown`` while the controller has not written
them yet), so an alert such as ``...{condition="Ready",status="True"} == 0`` also catches an
object no controller has touched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from observability.fastmetrics import escape_label_value, format_value

# Objects are the API's plain JSON dicts; kinds are named by string because this layer sits
# beside mfx.api and may not import it.
Obj = dict[str, Any]
PLUGIN_KIND = "PluginManifest"
SINK_KIND = "AudioSink"
GITSOURCE_KIND = "GitSource"
SnapshotFn = Callable[[], Mapping[str, Mapping[str, Obj]]]

CONDITION_STATUSES = ("True", "False", "Unknown")
PLUGIN_CONDITIONS = ("Ready", "Reconciling", "Stalled", "DependenciesReady", "Healthy", "CircuitOpen")
SINK_CONDITIONS = ("Ready", "DeviceOpen")
GITSOURCE_CONDITIONS = ("Ready", "Reconciling", "Stalled")


@dataclass(frozen=True)
class StateMetric:
    """One metric family the collector exports (all are gauges)."""

    name: str
    help: str
    labels: tuple[str, ...]


def _condition_metric(name: str, an_object: str, key_label: str) -> StateMetric:
    return StateMetric(name, f"The condition of {an_object}: 1 for the status in force, 0 for the others.",
                       (key_label, "condition", "status"))


def _suspended_metric(name: str, an_object: str) -> StateMetric:
    return StateMetric(name, f"1 when {an_object} has spec.suspend set.", ("name",))


PLUGIN_INFO = StateMetric(
    "mfx_plugin_info",
    "Information about a PluginManifest; always 1. running_version is empty while no version runs.",
    ("name", "version", "running_version", "type"))
PLUGIN_CONDITION = _condition_metric("mfx_plugin_status_condition", "a PluginManifest", "name")
PLUGIN_SUSPENDED = _suspended_metric("mfx_plugin_spec_suspended", "a PluginManifest")
PLUGIN_GENERATION = StateMetric(
    "mfx_plugin_metadata_generation", "The generation (spec revision) of a PluginManifest.", ("name",))
PLUGIN_OBSERVED_GENERATION = StateMetric(
    "mfx_plugin_status_observed_generation",
    "The generation the plugin controller last acted on (lags metadata_generation while reconciling).",
    ("name",))
SINK_INFO = StateMetric(
    "mfx_audio_sink_info", "Information about an AudioSink's requested device; always 1.",
    ("sink", "device", "format", "rate", "channels", "default"))
SINK_CONDITION = _condition_metric("mfx_audio_sink_status_condition", "an AudioSink", "sink")
GITSOURCE_INFO = StateMetric(
    "mfx_gitsource_info", "Information about a GitSource (URL without credentials); always 1.",
    ("name", "url", "ref"))
GITSOURCE_CONDITION = _condition_metric("mfx_gitsource_status_condition", "a GitSource", "name")
GITSOURCE_SUSPENDED = _suspended_metric("mfx_gitsource_spec_suspended", "a GitSource")

_KIND_METRICS: dict[str, tuple[StateMetric, ...]] = {
    PLUGIN_KIND: (PLUGIN_INFO, PLUGIN_CONDITION, PLUGIN_SUSPENDED, PLUGIN_GENERATION, PLUGIN_OBSERVED_GENERATION),
    SINK_KIND: (SINK_INFO, SINK_CONDITION),
    GITSOURCE_KIND: (GITSOURCE_INFO, GITSOURCE_CONDITION, GITSOURCE_SUSPENDED),
}

STATE_METRICS: tuple[StateMetric, ...] = (
    PLUGIN_INFO, PLUGIN_CONDITION, PLUGIN_SUSPENDED, PLUGIN_GENERATION, PLUGIN_OBSERVED_GENERATION,
    SINK_INFO, SINK_CONDITION,
    GITSOURCE_INFO, GITSOURCE_CONDITION, GITSOURCE_SUSPENDED,
)


class ObjectStateCollector(Collector):
    """Register on the daemon's registry: ``metrics.registry.register(ObjectStateCollector(cache.snapshot))``."""

    def __init__(self, snapshot_fn: SnapshotFn) -> None:
        self._snapshot_fn = snapshot_fn
        # (kind, name) -> (resourceVersion, {family name: text}): see ``render``.
        self._rendered: dict[tuple[str, str], tuple[Any, dict[str, bytes]]] = {}
        self._lock = threading.Lock()

    def describe(self) -> Iterator[Metric]:
        # Lets the registry check names at registration without taking a snapshot.
        for metric in STATE_METRICS:
            yield _family(metric)

    def render(self, out: list[bytes]) -> None:
        """The same series as ``collect``, straight to the text format (see fastmetrics).

        An object's lines are kept per (kind, name) with its resourceVersion and re-made only
        when it changes: with 1000 plugins a scrape is then mostly joins."""
        with self._lock:  # concurrent scrapes share the cache
            self._render(out)

    def _render(self, out: list[bytes]) -> None:
        snapshot = self._snapshot_fn()
        seen: set[tuple[str, str]] = set()
        for kind in (PLUGIN_KIND, SINK_KIND, GITSOURCE_KIND):
            objects = snapshot.get(kind, {})
            per_family: dict[str, list[bytes]] = {}
            for name in sorted(objects):
                obj = objects[name]
                key = (kind, name)
                seen.add(key)
                version = (obj.get("metadata") or {}).get("resourceVersion")
                cached = self._rendered.get(key)
                if cached is None or version is None or cached[0] != version:
                    cached = (version, _object_lines(kind, {name: obj}))
                    self._rendered[key] = cached
                for family_name, text in cached[1].items():
                    per_family.setdefault(family_name, []).append(text)
            for metric in _KIND_METRICS[kind]:
                out.append(f"# HELP {metric.name} {metric.help}\n# TYPE {metric.name} gauge\n".encode())
                out.extend(per_family.get(metric.name, ()))
        for key in set(self._rendered) - seen:
            del self._rendered[key]

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot_fn()
        yield from _plugin_families(snapshot.get(PLUGIN_KIND, {}))
        yield from _sink_families(snapshot.get(SINK_KIND, {}))
        yield from _gitsource_families(snapshot.get(GITSOURCE_KIND, {}))


def _object_lines(kind: str, objects: Mapping[str, Obj]) -> dict[str, bytes]:
    """Text lines of one object's series, by family name."""
    families = {
        PLUGIN_KIND: _plugin_families, SINK_KIND: _sink_families, GITSOURCE_KIND: _gitsource_families,
    }[kind](objects)
    return {
        family.name: "".join(
            f"{sample.name}{{{_label_text(sample.labels)}}} {format_value(sample.value)}\n"
            for sample in family.samples).encode()
        for family in families
    }


def _label_text(labels: Mapping[str, str]) -> str:
    return ",".join(f'{key}="{escape_label_value(value)}"' for key, value in sorted(labels.items()))


def _family(metric: StateMetric) -> GaugeMetricFamily:
    return GaugeMetricFamily(metric.name, metric.help, labels=metric.labels)


def _plugin_families(plugins: Mapping[str, Obj]) -> Iterator[Metric]:
    info = _family(PLUGIN_INFO)
    conditions = _family(PLUGIN_CONDITION)
    suspended = _family(PLUGIN_SUSPENDED)
    generation = _family(PLUGIN_GENERATION)
    observed = _family(PLUGIN_OBSERVED_GENERATION)
    for name in sorted(plugins):
        obj = plugins[name]
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        info.add_metric([name, str(spec.get("version", "")), str(status.get("resolvedVersion") or ""),
                         str(spec.get("type", ""))], 1)
        _add_conditions(conditions, name, obj, PLUGIN_CONDITIONS)
        suspended.add_metric([name], 1 if spec.get("suspend") else 0)
        generation.add_metric([name], int((obj.get("metadata") or {}).get("generation") or 0))
        observed.add_metric([name], int(status.get("observedGeneration") or 0))
    yield from (info, conditions, suspended, generation, observed)


def _sink_families(sinks: Mapping[str, Obj]) -> Iterator[Metric]:
    info = _family(SINK_INFO)
    conditions = _family(SINK_CONDITION)
    for name in sorted(sinks):
        obj = sinks[name]
        spec = obj.get("spec") or {}
        info.add_metric([
            name,
            str(spec.get("device", "default")),
            str(spec.get("format", "S16_LE")),
            str(spec.get("rate", 48000)),
            str(spec.get("channels", 2)),
            "true" if spec.get("default") else "false",
        ], 1)
        _add_conditions(conditions, name, obj, SINK_CONDITIONS)
    yield from (info, conditions)


def _gitsource_families(sources: Mapping[str, Obj]) -> Iterator[Metric]:
    info = _family(GITSOURCE_INFO)
    conditions = _family(GITSOURCE_CONDITION)
    suspended = _family(GITSOURCE_SUSPENDED)
    for name in sorted(sources):
        obj = sources[name]
        spec = obj.get("spec") or {}
        info.add_metric([name, _without_credentials(str(spec.get("url", ""))), _ref_text(spec.get("ref"))], 1)
        _add_conditions(conditions, name, obj, GITSOURCE_CONDITIONS)
        suspended.add_metric([name], 1 if spec.get("suspend") else 0)
    yield from (info, conditions, suspended)


def _add_conditions(family: GaugeMetricFamily, name: str, obj: Obj, known: tuple[str, ...]) -> None:
    in_force: dict[str, str] = {}
    for cond in (obj.get("status") or {}).get("conditions") or []:
        ctype = cond.get("type")
        if isinstance(ctype, str) and ctype:
            status = cond.get("status")
            in_force[ctype] = status if status in CONDITION_STATUSES else "Unknown"
    # Documented types first, then any other type a controller wrote (their set is fixed by code).
    for ctype in (*known, *sorted(set(in_force) - set(known))):
        current = in_force.get(ctype, "Unknown")
        for status in CONDITION_STATUSES:
            family.add_metric([name, ctype, status], 1 if status == current else 0)


def _ref_text(ref: Any) -> str:
    if not isinstance(ref, dict) or not ref:
        return "branch:main"
    for key in ("commit", "tag", "branch"):
        if ref.get(key):
            return f"{key}:{ref[key]}"
    return "branch:main"


def _without_credentials(url: str) -> str:
    """Drop ``user:password@`` from a URL: labels end up in dashboards and long-term storage."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.netloc or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
