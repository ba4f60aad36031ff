"""What reaches the engine's socket cannot take it down: unreadable lines, unknown methods
and fields of the wrong type get an error reply naming the problem, and errors come back to
the client as the mfx error classes they were. One engine per home: a second one refuses,
naming the pid that holds the home. An engine nobody drives and that plays nothing exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import orjson
import pytest
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from mfx.audio import DeviceParams
from mfx.engine import sockets
from mfx.engine.api import SinkConfig, TrackRequest
from mfx.engine.lock import lock_holder
from mfx.engine.paths import EnginePaths
from mfx.engine.supervisor import EngineSupervisor
from mfx.errors import BadRequestError, DecodeError, DeviceNotFoundError, NotFoundError
from tests.audio_env import REPO, TapDevice, alsa_tap
from tests.engine_env import CODEC, WAIT, codec_load, home, tap_sink

__all__ = ["alsa_tap", "home"]

pytestmark = pytest.mark.anyio


@pytest.fixture
async def supervisor(alsa_tap: TapDevice, home: Path) -> AsyncIterator[EngineSupervisor]:
    async with EngineSupervisor(home, idle_exit=30) as supervisor:
        yield supervisor
        await supervisor.stop(keep_running=False)


class RawClient:
    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.reader = BufferedByteReceiveStream(stream)

    async def ask(self, line: bytes) -> dict[str, object]:
        """Send one line; the next reply (pushed events are not asked for here)."""
        await self.stream.send(line + b"\n")
        with anyio.fail_after(WAIT):
            return orjson.loads(await self.reader.receive_until(b"\n", 1 << 22))


async def test_bad_requests_get_a_clear_error_and_the_engine_goes_on(supervisor: EngineSupervisor) -> None:
    stream = await SocketStream.from_socket(sockets.connect(supervisor.paths.socket))
    async with stream:
        raw = RawClient(stream)
        cases = {
            b"this is not json": "not JSON",
            b"[1, 2]": "expected a JSON object per line",
            b'{"id": 1, "method": "levitate"}': "unknown method 'levitate'",
            b'{"id": 2}': "method: expected a string",
            b'{"id": 3, "method": "seek", "params": {"frame": "late"}}': "params.frame: expected an integer",
            b'{"id": 4, "method": "seek", "params": {"frame": true}}': "params.frame: expected an integer",
            b'{"id": 5, "method": "play", "params": {}}': "params.label: missing",
            b'{"id": 6, "method": "play", "params": {"label": "x", "volume": 2}}': "unknown field(s) volume",
            b'{"id": 7, "method": "configure_sink", "params": {"config": {"name": "s", "params": '
            b'{"rate": "fast"}}}}': "params.config.params.rate: expected an integer",
            b'{"id": 8, "method": "set_volume", "params": {"volume": -1, "muted": false}}': "negative",
        }
        for line, message in cases.items():
            reply = await raw.ask(line)
            error = reply["error"]
            assert isinstance(error, dict) and error["reason"] == "BadRequest", reply
            assert message in str(error["message"]), reply
        hello = await raw.ask(b'{"id": 9, "method": "hello"}')
        assert hello["id"] == 9 and hello["result"]["pid"] == supervisor.client.info.pid  # type: ignore[index]
    assert supervisor.restarts == 0 and supervisor.client.attached


async def test_errors_come_back_as_their_mfx_classes(supervisor: EngineSupervisor, tmp_path: Path) -> None:
    engine = supervisor.client
    with pytest.raises(BadRequestError, match="nothing to seek in"):
        await engine.seek(10)
    with pytest.raises(NotFoundError, match="no Codec plugin"):
        await engine.open_track(TrackRequest("t1", str(tmp_path / "none.wav"), CODEC))
    await engine.load_plugins([codec_load()])
    with pytest.raises(DecodeError):
        await engine.open_track(TrackRequest("t1", str(tmp_path / "none.wav"), CODEC))
    with pytest.raises(DeviceNotFoundError):
        await engine.configure_sink(SinkConfig("nowhere", DeviceParams(device="no-such-pcm")))
    assert await engine.sink_reports() == []


async def test_a_second_engine_on_a_home_refuses_and_names_the_holder(supervisor: EngineSupervisor,
                                                                      home: Path) -> None:
    holder = supervisor.client.info.pid
    second = await anyio.run_process([sys.executable, "-m", "mfx.engine", "--home", str(home)], check=False,
                                     env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert second.returncode == 3
    assert f"pid {holder}" in second.stderr.decode() and "already serves" in second.stderr.decode()
    assert lock_holder(EnginePaths(home).lock) == holder
    assert (await supervisor.client.playback()).label is None  # the first one still answers


def test_an_engine_nobody_drives_exits_when_idle(alsa_tap: TapDevice, home: Path) -> None:
    engine = subprocess.Popen([sys.executable, "-m", "mfx.engine", "--home", str(home), "--idle-exit", "0.1"],
                              env=dict(os.environ, PYTHONPATH=str(REPO)), stderr=subprocess.PIPE)
    _, stderr = engine.communicate(timeout=WAIT)
    assert engine.returncode == 0, stderr.decode()
    assert "no controller connected" in stderr.decode()
    assert not EnginePaths(home).socket.exists() and not EnginePaths(home).pid.exists()


async def test_sigterm_closes_the_sinks_and_exits(alsa_tap: TapDevice, home: Path) -> None:
    async with EngineSupervisor(home) as supervisor:
        assert (await supervisor.client.configure_sink(tap_sink())).state == "Open"
        await supervisor.stop(keep_running=True)
    process = supervisor.process
    assert process is not None and process.poll() is None  # left running
    process.send_signal(signal.SIGTERM)
    assert await anyio.to_thread.run_sync(lambda: process.wait(WAIT)) == 0
    log = EnginePaths(home).log.read_text()
    assert "SIGTERM: closing the sinks and exiting" in log
    assert lock_holder(EnginePaths(home).lock) is None
