"""``mfx lyrics -f`` follows the player's state watch: the real ``mfx`` in a subprocess against a
real daemon whose player plays in real time (the engine-paced file tap). A seek while paused
shows its line at once; while playing, the next line comes from the local clock; the next
song's lyrics are loaded when it starts; the command ends when playback stops, having asked
for the state by watching it once, never by polling.
"""

from __future__ import annotations

import dataclasses
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.api.music import PlayerStatus
from tests.audio_env import TapDevice
from tests.daemon_harness import mfx_command
from tests.music_fixtures import TRACKS, build_library, write_song
from tests.player_env import PlayerRig, start_rig, tap_env
from tests.test_engine_playback import song

__all__ = ["tap_env"]

WAIT = 30.0  # seconds; a safety net, never reached when things work


@pytest.fixture
def rig(tmp_path: Path, tap_env: TapDevice) -> Iterator[PlayerRig]:
    library = build_library(tmp_path / "music")
    # Café Del Mar's .lrc: Intro 0:00, First line 0:01.5, Chorus 0:03 and 0:05; played for real.
    write_song(library.root, dataclasses.replace(TRACKS[0], seconds=7.0))
    yield from start_rig(tmp_path, tap_env, library=library, pacing="auto")


class Lines:
    """A subprocess's output, line by line, as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(process,))
        self._reader.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, text: str) -> list[str]:
        """Read until a line holds ``text``; the lines read on the way."""
        read: list[str] = []
        while True:
            line = self._queue.get(timeout=WAIT)
            assert line is not None, f"the output ended before {text!r}: {self.seen}"
            read.append(line)
            self.seen.append(line)
            if text in line:
                return read

    def close(self) -> None:
        self._reader.join(timeout=WAIT)


def requests(rig: PlayerRig, verb: str) -> float:
    counter = rig.daemon.context.metrics.api_requests_total  # type: ignore[union-attr]
    return sum(sample.value for metric in counter.collect() for sample in metric.samples
               if sample.name.endswith("_total") and sample.labels.get("verb") == verb)


def test_lyrics_follow_the_state_watch_and_the_clock_until_playback_stops(rig: PlayerRig) -> None:
    rig.call(rig.player.add, [song(rig, "Café Del Mar"), song(rig, "Del Mar Dub")])
    rig.call(rig.player.play, 0)
    rig.wait(lambda v: v.status is PlayerStatus.PLAYING)
    rig.call(rig.player.pause)
    rig.call(rig.player.seek, 1.6)
    rig.wait(lambda v: v.status is PlayerStatus.PAUSED and v.position_seconds >= 1.6)
    gets, watches = requests(rig, "GET"), requests(rig, "WATCH")

    process = subprocess.Popen([*mfx_command(), "--home", str(rig.home), "lyrics", "-f"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = Lines(process)
    try:
        listing = lines.expect("[0:05] Chorus")  # the whole lyrics, the line showing now marked
        assert listing == ["  [0:00] Intro", "> [0:01] First line", "  [0:03] Chorus", "  [0:05] Chorus"]
        # Paused: a seek is shown at once, from the state the watch sends.
        rig.call(rig.player.seek, 3.2)
        assert lines.expect("[0:03] Chorus") == ["> [0:03] Chorus"]
        # Playing: no state changes from 4.5 s to the song's end; the clock brings the 0:05 line.
        rig.call(rig.player.seek, 4.5)
        rig.call(rig.player.resume)
        assert lines.expect("[0:05] Chorus")[-1] == "> [0:05] Chorus"
        # The next song: its lyrics are looked up when it starts (it has none); then playback stops.
        after = lines.expect("No lyrics for this song.")
        assert "♪ Del Mar Dub - Energy 52" in after
        assert process.wait(timeout=WAIT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        lines.close()
    assert rig.player.state().status is PlayerStatus.STOPPED
    assert lines.seen[-1] == "No lyrics for this song.", lines.seen
    # One watch of the state; the only plain GETs are the two songs' lyrics.
    assert requests(rig, "WATCH") - watches == 1
    assert requests(rig, "GET") - gets == 2
