"""The player service in a real daemon with the real local-music and codec plugins, playing
into an ALSA file tap: play modes, gapless hand-over, failures skipped, persistence.

Every wait is on a player state change (``Player.wait_for``), never a sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mfx.api.music import PlayerStatus, PlayMode, Song
from mfx.audio import SampleFormat
from tests.audio_env import TapDevice
from tests.music_fixtures import Track, build_library, write_corrupt, write_song
from tests.player_env import PlayerRig, start_rig, tap_env

__all__ = ["tap_env"]

LONG = Track("Long/Long Tone.flac", "Long Tone", ("Test Band",), "Long", 1, seconds=3.0)


@pytest.fixture
def rig(tmp_path: Path, tap_env: TapDevice) -> Iterator[PlayerRig]:
    yield from start_rig(tmp_path, tap_env)


def sequence(rig: PlayerRig) -> list[str]:
    view = rig.player.state()
    return [s.id for s in view.history] + ([view.current.id] if view.current else [])


def ogg_songs(rig: PlayerRig) -> list[Song]:
    return sorted((s for s in rig.songs("Olas") if s.format == "ogg" or (s.path or "").endswith(".ogg")),
                  key=lambda s: s.title)


def test_plays_the_queue_in_order_into_the_tap(rig: PlayerRig) -> None:
    songs = rig.songs("Café Del Mar")
    assert songs[0].title == "Café Del Mar"  # the exact title ranks first
    rig.call(rig.player.add, [songs[0]])
    rig.call(rig.player.play, 0)
    view = rig.wait(lambda v: v.tracks_started == 1 and v.status is PlayerStatus.STOPPED)
    assert view.last_error is None
    rig.close_sink()
    played = rig.tap.read(SampleFormat.S16_LE, 2).astype(np.float32) / 32768
    decoded, rate = sf.read(songs[0].path, dtype="float32", always_2d=True)
    assert rate == 44100 and len(played) >= len(decoded)
    # The tone arrives whole: same energy (the sink pads with silence around it).
    assert np.sum(played ** 2) == pytest.approx(np.sum(decoded ** 2), rel=0.05)


def test_in_order_plays_each_song_once_then_stops(rig: PlayerRig) -> None:
    songs = ogg_songs(rig)
    assert len(songs) == 3
    rig.call(rig.player.add, songs)
    rig.call(rig.player.play, 0)
    view = rig.wait(lambda v: v.tracks_started == 3 and v.status is PlayerStatus.STOPPED)
    assert sequence(rig) == [s.id for s in songs]
    assert view.last_error is None


def test_loop_all_wraps_and_loop_one_repeats(rig: PlayerRig) -> None:
    songs = ogg_songs(rig)
    rig.call(rig.player.add, songs)
    rig.call(rig.player.set_mode, PlayMode.LOOP_ALL)
    rig.call(rig.player.play, 1)
    rig.wait(lambda v: v.tracks_started >= 4)
    rig.call(rig.player.stop)
    ids = [s.id for s in songs]
    assert sequence(rig)[:4] == [ids[1], ids[2], ids[0], ids[1]]

    rig.call(rig.player.set_mode, PlayMode.LOOP_ONE)
    started = rig.player.state().tracks_started
    rig.call(rig.player.play, 2)
    rig.wait(lambda v: v.tracks_started >= started + 3)
    rig.call(rig.player.stop)
    assert sequence(rig)[-3:] == [ids[2]] * 3


def test_shuffle_plays_every_song_once_per_cycle(rig: PlayerRig) -> None:
    songs = ogg_songs(rig) + rig.songs("Energy 52")
    ids = sorted(s.id for s in songs)
    rig.call(rig.player.add, songs)
    rig.call(rig.player.set_mode, PlayMode.SHUFFLE)
    rig.call(rig.player.next)  # starts the first song of a shuffled cycle
    n = len(ids)
    rig.wait(lambda v: v.tracks_started >= 2 * n)
    rig.call(rig.player.stop)
    played = sequence(rig)[:2 * n]
    assert sorted(played[:n]) == ids and sorted(played[n:]) == ids
    assert played[n] != played[n - 1]  # a new cycle never repeats the song that ended the last


def test_a_corrupt_file_is_skipped_with_the_reason(rig: PlayerRig) -> None:
    songs = ogg_songs(rig)
    broken = songs[1]
    assert broken.path is not None
    write_corrupt(Path(broken.path))  # indexed as a song; now it does not decode
    rig.call(rig.player.add, songs)
    rig.call(rig.player.play, 0)
    view = rig.wait(lambda v: v.status is PlayerStatus.STOPPED and v.tracks_started == 2)
    # Two songs started; the broken one was current only while it failed.
    assert sequence(rig) == [songs[0].id, broken.id, songs[2].id]
    assert view.last_error is not None and view.last_error.song_id == broken.id
    assert view.last_error.reason == "DecodeFailed"
    failures = rig.daemon.context.metrics.player_track_failures_total.labels("DecodeFailed")._value.get()
    assert failures == 1


def test_queue_edits_decide_what_plays(rig: PlayerRig) -> None:
    songs = ogg_songs(rig)
    extra = rig.songs("Café Del Mar")[0]
    rig.call(rig.player.add, songs)
    rig.call(rig.player.pause)  # nothing plays yet: pause is a no-op
    rig.call(rig.player.move, 2, 0)
    rig.call(rig.player.remove, 1)
    rig.call(rig.player.add, [extra])
    queue = [s.id for s in rig.player.state().queue]
    # move 2 -> 0 gives [c, a, b]; removing index 1 drops a; the extra song is appended
    assert queue == [songs[2].id, songs[1].id, extra.id]
    rig.call(rig.player.play, 0)
    rig.wait(lambda v: v.tracks_started == 3 and v.status is PlayerStatus.STOPPED)
    assert sequence(rig) == queue


def test_state_survives_a_daemon_restart(tmp_path: Path, tap_env: TapDevice) -> None:
    library = build_library(tmp_path / "music")
    write_song(library.root, LONG)  # long enough to be paused while it plays
    rigs = start_rig(tmp_path, tap_env, library=library, pacing="auto")
    rig = next(rigs)
    short = ogg_songs(rig)
    songs = [short[0], next(s for s in rig.songs("Long Tone") if s.title == "Long Tone"), short[2]]
    rig.call(rig.player.add, songs)
    rig.call(rig.player.set_mode, PlayMode.LOOP_ALL)
    rig.call(rig.player.set_volume, 35)
    rig.call(rig.player.set_mute, True)

    async def play_then_pause() -> None:  # back to back on the daemon's loop, inside the song
        await rig.player.play(1)
        await rig.player.pause()
    rig.call(play_then_pause)
    rig.call(rig.player.seek, 0.05)
    before = rig.player.state()
    rigs.close()  # daemon stops; the player saves on the way out

    rigs = start_rig(tmp_path, tap_env, library=rig.library)
    again = next(rigs)
    try:
        after = again.player.state()
        assert [s.id for s in after.queue] == [s.id for s in before.queue]
        assert after.current_index == before.current_index == 1
        assert after.mode is PlayMode.LOOP_ALL and after.volume == 35 and after.muted
        assert after.position_seconds == pytest.approx(0.05)
        assert after.status is PlayerStatus.PAUSED
    finally:
        rigs.close()
