"""An engine outlives its daemon: a new supervisor adopts the running engine (no second
engine process), sees what it plays, and can restore it after a crash from what it adopted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from mfx.engine.api import EngineRestarted, PlaybackState, TrackRequest, TrackStarted
from mfx.engine.lock import lock_holder
from mfx.engine.paths import EnginePaths
from mfx.engine.supervisor import EngineSupervisor
from tests.audio_env import REPO, TapDevice, alsa_tap
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

__all__ = ["alsa_tap", "home"]

pytestmark = pytest.mark.anyio


async def test_a_new_supervisor_adopts_the_running_engine(alsa_tap: TapDevice, tmp_path: Path,
                                                          home: Path) -> None:
    write_indexed(tmp_path / "long.wav", 60 * RATE)
    first = EngineSupervisor(home, idle_exit=30)
    events = first.client.events()
    async with first:
        await first.client.load_plugins([codec_load()])
        await first.client.configure_sink(tap_sink())
        await first.client.open_track(TrackRequest("t1", str(tmp_path / "long.wav"), CODEC, tag={"song": 1}))
        await first.client.play("t1")
        await next_event(events, TrackStarted)
        held = await first.client.pause()
        pid = first.client.info.pid
        await first.stop(keep_running=True)
    assert lock_holder(EnginePaths(home).lock) == pid  # the daemon went, the engine stayed

    second = EngineSupervisor(home, idle_exit=30)
    events = second.client.events()
    async with second:
        adopted = await next_event(events, EngineRestarted)
        assert adopted.reason == "Adopted" and adopted.info.pid == pid
        assert second.process is None and second.client.info.pid == pid
        assert lock_holder(EnginePaths(home).lock) == pid
        report = await second.client.playback()
        assert (report.state, report.label, report.tag, report.frame) == (
            PlaybackState.PAUSED, "t1", {"song": 1}, held.frame)
        assert [s.name for s in await second.client.sink_reports()] == ["speakers"]

        # What it adopted is enough to bring a crashed engine back.
        os.kill(pid, signal.SIGKILL)
        restarted = await next_event(events, EngineRestarted)
        assert restarted.reason == "Crashed" and restarted.info.pid != pid and second.restarts == 1
        back = await second.client.playback()
        assert (back.state, back.label, back.tag, back.frame) == (PlaybackState.PAUSED, "t1", {"song": 1},
                                                                  held.frame)
        await second.stop(keep_running=False)
    assert lock_holder(EnginePaths(home).lock) is None


DAEMON = """
import sys, anyio
from pathlib import Path
from mfx.engine.api import TrackRequest
from mfx.engine.supervisor import EngineSupervisor
from tests.engine_env import CODEC, codec_load, tap_sink

async def main(home, track):
    async with EngineSupervisor(Path(home), idle_exit=30) as supervisor:
        engine = supervisor.client
        await engine.load_plugins([codec_load()])
        await engine.configure_sink(tap_sink())
        await engine.open_track(TrackRequest("t1", track, CODEC, tag={"by": "daemon"}))
        await engine.play("t1", paused=True)
        print(engine.info.pid, flush=True)
        await anyio.sleep_forever()

anyio.run(main, sys.argv[1], sys.argv[2])
"""


@pytest.mark.parametrize("death", [signal.SIGKILL, signal.SIGTERM])
async def test_the_engine_keeps_its_track_when_the_daemon_dies(alsa_tap: TapDevice, tmp_path: Path,
                                                               home: Path, death: signal.Signals) -> None:
    write_indexed(tmp_path / "long.wav", 10 * RATE)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    daemon = await anyio.open_process([sys.executable, "-c", DAEMON, str(home), str(tmp_path / "long.wav")],
                                      env=env, stdout=subprocess.PIPE, stderr=None, cwd=REPO)
    async with daemon:
        try:
            assert daemon.stdout is not None
            with anyio.fail_after(WAIT):
                engine_pid = int(await BufferedByteReceiveStream(daemon.stdout).receive_until(b"\n", 64))
        finally:
            daemon.send_signal(death)
            with anyio.fail_after(WAIT):
                await daemon.wait()
    assert daemon.returncode == -death
    assert lock_holder(EnginePaths(home).lock) == engine_pid

    async with EngineSupervisor(home) as supervisor:
        assert supervisor.client.info.pid == engine_pid
        report = await supervisor.client.playback()
        assert (report.state, report.label, report.tag) == (PlaybackState.PAUSED, "t1", {"by": "daemon"})
        await supervisor.stop(keep_running=False)
