"""Pacing: devices that do not pace themselves (the ALSA ``null`` PCM, the file tap) play in
real time behind a PacedDevice, and an idle sink writes nothing.

Durations are measured on the sink's own monotonic clock (``SinkStatus.playing_since`` and
``SinkStatus.at``) as a ratio to the audio's length; tests wait on the sink's reported state
(``SinkEngine.wait_until``), never on sleeps. The one fixed time here is how long an idle
sink is watched for a write that must not happen.
"""

from __future__ import annotations

import numpy as np
import pytest

from mfx.audio import (
    DeviceParams,
    PacedDevice,
    Pacing,
    Pipeline,
    SampleFormat,
    SinkEngine,
    SinkStatus,
)
from mfx.audio.alsa_config import pcm_chain, pcm_paces_itself
from mfx.audio.paced_device import pacing_needed
from mfx.errors import UnderrunError
from tests.audio_env import PrivatePulse, TapDevice, alsa_tap, pulse, tone
from tests.audio_streams import ArrayStream, producing, to_s16

__all__ = ["alsa_tap", "pulse"]  # the fixtures, imported for pytest

RATE = 48000
WAIT = 60.0  # seconds; a safety net, never reached when things work
IDLE_WATCH = 0.5  # seconds an idle sink is watched: an unpaused writer pads ~23 periods meanwhile


def wait(engine: SinkEngine, predicate: object, timeout: float = WAIT) -> SinkStatus:
    status = engine.wait_until(predicate, timeout=timeout)  # type: ignore[arg-type]
    assert status is not None, f"the sink never got there: {engine.status()}"
    return status


# --- The paced device on its own, against a clock the test moves -----------------------------


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingDevice:
    """Takes everything at once, as the null PCM does."""

    def __init__(self, params: DeviceParams) -> None:
        self.requested = self.actual = params
        self.frames = 0
        self.dropped = self.drained = self.closed = False

    def write(self, frames: np.ndarray) -> int:
        self.frames += len(frames)
        return len(frames)

    def avail(self) -> int:
        return self.actual.buffer_frames

    def drain(self) -> None:
        self.drained = True

    def drop(self) -> None:
        self.dropped = True

    def close(self) -> None:
        self.closed = True


def test_paced_device_plays_at_its_rate_and_underruns_when_left_dry() -> None:
    # 1024-frame periods at 32768 Hz: a period is 1/32 s, exact in binary floating point.
    params = DeviceParams(device="null", rate=32768, period_frames=1024, periods=4)
    clock = FakeClock(100.0)
    inner = CountingDevice(params)
    device = PacedDevice(inner, clock=clock)
    period = np.zeros((1024, 2), dtype="<i2")

    assert device.write(np.zeros((4096, 2), dtype="<i2")) == 4096  # an empty buffer takes a buffer at once
    assert (device.delay(), device.played(), device.avail()) == (4096, 0, 0)
    assert device.playing_since == device.first_played_at == 100.0
    clock.now += 1 / 32  # one period played
    assert (device.delay(), device.played(), device.avail()) == (3072, 1024, 1024)
    assert device.write(period) == 1024  # room for exactly one period: no wait
    assert inner.frames == 5120
    clock.now += 6 / 32  # more than the 4 periods it holds: it ran dry
    assert (device.delay(), device.played()) == (0, 5120)
    with pytest.raises(UnderrunError):
        device.write(period)
    assert inner.frames == 5120  # the period that failed did not reach the device
    assert device.playing_since is None and device.first_played_at == 100.0
    assert device.write(period) == 1024  # a new run starts
    assert (device.delay(), device.played(), device.playing_since) == (1024, 5120, clock.now)
    device.drop()
    assert (device.delay(), device.played(), inner.dropped) == (0, 5120, True)
    device.close()
    assert inner.closed


# --- Which devices are paced ---------------------------------------------------------------------


def test_pacing_is_read_from_the_alsa_configuration(alsa_tap: TapDevice) -> None:
    assert pcm_chain("default") == ["file", "null"]  # the tap, through the alias
    assert pcm_chain("s16only") == ["linear", "null"]
    for name in ("default", "tap", "null", "s16only"):
        assert pcm_paces_itself(name) is False, name
    assert pcm_paces_itself("no-such-pcm") is None
    device = CountingDevice(DeviceParams(device="null"))
    assert pacing_needed(device, Pacing.AUTO) and not pacing_needed(device, Pacing.NONE)
    device.paces_itself = True  # type: ignore[attr-defined]  # a device may say itself
    assert not pacing_needed(device, "auto")


def test_auto_paces_the_tap_and_none_does_not(alsa_tap: TapDevice) -> None:
    for pacing, paced in ((Pacing.AUTO, True), (Pacing.NONE, False), ("auto", True)):
        engine = SinkEngine("tap", DeviceParams(rate=RATE), pacing=pacing)
        assert engine.open().paced is paced and engine.paced is paced
        engine.close(drain=False)
    default = SinkEngine("tap", DeviceParams(rate=RATE))
    assert default.open().paced is False  # the fast path stays the default
    default.close(drain=False)


