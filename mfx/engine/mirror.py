"""What the daemon has asked of the engine, kept on the daemon's side: enough to bring a new
engine back to it after the old one died (the sinks, the plugins, volume, processors, fade,
and the current track at the frame it had reached, paused or playing, with its look-ahead).

It follows the calls that succeeded and the events the engine pushed (the engine moves on
by itself: a look-ahead starts, a track ends), and nothing else.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from mfx.engine.api import (
    EngineEvent,
    PlaybackChanged,
    PlaybackReport,
    PlaybackState,
    PluginLoad,
    SinkConfig,
    TrackRequest,
)
from mfx.engine.snapshot import EngineSnapshot

MAX_UNPLAYED = 16  # opened, not played: the engine keeps as many


@dataclass
class Resume:
    """How to put the current track back on a new engine."""

    request: TrackRequest  # with start_frame where it had got to
    sink: str | None
    paused: bool
    queued: list[TrackRequest]


@dataclass
class Mirror:
    sinks: dict[str, SinkConfig] = field(default_factory=dict)
    plugins: list[PluginLoad] = field(default_factory=list)
    volume: float = 1.0
    muted: bool = False
    processors: list[str] = field(default_factory=list)
    fade_seconds: float | None = None  # None: never set, the engine's default
    requests: dict[str, TrackRequest] = field(default_factory=dict)  # labels still of use
    unplayed: list[str] = field(default_factory=list)
    handed: dict[str, float] = field(default_factory=dict)  # label -> when play/enqueue took it
    report: PlaybackReport | None = None

    # --- calls that succeeded ---------------------------------------------------------------

    def configured(self, config: SinkConfig) -> None:
        if config.default:  # one default: the engine moves it too
            self.sinks = {n: dataclasses.replace(c, default=False) for n, c in self.sinks.items()}
        self.sinks[config.name] = config

    def closed(self, name: str) -> None:
        self.sinks.pop(name, None)

    def opened(self, request: TrackRequest) -> None:
        self.requests[request.label] = request
        if request.label not in self.unplayed:
            self.unplayed.append(request.label)
        while len(self.unplayed) > MAX_UNPLAYED:
            self.requests.pop(self.unplayed.pop(0), None)

    def handed_over(self, label: str) -> None:
        """``play`` or ``enqueue`` took the opened track (its request is kept until a report
        made after this says the track is neither current nor queued)."""
        if label in self.unplayed:
            self.unplayed.remove(label)
        self.handed[label] = time.monotonic()

    def observe(self, event: EngineEvent) -> None:
        # Every change of track or state comes with a PlaybackChanged: it says it all.
        if isinstance(event, PlaybackChanged):
            self.playback(event.report)

    def playback(self, report: PlaybackReport) -> None:
        """The engine's latest word on playback (a reply or an event); newer wins."""
        if self.report is not None and report.at < self.report.at:
            return
        self.report = report
        self.volume, self.muted = report.volume, report.muted
        listed = set(report.queued) | ({report.label} if report.label else set())
        self.handed = {label: at for label, at in self.handed.items() if at > report.at and label not in listed}
        keep = set(self.unplayed) | listed | set(self.handed)
        self.requests = {label: r for label, r in self.requests.items() if label in keep}

    def adopt(self, snapshot: EngineSnapshot) -> None:
        """Take over what an engine already running holds."""
        for config in snapshot.sinks:
            self.sinks[config.name] = config
        self.plugins = list(snapshot.plugins)
        self.processors = list(snapshot.processors)
        self.fade_seconds = snapshot.fade_seconds
        for request in [snapshot.current, *snapshot.queued]:
            if request is not None:
                self.requests[request.label] = request
        if snapshot.playback is not None:
            self.playback(snapshot.playback)

    # --- what a new engine is given ---------------------------------------------------------

    def resume_at(self, moment: float) -> Resume | None:
        """The current track as it was at ``moment`` (time.monotonic()), or None when nothing
        was playing or paused."""
        report = self.report
        if report is None or report.label is None or report.state not in (PlaybackState.PLAYING,
                                                                           PlaybackState.PAUSED):
            return None
        request = self.requests.get(report.label)
        if request is None:
            return None
        frame = report.frame_at(moment)
        queued = [self.requests[q] for q in report.queued if q in self.requests]
        return Resume(request=dataclasses.replace(request, start_frame=frame), sink=report.sink,
                      paused=report.state is PlaybackState.PAUSED, queued=queued)
