"""Playback through the audio engine process, read back from the paced file tap to the sample.

The songs are indexed tracks (tests/indexed_tracks.py): every frame that lands in the tap
says which track and which frame it is, so a gap, a repeat, a seek or a hand-over shows
exactly. The tap is paced by the engine (``pacing: auto``), as a sound card would be.
Waits are on the player's state changes, or on the engine's reported position.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from mfx.api.music import PlayerStatus, Song
from mfx.engine.api import PlaybackReport, PlaybackState
from tests.audio_env import TapDevice
from tests.indexed_tracks import RATE, decode, read_tap, write_indexed_song
from tests.music_fixtures import LibraryLayout
from tests.player_env import PlayerRig, start_rig, tap_env

__all__ = ["tap_env"]

NO_FADE = "fadeSeconds: 0\n"


def indexed_library(root: Path, seconds: dict[str, float]) -> LibraryLayout:
    layout = LibraryLayout(root=root)
    for number, (title, length) in enumerate(seconds.items(), start=1):
        write_indexed_song(root, number, length, title)
    return layout


@pytest.fixture
def rig(tmp_path: Path, tap_env: TapDevice) -> Iterator[PlayerRig]:
    library = indexed_library(tmp_path / "music", {"Alpha": 1.5, "Bravo": 1.0, "Long": 6.0})
    yield from start_rig(tmp_path, tap_env, library=library, pacing="auto", player_yaml=NO_FADE)


def song(rig: PlayerRig, title: str) -> Song:
    found = [s for s in rig.songs(title) if s.title == title]
    assert found, f"{title} is not in the library"
    return found[0]


def engine_report_when(rig: PlayerRig, predicate: Callable[[PlaybackReport], bool]) -> PlaybackReport:
    """The engine's first playback report for which ``predicate`` holds (asked every 20 ms:
    a steadily playing engine reports its position when asked, not by events)."""
    async def waiter() -> PlaybackReport:
        with anyio.fail_after(60):
            while True:
                report = await rig.engine.playback()
                if predicate(report):
                    return report
                await anyio.sleep(0.02)
    return rig.daemon.call(waiter)  # type: ignore[no-any-return]


def wait_position(rig: PlayerRig, at_least: float) -> float:
    """Wait until the engine reports the current song past ``at_least`` seconds."""
    report = engine_report_when(rig, lambda r: bool(r.rate) and r.frame >= at_least * r.rate)
    return report.frame / report.rate


def runs_in_tap(rig: PlayerRig) -> list[tuple[int, int, int]]:
    rig.close_sink()
    return decode(read_tap(rig.tap.file)).runs()


def test_gapless_hand_over_is_sample_exact(rig: PlayerRig) -> None:
    rig.call(rig.player.add, [song(rig, "Alpha"), song(rig, "Bravo")])
    rig.call(rig.player.play, 0)
    rig.wait(lambda v: v.tracks_started == 2 and v.status is PlayerStatus.STOPPED)
    # A's last sample is followed at once by B's first: two runs, back to back, whole.
    assert runs_in_tap(rig) == [(1, 0, round(1.5 * RATE)), (2, 0, round(1.0 * RATE))]


def test_pause_and_resume_continue_at_the_next_sample(rig: PlayerRig) -> None:
    rig.call(rig.player.add, [song(rig, "Long")])
    rig.call(rig.player.play, 0)
    wait_position(rig, 1.0)
    rig.call(rig.player.pause)
    paused = rig.player.position()
    assert rig.player.state().status is PlayerStatus.PAUSED
    report = rig.daemon.call(rig.engine.playback)
    assert report.state is PlaybackState.PAUSED and report.frame == round(paused * RATE)
    rig.call(rig.player.resume)
    rig.wait(lambda v: v.status is PlayerStatus.STOPPED and v.tracks_started == 1)
    data = read_tap(rig.tap.file)
    runs = runs_in_tap(rig)
    # One unbroken run: the pause neither lost nor repeated a sample.
    assert runs == [(3, 0, round(6.0 * RATE))]
    # The paced tap wrote nothing while paused: no silence beyond one buffer at each end.
    assert (decode(data).track == 0).sum() <= 4 * 4096


def test_seek_lands_on_the_requested_sample(rig: PlayerRig) -> None:
    rig.call(rig.player.add, [song(rig, "Long")])
    rig.call(rig.player.play, 0)
    wait_position(rig, 0.5)
    rig.call(rig.player.pause)
    rig.call(rig.player.seek, 4.5)
    assert rig.daemon.call(rig.engine.playback).frame == round(4.5 * RATE)
    rig.call(rig.player.resume)
    rig.wait(lambda v: v.status is PlayerStatus.STOPPED and v.tracks_started == 1)
    runs = runs_in_tap(rig)
    assert len(runs) == 2
    first, second = runs
    assert first[:2] == (3, 0) and first[2] >= round(0.5 * RATE)
    assert second == (3, round(4.5 * RATE), round(6.0 * RATE) - round(4.5 * RATE))


def test_a_killed_engine_resumes_the_song_where_it_was(rig: PlayerRig) -> None:
    rig.call(rig.player.add, [song(rig, "Long")])
    rig.call(rig.player.play, 0)
    reached = wait_position(rig, 2.0)
    old_pid = rig.engine.info.pid
    os.kill(old_pid, signal.SIGKILL)
    view = rig.wait(lambda v: v.engine_restarts == 1)
    assert view.status is PlayerStatus.PLAYING
    assert rig.engine.info.pid != old_pid
    rig.wait(lambda v: v.status is PlayerStatus.STOPPED and v.tracks_started >= 1)
    runs = runs_in_tap(rig)
    # The new engine's tap (a new open truncates the file) starts where the old one was.
    assert runs and runs[0][0] == 3
    resumed_at = runs[0][1] / RATE
    assert abs(resumed_at - reached) < 1.0, (resumed_at, reached)
    assert runs[-1][1] + runs[-1][2] == round(6.0 * RATE)  # and plays to the end


def test_a_track_takes_its_duration_on_the_paced_null_device(tmp_path: Path, tap_env: TapDevice) -> None:
    library = indexed_library(tmp_path / "music", {"Ten": 10.0})
    rigs = start_rig(tmp_path, tap_env, library=library, pacing="auto", player_yaml=NO_FADE, device="null")
    rig = next(rigs)
    try:
        rig.call(rig.player.add, [song(rig, "Ten")])
        rig.call(rig.player.play, 0)
        first = engine_report_when(rig, lambda r: r.state is PlaybackState.PLAYING and r.frame > 0)
        last = engine_report_when(rig, lambda r: r.frame >= 9.5 * RATE)
        audio = (last.frame - first.frame) / RATE
        elapsed = last.at - first.at  # on the engine's own monotonic clock
        # Unpaced, the null device takes 10 s of audio in milliseconds.
        assert elapsed / audio == pytest.approx(1.0, abs=0.03)
        assert rig.sink_report().paced
    finally:
        rigs.close()


def test_a_song_played_after_a_pause_starts_at_its_first_frame(rig: PlayerRig) -> None:
    rig.call(rig.player.add, [song(rig, "Long"), song(rig, "Alpha")])
    rig.call(rig.player.play, 0)
    wait_position(rig, 1.0)
    rig.call(rig.player.pause)
    rig.call(rig.player.play, 1)  # another song while paused: not where the paused one was
    assert engine_report_when(rig, lambda r: r.tag.get("title") == "Alpha" and r.frame > 0).frame < RATE
    rig.wait(lambda v: v.status is PlayerStatus.STOPPED and v.tracks_started == 2)
    runs = runs_in_tap(rig)
    assert runs[-1] == (1, 0, round(1.5 * RATE)), runs  # Alpha, whole, from its first sample
