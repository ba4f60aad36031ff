"""The engine's sink counters as the daemon's Prometheus series.

The engine process counts; the daemon serves ``/metrics``. Counters move by what a report
adds to the one before it; a report below the last one (a new engine counts from zero)
adds all it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mfx.audio.sink_status import SinkState
from mfx.engine.api import SinkReport
from observability.metrics import Metrics


@dataclass
class _Seen:
    frames_written: int = 0
    silence_frames: int = 0
    xruns: int = 0
    reopens: int = 0
    deadline_misses: int = 0
    causes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


def _delta(now: int, before: int) -> int:
    return now - before if now >= before else now


class SinkMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._seen: dict[str, _Seen] = {}

    def publish(self, report: SinkReport) -> None:
        m, name = self._metrics, report.name
        seen = self._seen.setdefault(name, _Seen())
        for counter, now, attr in (
                (m.audio_sink_frames_written_total, report.frames_written, "frames_written"),
                (m.audio_sink_silence_frames_total, report.silence_frames, "silence_frames"),
                (m.audio_sink_xruns_total, report.xruns, "xruns"),
                (m.audio_sink_reopens_total, report.reopens, "reopens"),
                (m.audio_sink_deadline_misses_total, report.deadline_misses, "deadline_misses")):
            counter.labels(name).inc(_delta(now, getattr(seen, attr)))
            setattr(seen, attr, now)
        for cause, now in report.xrun_causes.items():
            m.audio_sink_xrun_causes_total.labels(name, cause).inc(_delta(now, seen.causes.get(cause, 0)))
            seen.causes[cause] = now
        for errno, now in report.write_errors.items():
            m.audio_sink_write_errors_total.labels(name, errno).inc(_delta(now, seen.errors.get(errno, 0)))
            seen.errors[errno] = now
        m.audio_sink_buffer_fill_ratio.labels(name).set(report.buffer_fill)
        m.audio_sink_latency_seconds.labels(name).set(report.latency_seconds)
        m.audio_sink_period_seconds.labels(name).set(report.period_seconds)
        period = report.period_seconds or 1.0
        m.audio_sink_worst_lateness_ratio.labels(name).set(report.worst_lateness_seconds / period)
        m.audio_sink_ready.labels(name).set(1 if report.state == SinkState.OPEN else 0)

    def engine_restarted(self) -> None:
        self._metrics.audio_engine_restarts_total.inc()

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)
        self._metrics.forget("sink", name)
