"""A killed engine is replaced by the supervisor and brought back to where it was: the sink,
the codec, and the track reopened at the frame it had reached, paused as it was.

The tap is unpaced, so "mid-track" is made deterministic by pausing: the paused engine holds
its frame. The restarted engine gets a tap file of its own (the supervisor's ``env`` for new
engines), since a tap is truncated when it is opened again; each file is then read whole."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from mfx.audio import SampleFormat
from mfx.audio.formats import pcm_from_bytes
from mfx.engine.api import EngineRestarted, PlaybackIdle, PlaybackState, TrackRequest, TrackStarted
from mfx.engine.lock import lock_holder
from mfx.engine.paths import EnginePaths
from mfx.engine.supervisor import EngineSupervisor
from tests.audio_env import TapDevice, alsa_tap
from tests.engine_env import (
    CODEC,
    RATE,
    codec_load,
    frame_index,
    home,
    next_event,
    tap_sink,
    without_silence,
    write_indexed,
)

__all__ = ["alsa_tap", "home"]

pytestmark = pytest.mark.anyio

TRACK_FRAMES = 60 * RATE
START = 30 * RATE  # the track is opened half-way in
FADE_FRAMES = round(0.005 * RATE)  # the fade-in of a resume: scaled, so not read back exactly


def tap_frames(path: Path) -> np.ndarray:
    return without_silence(pcm_from_bytes(path.read_bytes(), SampleFormat.S16_LE, 2))


async def test_a_killed_engine_comes_back_paused_at_the_frame_it_had_reached(
        alsa_tap: TapDevice, tmp_path: Path, home: Path) -> None:
    write_indexed(tmp_path / "long.wav", TRACK_FRAMES)
    supervisor = EngineSupervisor(home, idle_exit=30)
    events = supervisor.client.events()
    async with supervisor:
        engine = supervisor.client
        await engine.load_plugins([codec_load()])
        await engine.configure_sink(tap_sink())
        await engine.open_track(TrackRequest("t1", str(tmp_path / "long.wav"), CODEC, start_frame=START,
                                             tag={"song": "long"}))
        await engine.play("t1")
        await next_event(events, TrackStarted)
        held = await engine.pause()
        # Mid-track: opened half-way in, and how far past that it got before the pause cut
        # in is the machine's speed (the report says; nothing of it may have played yet).
        assert held.state is PlaybackState.PAUSED and START <= held.frame < TRACK_FRAMES
        first_pid = engine.info.pid

        second_tap = tmp_path / "tap-after-restart.raw"
        supervisor.env["ALSA_TAP_FILE"] = str(second_tap)
        os.kill(first_pid, signal.SIGKILL)
        restarted = await next_event(events, EngineRestarted)
        assert restarted.reason == "Crashed" and supervisor.restarts == 1
        assert engine.info.pid == restarted.info.pid != first_pid
        assert lock_holder(EnginePaths(home).lock) == engine.info.pid

        back = await engine.playback()
        assert (back.state, back.label, back.tag, back.frame) == (PlaybackState.PAUSED, "t1", {"song": "long"},
                                                                  held.frame)
        assert (await engine.sink_report("speakers")).state == "Open"
        await engine.resume()
        assert (await next_event(events, PlaybackIdle)).error is None
        await supervisor.stop(keep_running=False)

    # The first engine played the track from where it was opened (until it paused; the tap
    # writes a device buffer late, so the file may end before the pause) ...
    before = frame_index(tap_frames(alsa_tap.file))
    assert (before[:-FADE_FRAMES] == START + np.arange(max(0, len(before) - FADE_FRAMES))).all()
    # ... the second from where the first had got to, to the end, every frame once.
    after = frame_index(tap_frames(second_tap))
    exact = after[2 * FADE_FRAMES:]
    assert (np.diff(exact) == 1).all() and exact[-1] == TRACK_FRAMES - 1
    resumed_at = exact[0] - 2 * FADE_FRAMES  # the frame the restarted engine began with
    assert resumed_at == held.frame and len(after) == TRACK_FRAMES - held.frame


async def test_a_hung_engine_is_killed_and_replaced(alsa_tap: TapDevice, tmp_path: Path, home: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from mfx.engine import supervisor as supervision

    monkeypatch.setattr(supervision, "WATCH_SECONDS", 0.05)
    monkeypatch.setattr(supervision, "WATCH_TIMEOUT_SECONDS", 0.5)
    write_indexed(tmp_path / "long.wav", 10 * RATE)
    supervisor = EngineSupervisor(home, idle_exit=30)
    events = supervisor.client.events()
    async with supervisor:
        engine = supervisor.client
        await engine.load_plugins([codec_load()])
        await engine.configure_sink(tap_sink())
        await engine.open_track(TrackRequest("t1", str(tmp_path / "long.wav"), CODEC, start_frame=RATE))
        await engine.open_track(TrackRequest("t2", str(tmp_path / "long.wav"), CODEC, tag={"next": True}))
        await engine.play("t1", paused=True)
        await engine.enqueue("t2")
        hung = engine.info.pid
        os.kill(hung, signal.SIGSTOP)  # alive, its socket open, answering nothing
        restarted = await next_event(events, EngineRestarted, lambda e: e.reason != "Started")
        assert restarted.reason == "Crashed" and restarted.info.pid != hung
        assert lock_holder(EnginePaths(home).lock) == restarted.info.pid
        back = await engine.playback()
        assert (back.state, back.label, back.frame, back.queued) == (PlaybackState.PAUSED, "t1", RATE, ("t2",))
        await engine.resume()
        started = await next_event(events, TrackStarted, lambda e: e.label == "t2")  # the look-ahead
        assert started.tag == {"next": True}
        await supervisor.stop(keep_running=False)
