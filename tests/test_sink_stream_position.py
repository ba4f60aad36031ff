"""The sink reports, per stream, how much of it has played and its state; a reconfigure
(which replaces the ring buffer) does not reset that count.

The device is the file tap behind a ``Gate``: the test decides how many periods play, and
waits on the sink's own counters (``SinkEngine.wait_until``), never on sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from mfx.audio import DeviceParams, FrameRingBuffer, SinkEngine
from mfx.audio.stream_clock import StreamState
from tests.audio_env import Gate, GatedDevice, TapDevice, alsa_tap

__all__ = ["alsa_tap"]

RATE = 48000
PERIOD = 1024
WAIT = 30.0  # seconds; a safety net, never reached when things work


@pytest.fixture
def gated(alsa_tap: TapDevice) -> Iterator[tuple[SinkEngine, Gate]]:
    gate = Gate()
    engine = SinkEngine("gated", DeviceParams(rate=RATE, period_frames=PERIOD, periods=4), ring_frames=RATE,
                        open_device=GatedDevice.opener(gate))
    engine.start()
    try:
        yield engine, gate
    finally:
        engine.close(drain=False)


def silence(engine: SinkEngine, frames: int) -> np.ndarray:
    return np.zeros((frames, engine.ring.channels), dtype=engine.ring.dtype)


def play(engine: SinkEngine, gate: Gate, periods: int) -> None:
    """Let ``periods`` more device writes through and wait until they happened."""
    target = engine.status().frames_written + periods * engine.params.period_frames
    gate.allow(periods)
    assert engine.wait_until(lambda s: s.frames_written >= target, timeout=WAIT) is not None


def test_a_stream_reports_what_played_and_what_waits(gated: tuple[SinkEngine, Gate]) -> None:
    engine, gate = gated
    stream = engine.open_stream()
    assert engine.stream_position(stream).state is StreamState.STARTING
    assert engine.ring.write(silence(engine, 8 * PERIOD), stream=stream) == 8 * PERIOD
    play(engine, gate, 3)
    position = engine.stream_position(stream)
    assert position.state is StreamState.PLAYING
    # The writer takes a period before it writes it: three written, at most one more taken.
    assert 3 * PERIOD <= position.frames_played <= 4 * PERIOD
    assert position.frames_played + position.frames_buffered == 8 * PERIOD
    assert position.seconds_played == pytest.approx(position.frames_played / RATE)

    engine.end_stream(stream)
    play(engine, gate, 5)
    ended = engine.stream_position(stream)
    assert ended.state is StreamState.ENDED
    assert (ended.frames_played, ended.frames_buffered) == (8 * PERIOD, 0)
    assert engine.stream_position(stream + 1000).state is StreamState.UNKNOWN


def test_frames_of_other_streams_and_cut_frames_are_not_counted(gated: tuple[SinkEngine, Gate]) -> None:
    engine, gate = gated
    first, second = engine.open_stream(), engine.open_stream()
    engine.ring.write(silence(engine, 2 * PERIOD), stream=first)
    engine.ring.write(silence(engine, 6 * PERIOD), stream=second)
    play(engine, gate, 3)
    assert engine.stream_position(first).frames_played == 2 * PERIOD
    engine.ring.truncate(0)  # a seek or pause drops what is buffered: never played
    play(engine, gate, 2)  # silence now: the stream stays where it was
    position = engine.stream_position(second)
    assert position.frames_buffered == 0 and position.state is StreamState.IDLE
    assert PERIOD <= position.frames_played <= 2 * PERIOD


def test_a_reconfigure_does_not_reset_a_stream_position(gated: tuple[SinkEngine, Gate]) -> None:
    engine, gate = gated
    stream = engine.open_stream()
    engine.ring.write(silence(engine, 16 * PERIOD), stream=stream)
    play(engine, gate, 6)
    before = engine.stream_position(stream)
    assert before.frames_played >= 6 * PERIOD

    engine.reconfigure(DeviceParams(rate=RATE, period_frames=PERIOD // 2, periods=4))
    after = engine.stream_position(stream)
    # The frames the reconfigure dropped count as passed: the producer goes on after them.
    assert after.frames_played == 16 * PERIOD and after.frames_buffered == 0
    assert after.seconds_played >= before.seconds_played

    engine.ring.write(silence(engine, 4 * PERIOD), stream=stream)
    play(engine, gate, 2)
    later = engine.stream_position(stream)
    assert later.state is StreamState.PLAYING
    assert later.frames_played >= after.frames_played + PERIOD


def test_the_ring_keeps_whose_frames_it_holds_through_a_faded_cut() -> None:
    ring = FrameRingBuffer(64, 1, np.int16)
    ring.write(np.ones((10, 1), dtype=np.int16), stream=1)
    ring.write(np.ones((20, 1), dtype=np.int16), stream=2)
    assert (ring.buffered_of(1), ring.buffered_of(2)) == (10, 20)
    _, owners = ring.read_owned(4)
    assert owners == [(1, 4)]
    ring.truncate(10, lambda head: head // 2)  # keeps the oldest 10: 6 of stream 1, 4 of stream 2
    assert (ring.buffered_of(1), ring.buffered_of(2)) == (6, 4)
    _, owners = ring.read_owned(64)
    assert owners == [(1, 6), (2, 4)]
