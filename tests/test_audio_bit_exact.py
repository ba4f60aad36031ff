"""Bit-exact playback: file -> codec -> pipeline -> processors -> volume -> sink -> ALSA file tap.

The expected device samples are computed here with plain numpy, independently of
``mfx.audio.formats``: int = clip(rint(float64(x) * 2^(bits-1))).

Silence and the writer: the writer writes nothing before the first period of audio and pads
with (counted) silence only when the ring runs dry mid-stream. Two ways are checked: the ring
primed with the whole track before the writer starts (the tap must equal the expected samples
exactly, no silence), and a writer running from the start with a small ring (the tap, with
all-zero frames removed, must equal the expected samples, and the zero frames removed must be
exactly the silence the sink counted; the tone has no zero samples by construction).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mfx.audio import (
    AlsaDevice,
    DeviceParams,
    Pipeline,
    SampleFormat,
    SinkEngine,
    SinkState,
    translate_error,
)
from mfx.errors import (
    AudioError,
    DeviceBusyError,
    DeviceLostError,
    DeviceNotFoundError,
    UnderrunError,
    UnsupportedFormatError,
)
from observability.metrics import Metrics
from tests.audio_env import TapDevice, alsa_tap, load_soundfile_codec, tone, write_audio

__all__ = ["alsa_tap"]  # the fixture, imported for pytest

RATE = 48000
EFFECTS_SO = Path(__file__).resolve().parent.parent / "plugins" / "effects" / "libeffects.so"


class Gain:
    """A plain Python AudioProcessor: multiply by a float32 gain."""

    def __init__(self, gain: float) -> None:
        self.gain = np.float32(gain)

    def process(self, block: np.ndarray, sample_rate: int) -> np.ndarray:
        assert sample_rate == RATE
        return block * self.gain


def to_device(x: np.ndarray, fmt: SampleFormat) -> np.ndarray:
    if fmt is SampleFormat.FLOAT_LE:
        return np.clip(x, -1, 1).astype("<f4")
    bits = {SampleFormat.S16_LE: 16, SampleFormat.S24_LE: 24, SampleFormat.S32_LE: 32}[fmt]
    scale = 2.0 ** (bits - 1)
    ints = np.clip(np.rint(x.astype(np.float64) * scale), -scale, scale - 1)
    return ints.astype("<i2" if bits == 16 else "<i4")


def expected_after_chain(decoded: np.ndarray, gains: list[float], volume_db: float) -> np.ndarray:
    y = decoded.astype(np.float32)
    for g in gains:
        y = y * np.float32(g)
    volume = np.float32(10.0 ** (volume_db / 20.0)) if volume_db else None
    return y * volume if volume is not None else y


def play_primed(codec: Any, paths: list[Path], params: DeviceParams, processors: list[Any],
                volume_db: float) -> tuple[SinkEngine, Any]:
    """Open the sink, fill its ring with everything, then start the writer and drain."""
    engine = SinkEngine("bitexact", params, ring_frames=4 * RATE)
    engine.open()
    pipeline = Pipeline(engine, processors, volume_db=volume_db)
    for path in paths:
        pipeline.enqueue(codec.open(str(path)), label=path.name)
    pipeline.run()
    engine.start()
    status = engine.close(drain=True)
    return engine, status


@pytest.mark.parametrize("fmt", list(SampleFormat), ids=[f.value for f in SampleFormat])
@pytest.mark.parametrize("container", ["wav", "flac"])
def test_tone_lands_in_the_tap_exactly(alsa_tap: TapDevice, tmp_path: Path, fmt: SampleFormat,
                                       container: str) -> None:
    codec = load_soundfile_codec()
    signal = tone(1000, 0.5, rate=RATE)
    subtype = "FLOAT" if container == "wav" else "PCM_24"
    path = write_audio(tmp_path / f"tone.{container}", signal, RATE, container.upper(), subtype)
    decoded = signal if subtype == "FLOAT" else (np.rint(signal.astype(np.float64) * 2**23) / 2**23).astype(np.float32)

    params = DeviceParams(rate=RATE, channels=2, format=fmt, period_frames=1024, periods=4)
    _, status = play_primed(codec, [path], params, [Gain(0.5)], volume_db=-6.0)

    expected = to_device(expected_after_chain(decoded, [0.5], -6.0), fmt)
    played = alsa_tap.read(fmt, 2)
    assert played.shape == expected.shape
    np.testing.assert_array_equal(played, expected)
    assert status.state is SinkState.CLOSED
    assert (status.frames_written, status.silence_frames, status.xruns) == (len(expected), 0, 0)


def test_running_writer_adds_only_counted_silence(alsa_tap: TapDevice, tmp_path: Path) -> None:
    codec = load_soundfile_codec()
    signal = tone(1000, 1.0, rate=RATE)
    path = write_audio(tmp_path / "tone.wav", signal, RATE, "WAV", "FLOAT")
    metrics = Metrics()
    engine = SinkEngine("running", DeviceParams(rate=RATE), metrics=metrics, ring_frames=2048)
    engine.start()  # the writer runs before any audio arrives
    pipeline = Pipeline(engine, [Gain(0.5)], volume_db=-3.0, block_frames=1500)
    pipeline.enqueue(codec.open(str(path)))
    pipeline.run()
    status = engine.close(drain=True)

    expected = to_device(expected_after_chain(signal, [0.5], -3.0), SampleFormat.S16_LE)
    played = alsa_tap.read(SampleFormat.S16_LE, 2)
    silent = np.all(played == 0, axis=1)
    np.testing.assert_array_equal(played[~silent], expected)
    assert int(silent.sum()) == status.silence_frames
    assert status.frames_written == len(played)
    sample = metrics.registry.get_sample_value
    assert sample("mfx_audio_sink_frames_written_total", {"sink": "running"}) == len(played)
    assert sample("mfx_audio_sink_silence_frames_total", {"sink": "running"}) == status.silence_frames
    assert sample("mfx_audio_sink_ready", {"sink": "running"}) == 0.0  # closed


def test_gapless_tracks_follow_each_other_without_a_gap(alsa_tap: TapDevice, tmp_path: Path) -> None:
    codec = load_soundfile_codec()
    first = tone(1000, 0.37, rate=RATE)  # lengths that are not multiples of a block or period
    second = tone(700, 0.41, rate=RATE, amplitude=0.3)
    paths = [write_audio(tmp_path / "a.wav", first, RATE, "WAV", "FLOAT"),
             write_audio(tmp_path / "b.wav", second, RATE, "WAV", "FLOAT")]
    _, status = play_primed(codec, paths, DeviceParams(rate=RATE), [], volume_db=0.0)
    expected = to_device(np.concatenate([first, second]), SampleFormat.S16_LE)
    np.testing.assert_array_equal(alsa_tap.read(SampleFormat.S16_LE, 2), expected)
    assert status.silence_frames == 0


@pytest.mark.anyio
@pytest.mark.skipif(not EFFECTS_SO.exists(), reason="plugins/effects/libeffects.so not built (make plugins)")
async def test_c_effects_plugin_in_the_chain_is_bit_exact(alsa_tap: TapDevice, tmp_path: Path) -> None:
    import anyio

    from mfx.runtimes.base import LoadRequest, PluginType
    from mfx.runtimes.clib import CLibraryRuntime

    codec = load_soundfile_codec()
    signal = tone(1000, 0.5, rate=RATE)
    path = write_audio(tmp_path / "tone.flac", signal, RATE, "FLAC", "PCM_24")
    decoded = (np.rint(signal.astype(np.float64) * 2**23) / 2**23).astype(np.float32)
    async with CLibraryRuntime() as runtime:
        effects = await runtime.load(LoadRequest(
            name="effects", version="1.0.0", type=PluginType.DYNAMIC_LIBRARY,
            entry_point="libeffects.so", plugin_dir=EFFECTS_SO.parent, state_dir=tmp_path))
        await effects.initialize({"gainDb": -6.0, "eq": []})
        await effects.start()
        params = DeviceParams(rate=RATE, format=SampleFormat.S16_LE)
        _, status = await anyio.to_thread.run_sync(
            play_primed, codec, [path], params, [Gain(0.5), effects], -2.0)
        await effects.stop()
    c_gain = float(np.float32(10.0 ** (-6.0 / 20.0)))  # the plugin multiplies by (float)pow(10, dB/20)
    expected = to_device(expected_after_chain(decoded, [0.5, c_gain], -2.0), SampleFormat.S16_LE)
    np.testing.assert_array_equal(alsa_tap.read(SampleFormat.S16_LE, 2), expected)
    assert status.silence_frames == 0


# --- Faults injected behind the device interface --------------------------------------------


class FlakyDevice:
    """A real ALSA device whose n-th write fails the way ALSA reports it, without the frames
    reaching the device (as with -EPIPE or a dead server)."""

    def __init__(self, inner: AlsaDevice, fail_on: int, error: AudioError) -> None:
        self.inner, self.fail_on, self.error = inner, fail_on, error
        self.requested, self.actual = inner.requested, inner.actual
        self.writes = 0

    def write(self, frames: np.ndarray) -> int:
        self.writes += 1
        if self.writes == self.fail_on:
            raise self.error
        return self.inner.write(frames)

    def avail(self) -> int:
        return self.inner.avail()

    def drain(self) -> None:
        self.inner.drain()

    def drop(self) -> None:
        self.inner.drop()

    def close(self) -> None:
        self.inner.close()


def pcm_tone(seconds: float) -> np.ndarray:
    return to_device(tone(1000, seconds, rate=RATE), SampleFormat.S16_LE)


def test_underrun_rewrites_the_period_that_failed(alsa_tap: TapDevice) -> None:
    underrun = translate_error("Broken pipe [default]", "default", opening=False)
    engine = SinkEngine("xrun", DeviceParams(rate=RATE), ring_frames=RATE,
                        open_device=lambda p: FlakyDevice(AlsaDevice.open(p), 3, underrun))
    expected = pcm_tone(0.5)
    engine.open()
    engine.ring.write(expected)
    engine.start()
    status = engine.close(drain=True)
    np.testing.assert_array_equal(alsa_tap.read(SampleFormat.S16_LE, 2), expected)
    assert (status.xruns, status.write_errors) == (1, {"EPIPE": 1})


def test_lost_device_resumes_where_it_stopped(alsa_tap: TapDevice, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The device dies on the 3rd write and refuses two reopens; the reopened device (its own
    tap file) starts with exactly the period that failed."""
    opens: list[int] = []
    states: list[SinkState] = []
    second_tap = tmp_path / "after-reopen.raw"

    def opener(params: DeviceParams) -> Any:
        opens.append(1)
        if len(opens) == 1:
            lost = translate_error("Input/output error [default]", "default", opening=False)
            return FlakyDevice(AlsaDevice.open(params), 3, lost)
        if len(opens) <= 3:
            raise translate_error("Connection refused [default]", "default", opening=True)
        monkeypatch.setenv("ALSA_TAP_FILE", str(second_tap))
        return AlsaDevice.open(params)

    engine = SinkEngine("lossy", DeviceParams(rate=RATE), ring_frames=RATE, open_device=opener,
                        on_state=lambda s: states.append(s.state), reopen_initial=0.001)
    expected = pcm_tone(0.5)
    engine.open()
    engine.ring.write(expected)
    engine.start()
    status = engine.close(drain=True)
    before = alsa_tap.read(SampleFormat.S16_LE, 2)
    after = np.frombuffer(second_tap.read_bytes(), dtype="<i2").reshape(-1, 2)
    assert len(before) == 2 * 1024  # two periods made it before the loss
    np.testing.assert_array_equal(np.concatenate([before, after]), expected)
    assert states == [SinkState.OPEN, SinkState.DEVICE_LOST, SinkState.OPEN, SinkState.CLOSED]
    assert status.reopens == 1 and status.write_errors == {"EIO": 1}


