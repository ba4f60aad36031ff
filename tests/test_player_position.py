"""The player's position comes from the sink, per stream: reconfiguring the sink mid-song
(new period and buffer sizes, so a new ring buffer) does not move it back.

The sink plays the file tap behind a ``Gate``, so the test decides how much of the song has
played; every wait is on reported state (the sink's counters, the player's changes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.api.music import PlayerStatus
from mfx.audio import DeviceParams
from tests.audio_env import Gate, GatedDevice, TapDevice
from tests.music_fixtures import Track, build_library, write_song
from tests.player_env import RATE, PlayerRig, start_rig, tap_env

__all__ = ["tap_env"]

WAIT = 30.0  # seconds; a safety net, never reached when things work
LONG = Track("Long/Long Tone.flac", "Long Tone", ("Test Band",), "Long", 1, seconds=3.0)


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def rig(tmp_path: Path, tap_env: TapDevice, gate: Gate) -> Iterator[PlayerRig]:
    library = build_library(tmp_path / "music")
    write_song(library.root, LONG)
    library.tracks.append(LONG)
    yield from start_rig(tmp_path, tap_env, library=library, open_device=GatedDevice.opener(gate))


def play_periods(rig: PlayerRig, gate: Gate, periods: int) -> None:
    """Let ``periods`` more device writes through and wait until they happened."""
    target = rig.sink.status().frames_written + periods * rig.sink.params.period_frames
    gate.allow(periods)
    assert rig.sink.wait_until(lambda s: s.frames_written >= target, timeout=WAIT) is not None


def play_until(rig: PlayerRig, gate: Gate, seconds: float) -> float:
    """Let the song play, a period at a time, until the player reports ``seconds``."""
    for _ in range(10 * round(seconds * RATE / rig.sink.params.period_frames)):
        position = rig.player.state().position_seconds
        if position >= seconds:
            return position
        play_periods(rig, gate, 1)
    raise AssertionError(f"the position never reached {seconds}s")


def test_a_sink_reconfigure_mid_song_keeps_the_position(rig: PlayerRig, gate: Gate) -> None:
    songs = rig.songs("Long Tone")
    assert songs[0].title == "Long Tone"
    rig.call(rig.player.add, [songs[0]])
    rig.call(rig.player.play, 0)
    rig.wait(lambda v: v.tracks_started == 1 and v.status is PlayerStatus.PLAYING)
    before = play_until(rig, gate, 0.5)

    rig.sink.reconfigure(DeviceParams(rate=RATE, channels=2, period_frames=512, periods=8))
    assert rig.player.state().position_seconds >= before
    play_periods(rig, gate, 4)
    after = rig.player.state()
    assert after.status is PlayerStatus.PLAYING and after.tracks_started == 1 and after.last_error is None
    assert after.position_seconds >= before

    rig.call(rig.player.pause)
    paused = rig.player.state().position_seconds
    assert paused >= after.position_seconds
    rig.call(rig.player.resume)
    play_periods(rig, gate, 4)
    assert rig.player.state().position_seconds >= paused
    rig.call(rig.player.stop)
