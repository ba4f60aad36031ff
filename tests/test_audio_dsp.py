"""DSP pieces, the ring buffer, and click-free pipeline controls."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from mfx.audio import (
    DeviceParams,
    Fader,
    FrameRingBuffer,
    Pipeline,
    PipelineState,
    Resampler,
    SampleFormat,
    SinkEngine,
    TpdfDither,
    Volume,
    db_to_linear,
    float_to_pcm,
    map_channels,
    pcm_to_float,
)
from tests.audio_env import TapDevice, alsa_tap, load_soundfile_codec, tone, write_audio

__all__ = ["alsa_tap"]

RATE = 48000
PERIOD = 1024


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window))
    peak = int(np.argmax(spectrum))
    # parabolic interpolation around the peak bin
    a, b, c = np.log(spectrum[peak - 1:peak + 2] + 1e-12)
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return (peak + offset) * rate / len(x)


# --- Volume and fades ----------------------------------------------------------------------------


def test_volume_change_reaches_its_target_within_one_period() -> None:
    volume = Volume(PERIOD, db=0.0)
    ones = np.ones((PERIOD, 2), dtype=np.float32)
    np.testing.assert_array_equal(volume.apply(ones), ones)  # unity leaves samples untouched
    volume.set_db(-20.0)
    ramped = volume.apply(ones)
    assert ramped[-1, 0] == pytest.approx(0.1, rel=1e-6)  # the last frame of the period is there
    assert np.all(np.diff(ramped[:, 0]) < 0)  # and it got there smoothly, not in one step
    assert np.max(np.abs(np.diff(ramped[:, 0]))) < 1.0 / PERIOD + 1e-6
    np.testing.assert_allclose(volume.apply(ones), 0.1, rtol=1e-6)  # then it holds


def test_volume_ramp_spans_small_blocks() -> None:
    volume = Volume(PERIOD)
    volume.set_linear(0.5)
    parts = [volume.apply(np.ones((100, 1), dtype=np.float32)) for _ in range(12)]
    gains = np.concatenate(parts)[:, 0]
    assert gains[PERIOD - 1] == pytest.approx(0.5) and np.all(gains[PERIOD:] == np.float32(0.5))
    assert np.all(np.diff(gains[:PERIOD]) <= 0)


def test_mute_ramps_to_silence_and_back() -> None:
    volume = Volume(PERIOD, db=-6.0)
    volume.set_mute(True)
    volume.apply(np.ones((PERIOD, 1), dtype=np.float32))
    assert np.all(volume.apply(np.ones((10, 1), dtype=np.float32)) == 0.0)
    volume.set_mute(False)
    volume.apply(np.ones((PERIOD, 1), dtype=np.float32))
    assert volume.gain == pytest.approx(db_to_linear(-6.0))


def test_fades_have_no_large_steps() -> None:
    fader = Fader(RATE)  # 5 ms = 240 frames
    dc = np.ones((2 * fader.frames, 2), dtype=np.float32)
    fader.fade_out()
    out = fader.apply(dc)
    assert out[fader.frames - 1, 0] == 0.0 and fader.silent
    assert np.max(np.abs(np.diff(out[:, 0]))) <= 1.0 / fader.frames + 1e-6
    fader.fade_in()
    back = fader.apply(dc)
    assert back[fader.frames - 1, 0] == 1.0
    assert np.max(np.abs(np.diff(back[:, 0]))) <= 1.0 / fader.frames + 1e-6


# --- Channels and rate ---------------------------------------------------------------------------


def test_mono_to_stereo_and_back() -> None:
    mono = tone(440, 0.01, channels=1)
    stereo = map_channels(mono, 2)
    assert stereo.shape == (len(mono), 2)
    np.testing.assert_array_equal(stereo[:, 0], mono[:, 0])
    np.testing.assert_array_equal(stereo[:, 1], mono[:, 0])
    np.testing.assert_array_equal(map_channels(stereo, 1), mono)


def test_resampling_44k1_to_48k_keeps_the_tone_frequency() -> None:
    source = tone(1000, 1.0, rate=44100)
    resampler = Resampler(44100, 48000, 2)
    blocks = [resampler.process(source[i:i + 4096]) for i in range(0, len(source), 4096)]
    out = np.concatenate([*blocks, resampler.flush()])
    assert abs(len(out) - 48000) <= 2
    assert dominant_frequency(out[2000:-2000, 0], 48000) == pytest.approx(1000.0, abs=0.5)
    assert np.max(np.abs(out[2000:-2000])) == pytest.approx(0.5, abs=0.01)


def test_equal_rates_pass_through_untouched() -> None:
    block = tone(1000, 0.1)
    assert Resampler(RATE, RATE, 2).process(block) is block


# --- Sample formats --------------------------------------------------------------------------


def test_float_to_int16_rounds_to_nearest_and_clips() -> None:
    x = np.array([[0.0], [1 / 65536], [1.5 / 32768], [-1.0], [1.0], [2.0], [-3.0]], dtype=np.float32)
    np.testing.assert_array_equal(float_to_pcm(x, SampleFormat.S16_LE)[:, 0],
                                  [0, 0, 2, -32768, 32767, 32767, -32768])


def test_s24_is_low_aligned_and_round_trips() -> None:
    x = tone(1000, 0.01)
    ints = float_to_pcm(x, SampleFormat.S24_LE)
    assert ints.max() < 2**23 and ints.min() >= -(2**23)
    assert np.max(np.abs(pcm_to_float(ints, SampleFormat.S24_LE) - x)) <= 0.5 / 2**23


def test_dither_is_off_by_default_and_bounded_when_on() -> None:
    x = tone(1000, 0.05, amplitude=0.01)
    plain = float_to_pcm(x, SampleFormat.S16_LE)
    np.testing.assert_array_equal(plain, float_to_pcm(x, SampleFormat.S16_LE))
    dithered = float_to_pcm(x, SampleFormat.S16_LE, TpdfDither(seed=1))
    assert not np.array_equal(plain, dithered)
    assert np.max(np.abs(dithered.astype(int) - plain.astype(int))) <= 2  # +-1 LSB of noise, rounded


# --- Ring buffer ---------------------------------------------------------------------------------


def test_ring_buffer_blocking_write_waits_for_the_reader() -> None:
    ring = FrameRingBuffer(100, 2, np.int16)
    data = np.arange(300, dtype=np.int16).reshape(150, 2)
    done = threading.Event()
    written: list[int] = []

    def producer() -> None:
        written.append(ring.write(data))
        done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    assert ring.wait_for(100, timeout=10) == 100 and not done.is_set()
    assert ring.fill_ratio == 1.0
    first = ring.read(80)
    thread.join(timeout=10)
    rest = ring.read(1000)
    assert written == [150]
    np.testing.assert_array_equal(np.concatenate([first, rest]), data)


def test_ring_buffer_partial_write_when_not_blocking() -> None:
    ring = FrameRingBuffer(100, 1, np.float32, blocking=False)
    assert ring.write(np.zeros((150, 1), dtype=np.float32)) == 100
    assert ring.free == 0


def test_truncate_fades_the_head_and_refuses_stale_writes() -> None:
    ring = FrameRingBuffer(1000, 1, np.float32)
    generation = ring.generation
    ring.write(np.ones((500, 1), dtype=np.float32), generation=generation)
    dropped = ring.truncate(10, lambda head: head * 0.5)
    assert dropped == 490 and ring.fill == 10
    assert ring.write(np.ones((5, 1), dtype=np.float32), generation=generation) == 0  # stale
    assert np.all(ring.read(100) == 0.5)
    assert ring.clear() == 0


def test_ring_buffer_rejects_the_wrong_dtype() -> None:
    ring = FrameRingBuffer(10, 2, np.int16)
    with pytest.raises(ValueError, match="dtype"):
        ring.write(np.zeros((2, 2), dtype=np.float32))


# --- Pipeline controls, end to end through the tap -------------------------------------------------


def max_step(played: np.ndarray) -> int:
    return int(np.max(np.abs(np.diff(played[:, 0].astype(np.int64)))))


def run_with_control(tmp_path: Path, control: str) -> tuple[np.ndarray, int]:
    """Play a tone; when the producer has filled the ring (writer not started yet, so the
    ring's head is the next frame to be heard), apply ``control``; then let everything play
    out. Returns what the tap got and the largest step
    the plain tone has."""
    codec = load_soundfile_codec()
    signal = tone(1000, 1.0, rate=RATE)
    path = write_audio(tmp_path / "tone.wav", signal, RATE, "WAV", "FLOAT")
    engine = SinkEngine("controls", DeviceParams(rate=RATE), ring_frames=8192)
    engine.open()
    pipeline = Pipeline(engine, block_frames=2000)
    stream = codec.open(str(path))
    stream.seek(12)  # start near a peak, so a cut at the ring's head would be a big jump
    pipeline.enqueue(stream)
    producer = threading.Thread(target=pipeline.run)
    producer.start()
    # Full as far as blocks of 2000 go: the producer now waits in a ring write for room for the next.
    engine.ring.wait_for(8192 - 2000 + 1, timeout=30)
    if control == "seek":
        pipeline.seek(0.7301)
    elif control == "pause":
        pipeline.pause()
        assert pipeline.state is PipelineState.PAUSED
    elif control == "skip":
        other = write_audio(tmp_path / "other.wav", tone(700, 0.5, rate=RATE), RATE, "WAV", "FLOAT")
        pipeline.enqueue(codec.open(str(other)))
        pipeline.skip()
    engine.start()
    if control == "pause":
        pipeline.resume()
    producer.join(timeout=30)
    engine.close(drain=True)
    clean_step = max_step(float_to_pcm(signal, SampleFormat.S16_LE))
    return alsa_tap_read(tmp_path), clean_step


def alsa_tap_read(tmp_path: Path) -> np.ndarray:
    return np.frombuffer((tmp_path / "tap.raw").read_bytes(), dtype="<i2").reshape(-1, 2)


@pytest.mark.parametrize("control", ["seek", "pause", "skip"])
def test_controls_fade_instead_of_clicking(alsa_tap: TapDevice, tmp_path: Path, control: str) -> None:
    played, clean_step = run_with_control(tmp_path, control)
    # A cut without a fade jumps by up to the full amplitude (~16000 here); a 5 ms fade of a
    # 0.5-amplitude tone adds at most 0.5/240 of full scale (~70) to the tone's own slope.
    assert max_step(played) <= clean_step + 100, f"{control}: click of {max_step(played)}"
    assert len(played) > 8192  # the audio after the control was played too


def test_pause_resumes_near_where_it_was_heard(alsa_tap: TapDevice, tmp_path: Path) -> None:
    played, _ = run_with_control(tmp_path, "pause")
    # The fade-out keeps 240 frames of what the ring held, and the resume starts right after
    # them: the whole track (less the 12 frames skipped at the start) is heard once.
    assert abs(len(played) - (RATE - 12)) <= 2
