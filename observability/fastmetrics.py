"""Per-object metric families that render straight to the text format.

A daemon with 1000 plugins carries tens of thousands of per-plugin series. prometheus-client
builds a Sample object per series and formats each one on every scrape (about 10 µs a
line here), which made /metrics take seconds. These families keep the same instrumentation
API the code uses (``.labels(...).inc()/.set()/.observe()``, ``.remove(...)``) and the same
``collect()`` for any Prometheus tooling, but also ``render(out)``: each child keeps its
label text pre-formatted, so a scrape is string joins. ``render_registry`` uses that path
where a collector offers it and prometheus-client's formatter for the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

INF = float("inf")


def escape_label_value(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _label_text(pairs: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'{n}="{escape_label_value(v)}"' for n, v in pairs)


def format_value(value: float) -> str:
    if value == INF:
        return "+Inf"
    if value == -INF:
        return "-Inf"
    if value != value:
        return "NaN"
    return repr(float(value))


class _Family:
    """Children keyed by label values; ``_labelnames``/``_metrics`` match prometheus-client's
    attribute names so generic code (``Metrics.forget``) treats both alike."""

    type_name = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry | None = None) -> None:
        self.name = name
        self.documentation = documentation
        self._labelnames = tuple(labelnames)
        self._metrics: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[Metric]:
        raise NotImplementedError  # each family type renders its own samples

    @property
    def _type(self) -> str:
        """prometheus-client's name for the family type, for code that inspects collectors."""
        return self.type_name

    def labels(self, *values: str, **by_name: str) -> Any:
        if by_name:
            values = tuple(by_name[label] for label in self._labelnames)
        key = tuple(str(v) for v in values)
        if len(key) != len(self._labelnames):
            raise ValueError(f"{self.name} takes labels {self._labelnames}, got {key}")
        child = self._metrics.get(key)
        if child is None:
            with self._lock:
                child = self._metrics.get(key)
                if child is None:
                    # Sorted by name, as prometheus-client writes them.
                    pairs = sorted(zip(self._labelnames, key, strict=True))
                    child = self._new_child(_label_text(pairs))
                    self._metrics[key] = child
        return child

    def remove(self, *values: str) -> None:
        with self._lock:
            self._metrics.pop(tuple(str(v) for v in values), None)

    def clear(self) -> None:
        with self._lock:
            self._metrics.clear()

    def describe(self) -> Iterable[Metric]:
        return [self._empty_family()]

    def _children(self) -> list[tuple[tuple[str, ...], Any]]:
        with self._lock:
            return list(self._metrics.items())

    def _new_child(self, label_text: str) -> Any:
        raise NotImplementedError

    def _empty_family(self) -> Metric:
        raise NotImplementedError


class _ValueChild:
    __slots__ = ("label_text", "value", "_lock")

    def __init__(self, label_text: str) -> None:
        self.label_text = label_text
        self.value = 0.0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value -= amount

    def set(self, value: float) -> None:
        self.value = float(value)


class FastCounter(_Family):
    type_name = "counter"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry | None = None) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self, label_text: str) -> _ValueChild:
        return _ValueChild(label_text)

    def _empty_family(self) -> CounterMetricFamily | GaugeMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self._labelnames)

    def collect(self) -> Iterator[Metric]:
        family = self._empty_family()
        for key, child in self._children():
            family.add_metric(list(key), child.value)
        yield family

    def render(self, out: list[bytes]) -> None:
        name = self.name
        lines = [f"# HELP {name} {self.documentation}\n# TYPE {name} {self.type_name}\n"]
        lines.extend(f"{name}{{{c.label_text}}} {format_value(c.value)}\n" for _, c in self._children())
        out.append("".join(lines).encode())


class FastGauge(FastCounter):
    type_name = "gauge"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry | None = None) -> None:
        _Family.__init__(self, name, documentation, labelnames, registry)

    def _empty_family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self._labelnames)


class _HistogramChild:
    __slots__ = ("label_text", "bounds", "counts", "sum", "_lock", "_prefixes", "rendered")

    def __init__(self, label_text: str, bounds: tuple[float, ...], bucket_texts: tuple[str, ...]) -> None:
        self.label_text = label_text
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0
        self._lock = threading.Lock()
        self._prefixes: tuple[str, ...] = ()
        # Most plugins are idle between scrapes: their text is kept until the next observe.
        self.rendered: bytes | None = None

    def observe(self, value: float) -> None:
        index = len(self.bounds)
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                index = i
                break
        with self._lock:
            self.counts[index] += 1
            self.sum += value
            self.rendered = None

    def snapshot(self) -> tuple[list[int], float]:
        with self._lock:
            return list(self.counts), self.sum


class FastHistogram(_Family):
    type_name = "histogram"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry | None = None, *, buckets: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in buckets if b != INF)
        self._bucket_text = (*(format_value(b) for b in self.bounds), "+Inf")
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self, label_text: str) -> _HistogramChild:
        return _HistogramChild(label_text, self.bounds, self._bucket_text)

    def _bucket_prefixes(self, key: tuple[str, ...]) -> tuple[str, ...]:
        """``NAME_bucket{labels} `` per bucket, with "le" sorted among the labels."""
        pairs = list(zip(self._labelnames, key, strict=True))
        return tuple(f"{self.name}_bucket{{{_label_text(sorted([*pairs, ('le', b)]))}}} " for b in self._bucket_text)

    def _empty_family(self) -> Metric:
        return HistogramMetricFamily(self.name, self.documentation, labels=self._labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self._labelnames)
        for key, child in self._children():
            counts, total = child.snapshot()
            cumulative, running = [], 0
            for text, count in zip(self._bucket_text, counts, strict=True):
                running += count
                cumulative.append((text, running))
            family.add_metric(list(key), cumulative, total)
        yield family

    def render(self, out: list[bytes]) -> None:
        name = self.name
        out.append(f"# HELP {name} {self.documentation}\n# TYPE {name} histogram\n".encode())
        for key, child in self._children():
            text = child.rendered
            if text is None:
                if not child._prefixes:  # on its first scrape: most series are made long before one
                    child._prefixes = self._bucket_prefixes(key)
                counts, total = child.snapshot()
                running = 0
                cumulative = []
                for count in counts:
                    running += count
                    cumulative.append(running)
                labels = f"{{{child.label_text}}}" if child.label_text else ""
                text = child.rendered = (
                    "".join([f"{p}{c}.0\n" for p, c in zip(child._prefixes, cumulative, strict=True)])
                    + f"{name}_sum{labels} {format_value(total)}\n{name}_count{labels} {running}.0\n"
                ).encode()
            out.append(text)


class _Rest:
    """The collectors without a fast path, as one object ``generate_latest`` accepts."""

    def __init__(self, collectors: list[Any]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def render_registry(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format (0.0.4), fast where collectors allow."""
    collectors = list(registry._collector_to_names)  # noqa: SLF001 - the registry's own list
    fast = [c for c in collectors if hasattr(c, "render")]
    rest = [c for c in collectors if not hasattr(c, "render")]
    out: list[bytes] = [generate_latest(_Rest(rest))] if rest else []  # type: ignore[arg-type]
    for collector in fast:
        collector.render(out)
    return b"".join(out)
