"""The engine as a process of its own, driven through the supervisor and the client: it
starts, says hello, plays a track the codec plugin decodes inside it onto the file tap, and
survives whatever a client sends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mfx.audio import SampleFormat
from mfx.engine.api import (
    PROTOCOL_VERSION,
    EngineRestarted,
    PlaybackIdle,
    PlaybackState,
    TrackRequest,
    TrackStarted,
)
from mfx.engine.lock import lock_holder
from mfx.engine.paths import EnginePaths
from mfx.engine.supervisor import EngineSupervisor
from tests.audio_env import TapDevice, alsa_tap
from tests.engine_env import (
    CODEC,
    codec_load,
    home,
    next_event,
    tap_sink,
    wav_tone,
    without_silence,
)

__all__ = ["alsa_tap", "home"]

pytestmark = pytest.mark.anyio


async def test_the_supervisor_starts_an_engine_that_plays_onto_the_tap(
        alsa_tap: TapDevice, tmp_path: Path, home: Path) -> None:
    expected = wav_tone(tmp_path / "a.wav", 0.5)
    supervisor = EngineSupervisor(home, idle_exit=30)
    events = supervisor.client.events()
    async with supervisor:
        engine = supervisor.client
        restarted = await next_event(events, EngineRestarted)
        assert restarted.reason == "Started"
        info = engine.info
        assert info.protocol == PROTOCOL_VERSION and info.home == str(home)
        assert info.pid == supervisor.process.pid != os.getpid()
        assert info.realtime.startswith(("SCHED_FIFO", "SCHED_OTHER"))
        assert EnginePaths(home).pid.read_text().strip() == str(info.pid)
        assert lock_holder(EnginePaths(home).lock) == info.pid

        assert await engine.load_plugins([codec_load()]) == {CODEC: None}
        assert (await engine.configure_sink(tap_sink())).state == "Open"
        track = await engine.open_track(TrackRequest("t1", str(tmp_path / "a.wav"), CODEC, tag={"id": 7}))
        assert track.frames == len(expected)
        await engine.play("t1")
        assert (await next_event(events, TrackStarted)).tag == {"id": 7}
        assert (await next_event(events, PlaybackIdle)).error is None
        assert (await engine.playback()).state is PlaybackState.IDLE
        await supervisor.stop(keep_running=False)
    assert supervisor.process is None  # it exited, and was waited for
    assert lock_holder(EnginePaths(home).lock) is None
    played = without_silence(alsa_tap.read(SampleFormat.S16_LE, 2))
    assert played.shape == expected.shape and (played == expected).all()
