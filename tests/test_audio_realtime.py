"""The sink on a device that runs in real time (a private PulseAudio null sink): underruns,
losing the sound server and getting it back, reconfiguration, and limits of the device.

Every wait is on a condition (the state callback, or ``SinkEngine.wait_until`` on the
counters); the timeouts only stop a broken build from hanging.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from mfx.audio import DeviceParams, SampleFormat, SinkEngine, SinkState, SinkStatus, float_to_pcm
from mfx.errors import AudioError, UnsupportedFormatError
from observability.metrics import Metrics
from tests.audio_env import PrivatePulse, pulse, tone

__all__ = ["pulse"]  # the fixture, imported for pytest

pytestmark = pytest.mark.integration
WAIT = 30.0  # seconds; a safety net, never reached when things work


class StateLog:
    """Collects state callbacks and lets a test wait for a given state."""

    def __init__(self) -> None:
        self.seen: list[SinkStatus] = []
        self._changed = threading.Condition()

    def __call__(self, status: SinkStatus) -> None:
        with self._changed:
            self.seen.append(status)
            self._changed.notify_all()

    def wait_for(self, state: SinkState, after: int = 0) -> SinkStatus:
        with self._changed:
            ok = self._changed.wait_for(
                lambda: any(s.state is state for s in self.seen[after:]), timeout=WAIT)
            assert ok, f"state {state} never reported; saw {[s.state for s in self.seen]}"
            return next(s for s in self.seen[after:] if s.state is state)


class Producer:
    """Keeps the sink's ring full of a tone, in the sink's current format."""

    def __init__(self, engine: SinkEngine) -> None:
        self.engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        block = tone(440, 0.1, rate=48000, amplitude=0.3)
        while not self._stop.is_set():
            try:
                ring = self.engine.ring
            except AudioError:  # between a close and a reopen
                continue
            try:
                ring.write(float_to_pcm(block, self.engine.params.format), timeout=0.1)
            except ValueError:  # reconfigured between reading the ring and its format: read both again
                continue

    def __enter__(self) -> Producer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def engine_and_log(pulse: PrivatePulse) -> Iterator[tuple[SinkEngine, StateLog, Metrics]]:
    log = StateLog()
    metrics = Metrics()
    engine = SinkEngine("speakers", DeviceParams(rate=48000, period_frames=1024, periods=4),
                        metrics=metrics, on_state=log, reopen_initial=0.02, reopen_max=0.5)
    try:
        yield engine, log, metrics
    finally:
        engine.close(drain=False)


def advanced(engine: SinkEngine, frames: int) -> SinkStatus:
    start = engine.status().frames_written
    status = engine.wait_until(lambda s: s.frames_written >= start + frames, timeout=WAIT)
    assert status is not None, f"no progress: {engine.status()}"
    return status


def test_writer_stall_is_an_xrun_that_recovers(engine_and_log: tuple[SinkEngine, StateLog, Metrics]) -> None:
    engine, log, metrics = engine_and_log
    engine.start()
    with Producer(engine):
        advanced(engine, 8 * 1024)
        engine.stall_for(0.5)  # longer than the 85 ms device buffer
        status = engine.wait_until(lambda s: s.xruns >= 1, timeout=WAIT)
        assert status is not None, f"no xrun after a stall: {engine.status()}"
        after = advanced(engine, 8 * 1024)  # playback goes on
    assert after.state is SinkState.OPEN
    assert after.write_errors.get("EPIPE") == after.xruns >= 1
    assert metrics.registry.get_sample_value("mfx_audio_sink_xruns_total", {"sink": "speakers"}) == after.xruns
    assert [s.state for s in log.seen] == [SinkState.OPEN]  # an xrun is not a state change


def test_killed_server_is_device_lost_and_a_restart_brings_it_back(
        pulse: PrivatePulse, engine_and_log: tuple[SinkEngine, StateLog, Metrics]) -> None:
    engine, log, metrics = engine_and_log
    engine.start()
    with Producer(engine):
        advanced(engine, 4 * 1024)
        mark = len(log.seen)
        pulse.kill()
        lost = log.wait_for(SinkState.DEVICE_LOST, after=mark)
        assert lost.reason == "DeviceLost" and "'default'" in lost.message
        assert metrics.registry.get_sample_value("mfx_audio_sink_ready", {"sink": "speakers"}) == 0.0

        mark = len(log.seen)
        pulse.start()
        back = log.wait_for(SinkState.OPEN, after=mark)
        assert back.reason == "Reopened"
        advanced(engine, 8 * 1024)  # frames flow again after the restart
    status = engine.status()
    assert status.state is SinkState.OPEN and status.reopens >= 1
    assert status.write_errors.get("EIO", 0) >= 1
    assert metrics.registry.get_sample_value("mfx_audio_sink_reopens_total", {"sink": "speakers"}) == status.reopens
    assert metrics.registry.get_sample_value("mfx_audio_sink_ready", {"sink": "speakers"}) == 1.0


def test_reconfigure_reopens_with_new_parameters(engine_and_log: tuple[SinkEngine, StateLog, Metrics]) -> None:
    engine, log, _ = engine_and_log
    engine.start()
    with Producer(engine):
        advanced(engine, 4 * 1024)
        engine.reconfigure(DeviceParams(rate=44100, format=SampleFormat.FLOAT_LE, period_frames=512, periods=4))
        status = advanced(engine, 8 * 512)
    assert status.actual is not None
    assert (status.actual.rate, status.actual.format, status.actual.period_frames) == (44100, SampleFormat.FLOAT_LE, 512)
    assert engine.ring.dtype == np.dtype("<f4")


def test_rate_beyond_the_server_limit_says_asked_and_offered(pulse: PrivatePulse) -> None:
    engine = SinkEngine("too-fast", DeviceParams(rate=1_000_000))
    with pytest.raises(UnsupportedFormatError) as raised:
        engine.open()
    message = str(raised.value)
    assert "'default'" in message and "asked rate=1000000" in message and "offered rate=" in message
    assert engine.status().state is SinkState.ERROR
