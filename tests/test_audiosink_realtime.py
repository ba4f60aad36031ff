"""The AudioSink controller on a device that runs in real time (a private PulseAudio null
sink), through a real daemon: a starved writer is an xrun in the object's status and the
stream recovers; losing the sound server is ``Ready=False``/``DeviceLost`` and getting it
back is ``Ready`` again with frames flowing. (A busy control plane against the audio engine
process: tests/test_audio_engine_under_load.py.)

The daemon runs its audio engine in process here, so the test can starve the writer of one
sink (``SinkEngine.stall_for``): the fault is injected behind the sink's own interface.
Waits follow the store's watch or the sink's own counters; the timeouts only stop a broken
build from hanging.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mfx.api.objects import Obj
from mfx.audio import SinkEngine, float_to_pcm
from mfx.engine.api import EngineMode
from mfx.engine.core import Engine
from mfx.engine.sink_registry import SinkRegistry
from mfx.errors import AudioError
from tests.audio_env import PrivatePulse, pulse, tone
from tests.daemon_harness import ThreadDaemon
from tests.test_audiosink_controller import WAIT, apply, has, serving, sink_manifest, wait_sink

__all__ = ["pulse"]  # the fixture, imported for pytest

pytestmark = pytest.mark.integration
RATE = 48000


class Player:
    """What the engine's player does with a sink: keep its ring fed with a tone, taking the
    ring again whenever the sink reopens."""

    def __init__(self, sink: SinkEngine) -> None:
        self.sink = sink
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-player", daemon=True)

    def _run(self) -> None:
        block = tone(440, 0.05, rate=RATE, amplitude=0.3)
        while not self._stop.is_set():
            output = self.sink
            try:
                ring = output.ring
            except AudioError:  # being reopened with new parameters
                continue
            self.written += ring.write(float_to_pcm(block, output.params.format), timeout=0.1)

    def __enter__(self) -> Player:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def flowing(engine: SinkEngine, seconds: float = 0.2) -> None:
    """Wait until the device has taken ``seconds`` more audio than now."""
    start = engine.status().frames_written
    assert engine.wait_until(lambda s: s.frames_written >= start + int(seconds * RATE), timeout=WAIT), \
        f"frames stopped flowing: {engine.status()}"


def xruns_at_least(n: int) -> Callable[[Obj | None], bool]:
    return lambda obj: obj is not None and int(obj.get("status", {}).get("xruns", 0)) >= n


@pytest.fixture
def daemon(mfx_home: Path, pulse: PrivatePulse) -> Iterator[tuple[ThreadDaemon, SinkRegistry]]:
    with serving(mfx_home, audio_engine=EngineMode.IN_PROCESS) as pair:
        yield pair


def start_speakers(running: ThreadDaemon, sinks: SinkRegistry, tmp_path: Path, periods: int = 4) -> SinkEngine:
    apply(running, tmp_path, sink_manifest("speakers", device="default", rate=RATE, periodFrames=1024,
                                           bufferPeriods=periods))
    wait_sink(running, "speakers", has("Ready", "True"))
    assert sinks.get("speakers") is not None
    assert running.context is not None and isinstance(running.context.audio_engine, Engine)
    return running.context.audio_engine.sink_engine("speakers")


def test_a_starved_writer_is_an_xrun_in_status_and_the_stream_recovers(
        daemon: tuple[ThreadDaemon, SinkRegistry], tmp_path: Path) -> None:
    running, sinks = daemon
    engine = start_speakers(running, sinks, tmp_path)
    with Player(engine):
        flowing(engine)
        assert engine.status().xruns == 0
        engine.stall_for(0.5)
        obj = wait_sink(running, "speakers", xruns_at_least(1))
        assert obj is not None
        flowing(engine)
        assert engine.status().state.value == "Open"
    obj = wait_sink(running, "speakers", has("Ready", "True"))
    assert obj is not None and obj["status"]["xruns"] >= 1
    assert running.context is not None
    xruns = running.context.metrics.registry.get_sample_value("mfx_audio_sink_xruns_total", {"sink": "speakers"})
    assert xruns is not None and xruns >= 1


def test_losing_the_sound_server_is_device_lost_and_its_return_is_ready(
        daemon: tuple[ThreadDaemon, SinkRegistry], pulse: PrivatePulse, tmp_path: Path) -> None:
    running, sinks = daemon
    engine = start_speakers(running, sinks, tmp_path)
    with Player(engine):
        flowing(engine)
        pulse.kill()
        lost = wait_sink(running, "speakers", has("Ready", "False", "DeviceLost"))
        assert lost is not None
        assert [c for c in lost["status"]["conditions"] if c["type"] == "DeviceOpen"][0]["status"] == "False"
        assert running.context is not None
        ready = running.context.metrics.registry.get_sample_value("mfx_audio_sink_ready", {"sink": "speakers"})
        assert ready == 0

        pulse.start()
        back = wait_sink(running, "speakers", has("Ready", "True"))
        assert back is not None
        flowing(engine, 0.5)
        assert engine.status().reopens >= 1
        assert sinks.default() is not None and sinks.default().name == "speakers"  # type: ignore[union-attr]
