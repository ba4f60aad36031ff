"""On a device that plays in real time (a private PulseAudio null sink), a killed engine is
replaced and the track goes on from where it had got to at the moment of death: the last
report extrapolated to the moment the engine was lost, within the second the supervisor
promises (the difference is how long the loss took to notice)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import anyio
import pytest

from mfx.engine.api import (
    EngineRestarted,
    PlaybackChanged,
    PlaybackReport,
    PlaybackState,
    TrackRequest,
    TrackStarted,
)
from mfx.engine.supervisor import EngineSupervisor
from tests.audio_env import PrivatePulse, pulse
from tests.engine_env import (
    CODEC,
    RATE,
    WAIT,
    codec_load,
    home,
    next_event,
    tap_sink,
    write_indexed,
)

__all__ = ["pulse", "home"]

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def test_a_track_playing_in_real_time_resumes_where_the_engine_died(
        pulse: PrivatePulse, tmp_path: Path, home: Path) -> None:
    write_indexed(tmp_path / "long.wav", 120 * RATE)
    supervisor = EngineSupervisor(home, idle_exit=30)
    events = supervisor.client.events()
    async with supervisor:
        engine = supervisor.client
        await engine.load_plugins([codec_load()])
        assert (await engine.configure_sink(tap_sink())).state == "Open"
        await engine.open_track(TrackRequest("t1", str(tmp_path / "long.wav"), CODEC, start_frame=10 * RATE))
        await engine.play("t1")
        await next_event(events, TrackStarted)
        before = await engine.playback()
        assert before.state is PlaybackState.PLAYING

        killed_at = time.monotonic()
        os.kill(engine.info.pid, signal.SIGKILL)
        reached = before.frame_at(killed_at)  # where the track was when the engine died
        # The new engine's first report of playing, and the restart: in either order (the
        # restart is told once the engine answered; its events may still be on the way).
        resumed: PlaybackReport | None = None
        restarted: EngineRestarted | None = None
        with anyio.fail_after(WAIT):
            async for event in events:
                if (isinstance(event, PlaybackChanged) and resumed is None and event.report.at > killed_at
                        and event.report.state is PlaybackState.PLAYING):
                    resumed = event.report
                elif isinstance(event, EngineRestarted) and event.reason != "Started":
                    restarted = event
                if resumed is not None and restarted is not None:
                    break
        assert restarted is not None and restarted.reason == "Crashed"
        assert resumed is not None and resumed.label == "t1"
        assert abs(resumed.frame - reached) <= RATE
        assert (await engine.playback()).state is PlaybackState.PLAYING
        await supervisor.stop(keep_running=False)