def test_the_pulseaudio_null_sink_paces_itself_and_is_not_paced_again(pulse: PrivatePulse) -> None:
    assert pcm_chain("default") == ["pulse"]
    engine = SinkEngine("speakers", DeviceParams(rate=RATE), pacing=Pacing.AUTO)
    try:
        assert engine.open().paced is False
    finally:
        engine.close(drain=False)


# --- Real time ------------------------------------------------------------------------------------


def test_a_ten_second_track_takes_ten_seconds_on_the_paced_null_device(alsa_tap: TapDevice) -> None:
    engine = SinkEngine("null", DeviceParams(device="null", rate=RATE), pacing=Pacing.AUTO)
    track = tone(440, 10.0)
    engine.start()
    pipeline = Pipeline(engine, fade_seconds=0)
    pipeline.enqueue(ArrayStream(track, RATE), "ten-seconds")
    with producing(pipeline):
        done = wait(engine, lambda s: s.idles >= 1)  # played out, then idle
    engine.close(drain=False)
    assert done.paced and done.playing_since is not None
    assert done.frames_written == len(track) + done.silence_frames
    assert done.played_frames == done.frames_written and done.device_delay_frames == 0
    ratio = (done.at - done.playing_since) / (done.frames_written / RATE)
    assert 0.99 <= ratio <= 1.01, f"played {done.frames_written / RATE:.3f} s of audio in " \
        f"{done.at - done.playing_since:.3f} s of the sink's clock; xruns {done.xrun_causes}"
    assert done.period_seconds == pytest.approx(1024 / RATE)
    assert done.device_latency_seconds == pytest.approx(4096 / RATE)


def test_an_idle_paced_tap_writes_nothing(alsa_tap: TapDevice) -> None:
    # The ring holds less than the track: the producer is still at it when the pause comes.
    engine = SinkEngine("tap", DeviceParams(rate=RATE), pacing=Pacing.AUTO, ring_frames=RATE // 2)
    engine.start()
    track = tone(1000, 1.5)
    pipeline = Pipeline(engine, fade_seconds=0)
    pipeline.enqueue(ArrayStream(track, RATE), "track")

    def stays_idle(seen: SinkStatus) -> None:
        size = alsa_tap.file.stat().st_size
        moved = engine.wait_until(lambda s: (s.frames_written, s.silence_frames)
                                  != (seen.frames_written, seen.silence_frames), timeout=IDLE_WATCH)
        assert moved is None, f"an idle sink wrote: {moved}"
        assert alsa_tap.file.stat().st_size == size

    with producing(pipeline) as producer:
        wait(engine, lambda s: s.played_frames >= RATE // 4)
        assert pipeline.pause() is not None
        paused = wait(engine, lambda s: s.idles >= 1)
        assert paused.idle and paused.device_delay_frames == 0
        stays_idle(paused)
        pipeline.resume()
        producer.join(WAIT)  # the queue ran out
        ended = wait(engine, lambda s: s.idles >= 2)
        stays_idle(ended)
        # Idle, the tap already holds everything played: the last buffer was drained into it.
        assert alsa_tap.file.stat().st_size == ended.frames_written * 4
    status = engine.close(drain=True)
    assert status.frames_written == len(track) + status.silence_frames
    assert alsa_tap.file.stat().st_size == status.frames_written * 4
    # Each idle spell drained the device: the resume began a new run, with no underrun.
    assert status.idle_restarts == 0 and status.xruns == 0
    played = alsa_tap.read(SampleFormat.S16_LE, 2)
    audio = played[np.any(played != 0, axis=1)]
    np.testing.assert_array_equal(audio, to_s16(track))


def test_a_late_writer_is_a_writer_late_xrun_on_the_paced_tap(alsa_tap: TapDevice) -> None:
    """A writer away for longer than the buffer lasts finds the paced device run dry: an xrun
    blamed on the writer, a deadline miss, and no frame lost (the period is written again)."""
    engine = SinkEngine("tap", DeviceParams(rate=RATE), pacing=Pacing.AUTO, ring_frames=RATE)
    track = to_s16(tone(1000, 1.0))
    engine.open()
    assert engine.ring.write(track) == len(track)  # all of it: the writer never waits for data
    engine.start()
    wait(engine, lambda s: s.frames_written >= 8 * 1024)
    engine.stall_for(0.3)  # the device holds 85 ms
    late = wait(engine, lambda s: s.xruns >= 1)
    assert late.xrun_causes == {"writerLate": 1, "deviceStall": 0}
    assert late.write_errors == {"EPIPE": 1}
    engine.set_feeding(False)
    done = wait(engine, lambda s: s.idles >= 1)
    assert done.deadline_misses >= 1 and done.worst_lateness_periods > 1.0
    assert done.worst_lateness_seconds == pytest.approx(done.worst_lateness_periods * done.period_seconds)
    status = engine.close(drain=True)
    np.testing.assert_array_equal(alsa_tap.read(SampleFormat.S16_LE, 2), track)
    assert status.xruns == 1 and status.idle_restarts == 0
