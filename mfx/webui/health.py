"""Health sparklines from the metrics Prometheus scrapes.

``HealthSampler`` reads the daemon's ``/metrics`` at a fixed interval, as a scrape does
(metrics cannot be watched), and keeps a short ring per plugin of:

- ``probeMs``: mean health probe duration over the interval, from
  ``mfx_plugin_health_check_duration_seconds`` (increase of ``_sum`` / increase of ``_count``);
- ``failures``: health probes that failed in the interval, the increase of
  ``mfx_plugin_health_check_failures_total``;
- ``healthy``: ``mfx_plugin_status_condition{condition="Healthy",status="True"}``.

Pages subscribe and get each new sample as it is taken.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mfx.errors import MfxError
from mfx.webui.daemon_client import DaemonClient

log = logging.getLogger("mfx.webui.health")

RING = 60  # samples kept per plugin: two minutes at the default interval
PROBE = "mfx_plugin_health_check_duration_seconds"
FAILURES = "mfx_plugin_health_check_failures_total"
CONDITION = "mfx_plugin_status_condition"


@dataclass
class Counters:
    probe_sum: float = 0.0
    probe_count: float = 0.0
    failures: float = 0.0
    healthy: float = math.nan


# The three series are a few lines of a /metrics answer that, with hundreds of plugins, has
# tens of thousands (histogram buckets above all). Only lines that start with one of these
# names are parsed, by hand: the full exposition parser took 0.4 s at 500 plugins, on the
# daemon's event loop, at every sample.
_WANTED = (f"{PROBE}_sum{{", f"{PROBE}_count{{", f"{FAILURES}{{", f"{CONDITION}{{")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _sample(line: str) -> tuple[str, dict[str, str], float] | None:
    """``name{labels} value [timestamp]`` -> (name, labels, value); None when malformed."""
    brace, close = line.find("{"), line.rfind("}")
    if brace < 0 or close < brace:
        return None
    parts = line[close + 1:].split()
    try:
        value = float(parts[0])
    except (IndexError, ValueError):
        return None
    return line[:brace], dict(_LABEL.findall(line, brace, close)), value


def parse(text: str) -> dict[str, Counters]:
    """Per plugin, the series the sparklines are drawn from, out of one /metrics answer."""
    out: dict[str, Counters] = {}
    for line in text.splitlines():
        if not line.startswith(_WANTED) or (line.startswith(CONDITION) and 'condition="Healthy"' not in line):
            continue
        sample = _sample(line)
        if sample is None:
            continue
        metric, labels, value = sample
        name = labels.get("name")
        if not name:
            continue
        row = out.setdefault(name, Counters())
        if metric == CONDITION:
            if labels.get("condition") == "Healthy" and labels.get("status") == "True":
                row.healthy = value
        elif metric == f"{PROBE}_sum":
            row.probe_sum = value
        elif metric == f"{PROBE}_count":
            row.probe_count = value
        else:
            row.failures = value
    return out


def point(now: float, before: Counters | None, after: Counters) -> dict[str, Any]:
    """One sparkline point from two scrapes (counters only go up, except across a restart)."""
    probe_ms = None
    failures = 0.0
    if before is not None:
        count = after.probe_count - before.probe_count
        if count > 0:
            probe_ms = round(1000 * (after.probe_sum - before.probe_sum) / count, 3)
        failures = max(0.0, after.failures - before.failures)
    return {"t": round(now, 3), "probeMs": probe_ms, "failures": failures,
            "healthy": None if math.isnan(after.healthy) else after.healthy}


@dataclass
class HealthSampler:
    interval: float = 2.0
    rings: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    _last: dict[str, Counters] = field(default_factory=dict)
    _subscribers: set[MemoryObjectSendStream[dict[str, Any]]] = field(default_factory=set)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {name: list(ring) for name, ring in sorted(self.rings.items())}

    def sample(self, text: str, now: float) -> dict[str, dict[str, Any]]:
        current = parse(text)
        points = {name: point(now, self._last.get(name), row) for name, row in current.items()}
        for name in set(self.rings) - set(current):  # a deleted plugin's sparkline goes too
            del self.rings[name]
        for name, p in points.items():
            self.rings.setdefault(name, deque(maxlen=RING)).append(p)
        self._last = current
        return points

    def subscribe(self) -> MemoryObjectReceiveStream[dict[str, Any]]:
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](8)
        self._subscribers.add(send)
        return receive

    def unsubscribe(self, receive: MemoryObjectReceiveStream[dict[str, Any]]) -> None:
        receive.close()

    async def run(self, client: DaemonClient, shutdown: anyio.Event) -> None:
        """Scrape until shutdown; a page too slow to take a sample loses that one, not the rest."""
        with anyio.CancelScope() as scope:
            async def stop() -> None:
                await shutdown.wait()
                scope.cancel()
            async with anyio.create_task_group() as group:
                group.start_soon(stop)
                while True:
                    try:
                        points = self.sample(await client.get_text("/metrics"), time.time())
                    except MfxError as error:
                        log.warning("web UI: could not read /metrics (%s); the sparklines wait", error)
                        points = None
                    if points is not None:
                        self._publish(points)
                    await anyio.sleep(self.interval)

    def _publish(self, points: dict[str, dict[str, Any]]) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait(points)
            except anyio.WouldBlock:
                pass
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.discard(send)
