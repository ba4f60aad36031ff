"""``mfx top``: a live table of every plugin, from its status and the daemon's /metrics.

rich and the Prometheus parser are imported by this command only: every other mfx command
would pay for them at start.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.api.objects import Obj, condition
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.durations import POSITIVE_DURATION

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True)
class Sample:
    """Counters read from /metrics at one moment, per plugin name."""

    at: float
    calls: dict[str, float] = field(default_factory=dict)
    call_errors: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    name: str
    type: str
    version: str
    ready: str
    restarts: int
    health_latency: float | None
    breaker: str
    calls_per_second: float | None
    errors_per_second: float | None
    memory_bytes: float | None


def parse_sample(metrics_text: str, at: float) -> Sample:
    from prometheus_client.parser import text_string_to_metric_families

    sample = Sample(at=at)
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            name = s.labels.get("name")
            if name is None:
                continue
            if s.name == "mfx_plugin_call_duration_seconds_count":
                sample.calls[name] = sample.calls.get(name, 0.0) + s.value
            elif s.name == "mfx_plugin_call_errors_total":
                sample.call_errors[name] = sample.call_errors.get(name, 0.0) + s.value
            elif s.name == "mfx_plugin_process_resident_memory_bytes":
                sample.memory[name] = s.value
    return sample


def _rate(now: dict[str, float], before: dict[str, float] | None, name: str, seconds: float) -> float | None:
    if before is None or seconds <= 0 or name not in now:
        return None
    delta = now[name] - before.get(name, 0.0)
    return max(delta, 0.0) / seconds  # a counter that went down was reset: count from zero


BREAKER = {"closed": "closed", "open": "OPEN", "half-open": "half-open", "half_open": "half-open"}


def build_rows(plugins: Iterable[Obj], sample: Sample, previous: Sample | None) -> list[Row]:
    seconds = sample.at - previous.at if previous is not None else 0.0
    rows = []
    for obj in plugins:
        name = obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        ready = condition(obj, "Ready")
        probe = status.get("lastHealthProbe") or {}
        latency = probe.get("durationSeconds")
        breaker = str((status.get("circuitBreaker") or {}).get("state", "") or "")
        calls = _rate(sample.calls, previous.calls if previous else None, name, seconds)
        errors = _rate(sample.call_errors, previous.call_errors if previous else None, name, seconds)
        if errors is None and calls is not None:
            errors = 0.0  # no error series yet: none happened
        rows.append(Row(
            name=name,
            type=str(spec.get("type", "")),
            version=str(status.get("resolvedVersion") or spec.get("version", "")),
            ready=str(ready.get("status")) if ready else "Unknown",
            restarts=int(status.get("restartCount") or 0),
            health_latency=float(latency) if isinstance(latency, (int, float)) else None,
            breaker=BREAKER.get(breaker.lower(), breaker or "-"),
            calls_per_second=calls,
            errors_per_second=errors,
            memory_bytes=sample.memory.get(name),
        ))
    return rows


SORT_KEYS = {
    "name": lambda r: r.name,
    "restarts": lambda r: (-r.restarts, r.name),
    "calls": lambda r: (-(r.calls_per_second or 0.0), r.name),
    "memory": lambda r: (-(r.memory_bytes or 0.0), r.name),
}


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f}ms" if value < 1 else f"{value:.2f}s"


def _per_second(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "Ki", "Mi", "Gi"):
        if value < 1024 or unit == "Gi":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return "-"


def render(rows: list[Row], *, title: str = "") -> Table:
    from rich.table import Table

    table = Table(title=title or None, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for header, justify in (("NAME", "left"), ("TYPE", "left"), ("VERSION", "left"), ("READY", "left"),
                            ("RESTARTS", "right"), ("HEALTH", "right"), ("BREAKER", "left"),
                            ("CALLS/S", "right"), ("ERRORS/S", "right"), ("MEMORY", "right")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        style = "" if row.ready == "True" else "red"
        table.add_row(row.name, row.type, row.version, row.ready, str(row.restarts), _seconds(row.health_latency),
                      row.breaker, _per_second(row.calls_per_second), _per_second(row.errors_per_second),
                      _bytes(row.memory_bytes), style=style)
    return table


def frames(ctx: CliContext, selector: str | None, sort: str, interval: float) -> Iterator[Table]:
    previous: Sample | None = None
    while True:
        plugins = ctx.client.list(PLUGIN_MANIFEST, label_selector=selector)["items"]
        text = ctx.client.request("GET", "/metrics", accept="text/plain")
        sample = parse_sample(text if isinstance(text, str) else "", time.monotonic())
        rows = sorted(build_rows(plugins, sample, previous), key=SORT_KEYS[sort])
        ready = sum(1 for r in rows if r.ready == "True")
        yield render(rows, title=f"{ready}/{len(rows)} plugins Ready   (every {interval:g}s, Ctrl-C to quit)")
        previous = sample


@click.command()
@click.option("-l", "--selector", help="Only plugins matching this label selector.")
@click.option("--sort", type=click.Choice(sorted(SORT_KEYS)), default="name", show_default=True)
@click.option("--interval", type=POSITIVE_DURATION, default="2s", show_default=True, help="Refresh interval.")
@click.option("--once", is_flag=True,
              help="Print one table and exit (also when stdout is not a terminal); rates need two refreshes.")
@pass_cli
def top(ctx: CliContext, selector: str | None, sort: str, interval: float, once: bool) -> None:
    """Live table of plugins: readiness, restarts, health latency, call and error rates, memory.

    \b
    Examples:
      mfx top
      mfx top --sort calls --interval 5s
      mfx top --once -l app.kubernetes.io/part-of=mfx
    """
    from rich.console import Console
    from rich.live import Live

    console = Console()
    stream = frames(ctx, selector, sort, interval)
    if once or not console.is_terminal:
        console.print(next(stream))
        return
    try:
        with Live(next(stream), console=console, auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(interval)  # the refresh period of a terminal view, nothing waits on it
                live.update(next(stream), refresh=True)
    except KeyboardInterrupt:
        return

