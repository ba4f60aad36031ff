"""Grafana dashboards as code: builds mfx's dashboards with grafana-foundation-sdk.

``python -m observability.dashboards_generate`` writes them to
``observability/dashboards/*.json`` (the committed files Grafana imports);
``--check`` exits 1 when a committed file differs from what this module builds.

Every panel reads a ``${datasource}`` variable (type prometheus), so an import asks for
the Prometheus data source once. The drill-down has a ``plugin`` variable
(``label_values(mfx_plugin_info, name)``), the audio set a ``sink`` variable.

Queries are written so they return series on a healthy daemon too: an error rate that has
never been incremented falls back to zero (``... or ... * 0``), since "no data" on a panel
reads like a broken dashboard.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery as PromQuery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.statetimeline import Panel as StateTimeline
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)

OUTPUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
REFRESH = "10s"
TAGS = ["mfx"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


# --- building blocks ---------------------------------------------------------------------------


def _targets(panel: Any, queries: list[Query]) -> Any:
    for index, query in enumerate(queries):
        target = PromQuery().expr(query.expr).ref_id(chr(ord("A") + index)).datasource(DATASOURCE)
        if query.legend:
            target = target.legend_format(query.legend)
        panel = panel.with_target(target)
    return panel


def timeseries(title: str, unit: str, queries: list[Query], *, description: str = "", width: int = 12,
               minimum: float | None = 0) -> Timeseries:
    panel = Timeseries().title(title).unit(unit).datasource(DATASOURCE).span(width).height(8)
    if minimum is not None:
        panel = panel.min(minimum)
    if description:
        panel = panel.description(description)
    return _targets(panel, queries)


def stat(title: str, unit: str, queries: list[Query], *, description: str = "", width: int = 6) -> Stat:
    panel = Stat().title(title).unit(unit).datasource(DATASOURCE).span(width).height(4)
    if description:
        panel = panel.description(description)
    return _targets(panel, queries)


def state_timeline(title: str, queries: list[Query], mapping: dict[str, tuple[str, str]], *,
                   description: str = "", width: int = 12) -> StateTimeline:
    options = {value: ValueMappingResult(text=text, color=color) for value, (text, color) in mapping.items()}
    panel = (StateTimeline().title(title).datasource(DATASOURCE).span(width).height(8)
             .mappings([ValueMap(options=options)]))
    if description:
        panel = panel.description(description)
    return _targets(panel, queries)


def datasource_variable() -> DatasourceVariable:
    return DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(name: str, label: str, query: str) -> QueryVariable:
    return (QueryVariable(name).label(label).query(query).datasource(DATASOURCE)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC))


def base(title: str, uid: str, description: str) -> Dashboard:
    return (Dashboard(title).uid(uid).description(description).tags(TAGS).refresh(REFRESH)
            .time("now-1h", "now").timezone("browser").with_variable(datasource_variable()))


READY_MAPPING = {"1": ("Ready", "green"), "0": ("Not Ready", "red")}
BREAKER_MAPPING = {"0": ("closed", "green"), "1": ("half-open", "yellow"), "2": ("open", "red")}


# --- the dashboards ---------------------------------------------------------------------------


def overview() -> Dashboard:
    ready = 'mfx_plugin_status_condition{condition="Ready",status="True"}'
    return (
        base("mfx / Overview", "mfx-overview",
             "Plugins Ready or not, restarts, and the reconciler's rate, errors and queues.")
        .with_row(Row("Plugins"))
        .with_panel(stat("Plugins Ready", "short", [Query(f"sum({ready})")], width=6))
        .with_panel(stat("Plugins not Ready", "short", [Query(
            'sum(mfx_plugin_status_condition{condition="Ready",status!="True"})')],
            description="Ready=False or Unknown (not yet reconciled), suspended plugins included.", width=6))
        .with_panel(stat("Plugins suspended", "short", [Query("sum(mfx_plugin_spec_suspended)")], width=6))
        .with_panel(stat("Plugins stalled", "short", [Query(
            'sum(mfx_plugin_status_condition{condition="Stalled",status="True"})')],
            description="Stopped retrying until the spec changes: see mfx describe pm NAME.", width=6))
        .with_panel(state_timeline("Readiness by plugin", [Query(f"max by (name) ({ready})", "{{name}}")],
                                   READY_MAPPING, width=12))
        .with_panel(timeseries("Restarts", "short", [Query(
            "sum by (name) (increase(mfx_plugin_restarts_total[$__rate_interval]))", "{{name}}")],
            description="Restarts by the restart policy in each interval.", width=12))
        .with_row(Row("Reconciler"))
        .with_panel(timeseries("Reconcile rate", "ops", [Query(
            "sum by (controller, result) (rate(mfx_reconcile_total[$__rate_interval]))",
            "{{controller}} {{result}}")], width=12))
        .with_panel(timeseries("Reconcile errors", "ops", [Query(
            "sum by (controller) (rate(mfx_reconcile_errors_total[$__rate_interval]))"
            " or sum by (controller) (rate(mfx_reconcile_total[$__rate_interval])) * 0",
            "{{controller}}")],
            description="Reconciles ending in retry, error or stalled.", width=12))
        .with_panel(timeseries("Reconcile duration p99", "s", [Query(
            "histogram_quantile(0.99, sum by (controller, le) "
            "(rate(mfx_reconcile_duration_seconds_bucket[$__rate_interval])))", "{{controller}}")], width=8))
        .with_panel(timeseries("Work queue depth", "short", [Query(
            "sum by (name) (mfx_workqueue_depth)", "{{name}}")], width=8))
        .with_panel(timeseries("Work queue wait p99", "s", [Query(
            "histogram_quantile(0.99, sum by (name, le) "
            "(rate(mfx_workqueue_queue_duration_seconds_bucket[$__rate_interval])))", "{{name}}")], width=8))
        .with_row(Row("API server"))
        .with_panel(timeseries("API requests", "reqps", [Query(
            "sum by (verb, code) (rate(mfx_api_requests_total[$__rate_interval]))", "{{verb}} {{code}}")],
            width=24))
        .with_row(Row("Store"))
        .with_panel(timeseries("WAL checkpoint duration p99", "s", [Query(
            "histogram_quantile(0.99, sum by (le) "
            "(rate(mfx_store_wal_checkpoint_duration_seconds_bucket[$__rate_interval])))", "p99")],
            description="Copying the SQLite store's write-ahead log into its file; no write waits for it. "
                        "Long checkpoints point at a slow disk. Empty with an etcd store.", width=12))
        .with_panel(timeseries("WAL pages checkpointed", "short", [Query(
            "sum(rate(mfx_store_wal_checkpoint_pages_total[$__rate_interval]))", "pages/s")],
            description="Pages of 4 KiB: how fast the store writes, as the disk sees it.", width=12))
    )


def plugin() -> Dashboard:
    sel = 'name="$plugin"'
    return (
        base("mfx / Plugin", "mfx-plugin",
             "One plugin in detail: readiness, restarts, health probes, calls, circuit breaker, resources.")
        .with_variable(label_variable("plugin", "Plugin", "label_values(mfx_plugin_info, name)"))
        .with_row(Row("State"))
        .with_panel(stat("Ready", "short", [Query(
            f'max(mfx_plugin_status_condition{{{sel},condition="Ready",status="True"}})')],
            description="1 when Ready=True.", width=6))
        .with_panel(stat("Version", "short", [Query(f"mfx_plugin_info{{{sel}}}", "{{running_version}} running, {{version}} wanted ({{type}})")],
                         width=6))
        .with_panel(stat("Restarts (1h)", "short", [Query(
            f"sum(increase(mfx_plugin_restarts_total{{{sel}}}[1h]))")], width=6))
        .with_panel(stat("Circuit breaker", "short", [Query(f"max(mfx_plugin_circuit_breaker_state{{{sel}}})")],
                         description="0 closed, 1 half-open, 2 open.", width=6))
        .with_row(Row("Health checks"))
        .with_panel(timeseries("Health check latency", "s", [
            Query("histogram_quantile(0.5, sum by (le) "
                  f"(rate(mfx_plugin_health_check_duration_seconds_bucket{{{sel}}}[$__rate_interval])))", "p50"),
            Query("histogram_quantile(0.99, sum by (le) "
                  f"(rate(mfx_plugin_health_check_duration_seconds_bucket{{{sel}}}[$__rate_interval])))", "p99"),
        ], width=12))
        .with_panel(timeseries("Health check failures", "ops", [Query(
            f"sum(rate(mfx_plugin_health_check_failures_total{{{sel}}}[$__rate_interval]))", "failures")],
            width=12))
        .with_row(Row("Calls"))
        .with_panel(timeseries("Call latency p99", "s", [Query(
            "histogram_quantile(0.99, sum by (method, le) "
            f"(rate(mfx_plugin_call_duration_seconds_bucket{{{sel}}}[$__rate_interval])))", "{{method}}")],
            width=8))
        .with_panel(timeseries("Call rate", "ops", [Query(
            f"sum by (method) (rate(mfx_plugin_call_duration_seconds_count{{{sel}}}[$__rate_interval]))",
            "{{method}}")], width=8))
        .with_panel(timeseries("Call errors", "ops", [Query(
            f"sum by (reason) (rate(mfx_plugin_call_errors_total{{{sel}}}[$__rate_interval]))"
            f' or label_replace(sum(rate(mfx_plugin_call_duration_seconds_count{{{sel}}}[$__rate_interval])) * 0,'
            ' "reason", "none", "", "")', "{{reason}}")], width=8))
        .with_panel(state_timeline("Circuit breaker state", [Query(
            f"max(mfx_plugin_circuit_breaker_state{{{sel}}})", "breaker")], BREAKER_MAPPING, width=24))
        .with_row(Row("Resources"))
        .with_panel(timeseries("Memory (RPC process)", "bytes", [Query(
            f"mfx_plugin_process_resident_memory_bytes{{{sel}}}", "rss")], width=8))
        .with_panel(timeseries("CPU (RPC process)", "percentunit", [Query(
            f"rate(mfx_plugin_process_cpu_seconds_total{{{sel}}}[$__rate_interval])", "cpu")], width=8))
        .with_panel(timeseries("WebAssembly fuel", "short", [Query(
            f"rate(mfx_plugin_wasm_fuel_consumed_total{{{sel}}}[$__rate_interval])", "fuel/s")], width=8))
    )


def audio() -> Dashboard:
    sel = 'sink=~"$sink"'
    return (
        base("mfx / Audio", "mfx-audio", "Audio sinks (xruns, buffer fill, latency) and the player.")
        .with_variable(label_variable("sink", "Sink", "label_values(mfx_audio_sink_info, sink)")
                       .multi(True).include_all(True))
        .with_row(Row("Sinks"))
        .with_panel(timeseries("Xruns", "short", [Query(
            f"sum by (sink) (increase(mfx_audio_sink_xruns_total{{{sel}}}[$__rate_interval]))", "{{sink}}")],
            description="Underruns: the device ran dry. Any sustained value is audible.", width=8))
        .with_panel(timeseries("Buffer fill", "percentunit", [Query(
            f"mfx_audio_sink_buffer_fill_ratio{{{sel}}}", "{{sink}}")], width=8))
        .with_panel(timeseries("Output latency", "s", [Query(
            f"mfx_audio_sink_latency_seconds{{{sel}}}", "{{sink}}")], width=8))
        .with_panel(timeseries("Frames written", "short", [Query(
            f"sum by (sink) (rate(mfx_audio_sink_frames_written_total{{{sel}}}[$__rate_interval]))", "{{sink}}")],
            description="Frames per second reaching the device (the sample rate while playing).", width=8))
        .with_panel(timeseries("Silence inserted", "short", [Query(
            f"sum by (sink) (rate(mfx_audio_sink_silence_frames_total{{{sel}}}[$__rate_interval]))", "{{sink}}")],
            width=8))
        .with_panel(state_timeline("Device open", [Query(f"max by (sink) (mfx_audio_sink_ready{{{sel}}})", "{{sink}}")],
                                   {"1": ("open", "green"), "0": ("closed", "red")}, width=8))
        .with_panel(timeseries("Writer lateness", "percentunit", [Query(
            f"max by (sink) (mfx_audio_sink_worst_lateness_ratio{{{sel}}})", "{{sink}}")],
            description="The audio engine writer's worst lateness as a share of one period: "
                        "at 1 (100 %) the device buffer is all that stood between it and an xrun.", width=12))
        .with_panel(timeseries("Engine restarts", "short", [Query(
            "sum(increase(mfx_audio_engine_restarts_total[$__rate_interval]))", "restarts")],
            description="The audio engine process exited and was started again (it resumes the song).",
            width=12))
        .with_row(Row("Player"))
        .with_panel(timeseries("Tracks started", "short", [Query(
            "sum(increase(mfx_player_tracks_played_total[$__rate_interval]))", "tracks")], width=12))
        .with_panel(timeseries("Search latency p99", "s", [Query(
            "histogram_quantile(0.99, sum by (le) (rate(mfx_player_search_duration_seconds_bucket[$__rate_interval])))",
            "p99")], width=12))
    )


DASHBOARDS = {"mfx-overview.json": overview, "mfx-plugin.json": plugin, "mfx-audio.json": audio}


def build_all() -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON (plain dicts, as written to disk)."""
    return {name: json.loads(render(factory())) for name, factory in DASHBOARDS.items()}


def render(dashboard: Dashboard) -> str:
    return json.dumps(dashboard.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m observability.dashboards_generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help="directory for the JSON files")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs from the generator")
    args = parser.parse_args(argv)
    stale = []
    for name, factory in DASHBOARDS.items():
        text = render(factory())
        path = args.output / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        args.output.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print("out of date (run python -m observability.dashboards_generate): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
