"""``mfx lyrics``: the lyrics of the song playing, and ``-f`` following them as they are sung.

``-f`` watches the player's state (``GET /state?watch=true``: the state now, then a line at
every change) instead of asking for it over and over. Between changes the position moves on
by the local clock from the last state, while it plays; a thread prints each line when its
time comes, and waits on a condition the watch notifies, so a seek, a pause or a new song is
shown at once. A new song's lyrics are loaded once; the command ends when playback stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import click

from mfx.cli import output, player_requests
from mfx.cli.player_view import artists, clock
from mfx.cli.session import CliContext
from mfx.errors import BadRequestError, MfxError


@dataclass(frozen=True)
class LyricClock:
    """Where a song's lyrics are: the position the last state gave, extrapolated while playing."""

    lines: list[dict[str, Any]]
    position: float  # seconds into the song, at ``at``
    at: float  # time.monotonic() when the state arrived
    playing: bool

    def position_at(self, now: float) -> float:
        return self.position + (now - self.at if self.playing else 0.0)

    def index_at(self, now: float) -> int | None:
        """The line showing at ``now``: the last one whose time has come."""
        position = self.position_at(now)
        return max((i for i, line in enumerate(self.lines) if line["time"] <= position), default=None)

    def wait_at(self, now: float) -> float | None:
        """Seconds until the next line shows; None when none will without a change of state."""
        if not self.playing:
            return None
        position = self.position_at(now)
        upcoming = [line["time"] for line in self.lines if line["time"] > position]
        return max(0.0, min(upcoming) - position) if upcoming else None


def line_text(line: dict[str, Any]) -> str:
    return f"[{clock(line['time'])}] {line['text']}"


def load(ctx: CliContext, song_id: str | None = None) -> dict[str, Any] | None:
    """The lyrics of the current song (or of the queued song ``song_id``); None if it has none."""
    params = {"songId": song_id} if song_id else None
    try:
        found = player_requests.call(ctx, "GET", "/lyrics", params=params)
    except BadRequestError:  # the song left the queue meanwhile: the next state tells what plays
        return None
    return found if isinstance(found, dict) else None


def show(found: dict[str, Any] | None, position: float) -> int | None:
    """Print the lyrics with the line showing at ``position`` marked '>'; return its index."""
    if not found:
        click.echo("No lyrics for this song.", err=True)
        return None
    lines = found.get("lines") or []
    if not lines:
        click.echo(found.get("plain") or "")
        return None
    showing = max((i for i, line in enumerate(lines) if line["time"] <= position), default=None)
    for index, line in enumerate(lines):
        click.echo(f"{'>' if index == showing else ' '} {line_text(line)}")
    return showing


def _song_id(state: dict[str, Any]) -> str | None:
    current = state.get("current")
    return str(current.get("id")) if isinstance(current, dict) and current.get("id") is not None else None


def _clock(lines: list[dict[str, Any]], state: dict[str, Any]) -> LyricClock:
    return LyricClock(lines, float(state.get("positionSeconds") or 0), time.monotonic(),
                      state.get("status") == "playing")


@dataclass
class _Follow:
    """What the watch and the printing thread share, under ``changed``."""

    song: str | None
    clock: LyricClock
    printed: tuple[str | None, int | None]  # (song, line) last shown
    changed: threading.Condition = field(default_factory=threading.Condition)
    done: bool = False


def _print_lines(shared: _Follow) -> None:
    """Print each line when the clock reaches it, until ``done``."""
    with shared.changed:
        while not shared.done:
            now = time.monotonic()
            index = shared.clock.index_at(now)
            if index is not None and (shared.song, index) != shared.printed:
                click.echo(f"> {line_text(shared.clock.lines[index])}")
            shared.printed = (shared.song, index)
            shared.changed.wait(shared.clock.wait_at(now))


def follow(ctx: CliContext) -> None:
    """``mfx lyrics -f``: print the lyrics, then each line as it is sung, until playback stops."""
    events: Iterator[dict[str, Any]] = ctx.client.stream_lines(
        player_requests.PLAYER_PATH + "/state", params={"watch": "true"})
    try:
        first = next(events, None)
        if first is None:
            raise MfxError("the daemon ended the player's state watch at once; is it shutting down?")
        state = first["object"]
        song = _song_id(state)
        found = load(ctx, song)
        showing = show(found, float(state.get("positionSeconds") or 0))
        if state.get("status") == "stopped":
            return
        shared = _Follow(song, _clock((found or {}).get("lines") or [], state), (song, showing))
        printer = threading.Thread(target=_print_lines, args=(shared,), name="lyrics-clock")
        printer.start()
        try:
            _watch(ctx, events, shared)
        finally:
            with shared.changed:
                shared.done = True
                shared.changed.notify()
            printer.join()
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def _watch(ctx: CliContext, events: Iterator[dict[str, Any]], shared: _Follow) -> None:
    for event in events:
        state = event.get("object") or {}
        if state.get("status") == "stopped":
            return
        song = _song_id(state)
        with shared.changed:
            lines = shared.clock.lines
        if song != shared.song:
            found = load(ctx, song)  # outside the lock: the clock goes on printing meanwhile
            lines = (found or {}).get("lines") or []
            with shared.changed:
                current = state.get("current") or {}
                click.echo("")
                click.echo(f"♪ {current.get('title', '')} - {artists(current)}")
                if not lines:
                    click.echo((found or {}).get("plain") or "No lyrics for this song.", err=not found)
        with shared.changed:
            shared.song = song
            shared.clock = _clock(lines, state)
            shared.changed.notify()
    output.warn("the daemon closed the player's state watch")