# --- Bad specifications -----------------------------------------------------------------------


def test_unknown_device_is_device_not_found(alsa_tap: TapDevice) -> None:
    seen = []
    engine = SinkEngine("missing", DeviceParams(device="no-such-pcm"), on_state=seen.append)
    with pytest.raises(DeviceNotFoundError, match="'no-such-pcm'.*not found"):
        engine.start()
    assert engine.status().state is SinkState.ERROR
    assert engine.status().reason == "DeviceNotFound"
    assert [s.reason for s in seen] == ["DeviceNotFound"]


def test_format_the_device_cannot_take_says_asked_and_offered(alsa_tap: TapDevice) -> None:
    engine = SinkEngine("s16", DeviceParams(device="s16only", format=SampleFormat.FLOAT_LE))
    with pytest.raises(UnsupportedFormatError) as raised:
        engine.open()
    message = str(raised.value)
    assert "'s16only'" in message and "format=FLOAT_LE" in message and "offered" in message
    assert "format=S8" in message
    assert engine.status().reason == "UnsupportedFormat"


@pytest.mark.parametrize(("field", "value", "words"), [
    ("format", "U8", "use one of S16_LE, S24_LE, S32_LE, FLOAT_LE"),
    ("rate", 0, "rate 0 is out of range"),
    ("channels", 0, "channels 0 is out of range"),
    ("periods", 1, "bufferPeriods 1 is too small"),
])
def test_invalid_parameters_are_rejected_before_any_open(field: str, value: object, words: str) -> None:
    with pytest.raises(UnsupportedFormatError, match=words):
        DeviceParams(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(("message", "opening", "error", "errno"), [
    ("Broken pipe [default]", False, UnderrunError, "EPIPE"),
    ("Device or resource busy [hw:0]", True, DeviceBusyError, "EBUSY"),
    ("No such file or directory [hw:0]", True, DeviceNotFoundError, "ENOENT"),
    ("No such device [hw:1]", True, DeviceNotFoundError, "ENODEV"),
    ("No such device [hw:1]", False, DeviceLostError, "ENODEV"),
    ("Input/output error [default]", False, DeviceLostError, "EIO"),
    ("Connection refused [default]", True, DeviceLostError, "ECONNREFUSED"),
    ("Invalid argument [plughw:0]", True, UnsupportedFormatError, "EINVAL"),
])
def test_alsa_messages_translate_by_errno(message: str, opening: bool, error: type, errno: str) -> None:
    translated = translate_error(message, message.split("[")[1].rstrip("]"), opening=opening)
    assert type(translated) is error
    assert translated.errno_name == errno  # type: ignore[attr-defined]
    assert message.split("[")[1].rstrip("]") in str(translated)


def test_format_codes_match_the_alsa_extension() -> None:
    import alsaaudio

    for fmt in SampleFormat:
        assert fmt.alsa_code == getattr(alsaaudio, f"PCM_FORMAT_{fmt.value}")
