"""What the terminal player writes on screen, as plain functions of the data it shows."""

from __future__ import annotations

import bisect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SYMBOLS = {"playing": "▶", "paused": "⏸", "stopped": "■"}


def clock(seconds: float | None) -> str:
    """``m:ss`` (``-:--`` when unknown)."""
    if seconds is None:
        return "-:--"
    whole = max(0, int(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def artists(song: Mapping[str, Any]) -> str:
    return ", ".join(str(a.get("name", "")) for a in song.get("artists") or [])


def album(song: Mapping[str, Any]) -> str:
    return str((song.get("album") or {}).get("name") or "")


@dataclass
class PlayerClock:
    """The last state the daemon sent and when it arrived: the position moves on locally
    while playing (the watch sends a line per change, not per second)."""

    state: dict[str, Any] = field(default_factory=dict)
    received: float = field(default_factory=time.monotonic)

    def update(self, state: dict[str, Any]) -> None:
        self.state = state
        self.received = time.monotonic()

    @property
    def song(self) -> dict[str, Any] | None:
        return self.state.get("current")

    def position(self) -> float:
        position = float(self.state.get("positionSeconds") or 0.0)
        if self.state.get("status") == "playing":
            position += time.monotonic() - self.received
        duration = self.duration()
        return min(position, duration) if duration else position

    def duration(self) -> float | None:
        song = self.song or {}
        value = self.state.get("durationSeconds") or song.get("durationSeconds")
        return float(value) if value else None


def now_line(state: Mapping[str, Any], position: float) -> str:
    """``▶ Title — Artist · Album  1:23/4:56  vol 80  in-order``."""
    symbol = SYMBOLS.get(str(state.get("status", "stopped")), "?")
    song = state.get("current")
    volume = "muted" if state.get("muted") else f"vol {state.get('volume', 100)}"
    mode = str(state.get("mode", ""))
    if not song:
        return f"{symbol} nothing playing  {volume}  {mode}"
    who = artists(song)
    where = album(song)
    what = song.get("title", "?") + (f" — {who}" if who else "") + (f" · {where}" if where else "")
    duration = state.get("durationSeconds") or song.get("durationSeconds")
    return f"{symbol} {what}  {clock(position)}/{clock(duration)}  {volume}  {mode}"


def progress_bar(position: float, duration: float | None, width: int) -> str:
    """``━━━━━━●─────── 1:23/4:56`` in ``width`` columns."""
    times = f" {clock(position)}/{clock(duration)}"
    cells = max(width - len(times), 4)
    done = int(cells * min(position / duration, 1.0)) if duration else 0
    return "━" * done + "●" + "─" * max(cells - done - 1, 0) + times


def lyric_index(lines: Sequence[Mapping[str, Any]], position: float) -> int | None:
    """Index of the line showing at ``position`` (the last of lines sharing its time)."""
    times = [float(line.get("time", 0.0)) for line in lines]
    index = bisect.bisect_right(times, position) - 1
    return index if index >= 0 else None


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item  # type: ignore[no-any-return]
    return {}


@dataclass(frozen=True)
class PluginRow:
    name: str
    type: str
    ready: str
    healthy: str
    restarts: int
    reason: str
    suspended: bool

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> PluginRow:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        ready = condition(obj, "Ready")
        return cls(name=str(obj.get("metadata", {}).get("name", "")), type=str(spec.get("type", "")),
                   ready=str(ready.get("status", "Unknown")), healthy=str(condition(obj, "Healthy").get("status", "-")),
                   restarts=int(status.get("restartCount") or 0), reason=str(ready.get("reason", "")),
                   suspended=bool(spec.get("suspend")))

    def cells(self) -> tuple[str, ...]:
        ready = "True" if self.ready == "True" else f"{self.ready} ({self.reason})" if self.reason else self.ready
        return (self.name, self.type, ready, self.healthy, str(self.restarts), "yes" if self.suspended else "")
