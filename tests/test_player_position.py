"""The player's position comes from the audio engine, per stream: reconfiguring the sink
mid-song (new period and buffer sizes, so the engine reopens the device with a new ring
buffer) does not move it back, and the song goes on to its end.

The sink is the engine-paced file tap, so the song plays in real time; waits are on the
engine's reported position and the player's changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mfx.api.music import PlayerStatus
from tests.audio_env import TapDevice
from tests.indexed_tracks import write_indexed_song
from tests.music_fixtures import LibraryLayout
from tests.player_env import PlayerRig, start_rig, tap_env, tap_sink_manifest
from tests.test_engine_outlives_daemon import wait_for
from tests.test_engine_playback import song, wait_position

__all__ = ["tap_env"]


@pytest.fixture
def rig(tmp_path: Path, tap_env: TapDevice) -> Iterator[PlayerRig]:
    library = LibraryLayout(root=tmp_path / "music")
    write_indexed_song(library.root, 1, 3.0, "Long Tone")
    yield from start_rig(tmp_path, tap_env, library=library, pacing="auto")


def test_a_sink_reconfigure_mid_song_keeps_the_position(rig: PlayerRig, tmp_path: Path) -> None:
    rig.call(rig.player.add, [song(rig, "Long Tone")])
    rig.call(rig.player.play, 0)
    before = wait_position(rig, 0.5)

    changed = tap_sink_manifest(pacing="auto")
    changed["spec"].update(periodFrames=512, bufferPeriods=8)
    path = tmp_path / "changed-sink.yaml"
    path.write_text(yaml.safe_dump(changed))
    assert rig.cli("apply", "-f", str(path)).exit_code == 0
    reopened = wait_for(lambda: (r := rig.sink_report()).actual is not None and r.actual.period_frames == 512,
                        "the engine to reopen the sink")
    assert reopened
    after = rig.player.state()
    assert after.status is PlayerStatus.PLAYING and after.tracks_started == 1 and after.last_error is None
    assert after.position_seconds >= before

    rig.call(rig.player.pause)
    paused = rig.player.state().position_seconds
    assert paused >= after.position_seconds
    rig.call(rig.player.resume)
    assert wait_position(rig, paused + 0.2) >= paused
    view = rig.wait(lambda v: v.status is PlayerStatus.STOPPED and v.tracks_started == 1)
    assert view.last_error is None
