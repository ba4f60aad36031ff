"""A sink's Prometheus series, labelled with its name; a sink without metrics gets a no-op."""

from __future__ import annotations

from dataclasses import dataclass

from observability.metrics import Metrics


@dataclass
class SinkMetrics:
    sink: str
    metrics: Metrics | None = None

    def __post_init__(self) -> None:
        m = self.metrics
        if m is None:
            return
        # The series exist (at 0) from the start, as Prometheus prefers.
        for collector in (m.audio_sink_frames_written_total, m.audio_sink_xruns_total,
                          m.audio_sink_silence_frames_total, m.audio_sink_reopens_total,
                          m.audio_sink_buffer_fill_ratio, m.audio_sink_latency_seconds, m.audio_sink_ready):
            collector.labels(self.sink)

    def written(self, frames: int) -> None:
        if self.metrics is not None:
            self.metrics.audio_sink_frames_written_total.labels(self.sink).inc(frames)

    def silence(self, frames: int) -> None:
        if self.metrics is not None:
            self.metrics.audio_sink_silence_frames_total.labels(self.sink).inc(frames)

    def xrun(self) -> None:
        if self.metrics is not None:
            self.metrics.audio_sink_xruns_total.labels(self.sink).inc()

    def write_error(self, errno_name: str) -> None:
        if self.metrics is not None:
            self.metrics.audio_sink_write_errors_total.labels(self.sink, errno_name).inc()

    def reopened(self) -> None:
        if self.metrics is not None:
            self.metrics.audio_sink_reopens_total.labels(self.sink).inc()

    def fill(self, ratio: float) -> None:
        if self.metrics is not None:
            self.metrics.audio_sink_buffer_fill_ratio.labels(self.sink).set(ratio)

    def latency(self, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.audio_sink_latency_seconds.labels(self.sink).set(seconds)

    def ready(self, ready: bool) -> None:
        if self.metrics is not None:
            self.metrics.audio_sink_ready.labels(self.sink).set(1 if ready else 0)
