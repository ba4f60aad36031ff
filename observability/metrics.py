"""The metrics catalog: every Prometheus metric mfx exports, defined in one place.

There is no global registry: the daemon builds one ``Metrics`` and hands it to each part
by constructor injection, so tests can build their own and nothing leaks between them.
Names follow Prometheus conventions (base units, ``_total`` for counters, ``_seconds``,
``_bytes``). ``observability/METRICS.md`` documents each one; a test keeps the two equal.

Per-object state (plugin info and conditions, sink readiness) is not kept here: it is
computed from the store at scrape time by collectors, so a deleted object's series vanish.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from observability.fastmetrics import FastCounter, FastGauge, FastHistogram
from observability.process_metrics import PluginProcessSampler

# Buckets sized for calls into plugins and reconciles: 100 µs .. 60 s.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


# Per-plugin histograms have fewer buckets: with 1000 plugins every bucket is 1000+ series.
PLUGIN_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0)


class Metrics:
    """All collectors, registered on one private registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # Samples plugin processes into two families below at every scrape; registered before
        # them (scrapes visit collectors in registration order), so the values are current.
        self.plugin_process_sampler = PluginProcessSampler()
        r.register(self.plugin_process_sampler)

        # Build
        self.build_info = Info("mfx_build", "mfx build information.", registry=r)

        # Reconciler (controller-runtime's set)
        self.reconcile_total = Counter(
            "mfx_reconcile_total", "Reconciles by controller and result.",
            ["controller", "result"], registry=r)
        self.reconcile_errors_total = Counter(
            "mfx_reconcile_errors_total", "Reconciles that ended in an error.",
            ["controller"], registry=r)
        self.reconcile_duration_seconds = Histogram(
            "mfx_reconcile_duration_seconds", "Time spent in one reconcile.",
            ["controller"], buckets=LATENCY_BUCKETS, registry=r)
        self.workqueue_depth = Gauge(
            "mfx_workqueue_depth", "Keys waiting in the work queue.", ["name"], registry=r)
        self.workqueue_adds_total = Counter(
            "mfx_workqueue_adds_total", "Keys added to the work queue.", ["name"], registry=r)
        self.workqueue_retries_total = Counter(
            "mfx_workqueue_retries_total", "Keys re-queued with a rate-limited delay.",
            ["name"], registry=r)
        self.workqueue_queue_duration_seconds = Histogram(
            "mfx_workqueue_queue_duration_seconds", "Time a key waits before a worker takes it.",
            ["name"], buckets=LATENCY_BUCKETS, registry=r)
        self.workqueue_work_duration_seconds = Histogram(
            "mfx_workqueue_work_duration_seconds", "Time a worker spends on a key.",
            ["name"], buckets=LATENCY_BUCKETS, registry=r)
        self.active_workers = Gauge(
            "mfx_controller_active_workers", "Workers busy with a key.", ["controller"], registry=r)

        # Plugins (series carry only bounded labels: plugin name, method from the interface)
        self.plugin_restarts_total = FastCounter(
            "mfx_plugin_restarts_total", "Restarts of a plugin instance.", ["name"], registry=r)
        self.plugin_health_check_duration_seconds = FastHistogram(
            "mfx_plugin_health_check_duration_seconds", "Duration of health probes.",
            ["name"], buckets=PLUGIN_LATENCY_BUCKETS, registry=r)
        self.plugin_health_check_failures_total = FastCounter(
            "mfx_plugin_health_check_failures_total", "Failed health probes.", ["name"], registry=r)
        self.plugin_call_duration_seconds = FastHistogram(
            "mfx_plugin_call_duration_seconds", "Duration of service calls into plugins.",
            ["name", "method"], buckets=PLUGIN_LATENCY_BUCKETS, registry=r)
        self.plugin_call_errors_total = FastCounter(
            "mfx_plugin_call_errors_total", "Service calls that failed, by reason.",
            ["name", "method", "reason"], registry=r)
        self.plugin_circuit_breaker_state = FastGauge(
            "mfx_plugin_circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.", ["name"], registry=r)
        self.plugin_process_resident_memory_bytes = FastGauge(
            "mfx_plugin_process_resident_memory_bytes", "Resident memory of an RPC plugin process.",
            ["name"], registry=r)
        # A counter (promtool rejects "_total" on a gauge): the sampler adds the CPU time a
        # process used since its previous sample, so restarts never make it go down.
        self.plugin_process_cpu_seconds_total = FastCounter(
            "mfx_plugin_process_cpu_seconds_total", "CPU time used by an RPC plugin's processes.",
            ["name"], registry=r)
        self.plugin_process_sampler.fill(
            self.plugin_process_resident_memory_bytes, self.plugin_process_cpu_seconds_total)
        self.plugin_wasm_fuel_consumed_total = FastCounter(
            "mfx_plugin_wasm_fuel_consumed_total", "WebAssembly fuel consumed by a plugin.",
            ["name"], registry=r)

        # Event bus
        self.eventbus_dropped_total = Counter(
            "mfx_eventbus_dropped_total", "Events dropped for a slow subscriber.",
            ["topic"], registry=r)

        # Audio sinks (per sink object)
        self.audio_sink_frames_written_total = Counter(
            "mfx_audio_sink_frames_written_total", "Frames written to the device.", ["sink"], registry=r)
        self.audio_sink_xruns_total = Counter(
            "mfx_audio_sink_xruns_total", "Underruns (xruns) of the device.", ["sink"], registry=r)
        self.audio_sink_silence_frames_total = Counter(
            "mfx_audio_sink_silence_frames_total", "Silence frames written because the buffer was empty.",
            ["sink"], registry=r)
        self.audio_sink_write_errors_total = Counter(
            "mfx_audio_sink_write_errors_total", "Write errors by errno name.", ["sink", "errno"], registry=r)
        self.audio_sink_reopens_total = Counter(
            "mfx_audio_sink_reopens_total", "Times the device was reopened.", ["sink"], registry=r)
        self.audio_sink_buffer_fill_ratio = Gauge(
            "mfx_audio_sink_buffer_fill_ratio", "Fill of the sink's ring buffer (0..1).", ["sink"], registry=r)
        self.audio_sink_latency_seconds = Gauge(
            "mfx_audio_sink_latency_seconds", "Output latency of the device.", ["sink"], registry=r)
        self.audio_sink_ready = Gauge(
            "mfx_audio_sink_ready", "1 when the sink's device is open and playing.", ["sink"], registry=r)
        self.audio_sink_xrun_causes_total = Counter(
            "mfx_audio_sink_xrun_causes_total",
            "Xruns by cause: writerLate (the writer came back after the buffer ran out) or device.",
            ["sink", "cause"], registry=r)
        self.audio_sink_period_seconds = Gauge(
            "mfx_audio_sink_period_seconds", "Length of one period (one device write).", ["sink"], registry=r)
        self.audio_sink_deadline_misses_total = Counter(
            "mfx_audio_sink_deadline_misses_total", "Writer wake-ups later than one period.", ["sink"], registry=r)
        self.audio_sink_worst_lateness_ratio = Gauge(
            "mfx_audio_sink_worst_lateness_ratio", "The writer's worst lateness, as a share of one period.",
            ["sink"], registry=r)

        # The audio engine process
        self.audio_engine_restarts_total = Counter(
            "mfx_audio_engine_restarts_total", "Times the audio engine was started again after it exited.",
            registry=r)

        # Player
        self.player_tracks_played_total = Counter(
            "mfx_player_tracks_played_total", "Tracks started by the player.", registry=r)
        self.player_track_failures_total = Counter(
            "mfx_player_track_failures_total", "Tracks skipped because a source or codec failed.",
            ["reason"], registry=r)
        self.player_search_duration_seconds = Histogram(
            "mfx_player_search_duration_seconds", "Search fan-out duration.",
            buckets=LATENCY_BUCKETS, registry=r)
        self.player_source_timeouts_total = Counter(
            "mfx_player_source_timeouts_total", "Searches a music source did not answer in time.",
            ["source"], registry=r)

        # GitOps
        self.gitsource_sync_total = Counter(
            "mfx_gitsource_sync_total", "Syncs of a GitSource by result.", ["name", "result"], registry=r)

        # Nodes and leader election
        self.node_lease_renewals_total = Counter(
            "mfx_node_lease_renewals_total", "Renewals of this node's Lease by its node agent.", registry=r)
        self.leader_is_leader = Gauge(
            "mfx_leader_is_leader", "1 while this process leads the election on the Lease.", ["lease"], registry=r)

        # API server
        self.api_requests_total = Counter(
            "mfx_api_requests_total", "API requests by verb and HTTP code.", ["verb", "code"], registry=r)
        self.api_request_duration_seconds = Histogram(
            "mfx_api_request_duration_seconds", "API request latency.", ["verb"],
            buckets=LATENCY_BUCKETS, registry=r)

        # Store (SQLite): checkpoints of its write-ahead log, which no write waits for
        self.store_wal_checkpoint_duration_seconds = Histogram(
            "mfx_store_wal_checkpoint_duration_seconds",
            "Time one checkpoint of the SQLite store's write-ahead log took (its pages copied "
            "into the database file, the file synced).", buckets=LATENCY_BUCKETS, registry=r)
        self.store_wal_checkpoint_pages_total = Counter(
            "mfx_store_wal_checkpoint_pages_total",
            "Pages of the SQLite store's write-ahead log copied into the database file.", registry=r)

    def init_plugin(self, name: str, methods: tuple[str, ...] = (), *, process: bool = False,
                    wasm: bool = False) -> None:
        """Create a started plugin's series at zero, so rates and quantiles exist before the
        first restart, failure or call (call this when it starts; ``forget`` when deleted).

        ``methods`` are its interfaces' methods (a bounded set); ``process`` for RPC plugins,
        ``wasm`` for WebAssembly ones.
        """
        self.plugin_restarts_total.labels(name)
        self.plugin_health_check_duration_seconds.labels(name)
        self.plugin_health_check_failures_total.labels(name)
        self.plugin_circuit_breaker_state.labels(name)
        for method in methods:
            self.plugin_call_duration_seconds.labels(name, method)
        if process:
            self.plugin_process_resident_memory_bytes.labels(name)
            self.plugin_process_cpu_seconds_total.labels(name)
        if wasm:
            self.plugin_wasm_fuel_consumed_total.labels(name)

    def init_sink(self, sink: str) -> None:
        """Create a sink's series at zero when it is first opened (``forget("sink", ...)`` on delete)."""
        for counter in (self.audio_sink_frames_written_total, self.audio_sink_xruns_total,
                        self.audio_sink_silence_frames_total, self.audio_sink_reopens_total):
            counter.labels(sink)
        for gauge in (self.audio_sink_buffer_fill_ratio, self.audio_sink_latency_seconds,
                      self.audio_sink_ready):
            gauge.labels(sink)

    def forget(self, label_name: str, value: str) -> None:
        """Drop every series whose ``label_name`` label equals ``value`` (a deleted object)."""
        for collector in list(self.registry._collector_to_names):  # noqa: SLF001
            labelnames = getattr(collector, "_labelnames", ())
            if label_name not in labelnames:
                continue
            index = labelnames.index(label_name)
            metrics = getattr(collector, "_metrics", {})
            for labelvalues in list(metrics):
                if labelvalues[index] == value:
                    collector.remove(*labelvalues)  # type: ignore[attr-defined]  # a labelled family

