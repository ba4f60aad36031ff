"""Shared pieces of the engine tests: the codec plugin as the engine loads it, a generated
WAV, the device samples it must produce, and waiting for an event."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import numpy as np
import pytest

from mfx.audio import DeviceParams, SampleFormat
from mfx.engine.api import EngineEvent, PluginLoad, PluginRole, SinkConfig
from mfx.engine.lock import lock_holder
from mfx.engine.paths import EnginePaths
from tests.audio_env import REPO, tone, write_audio

RATE = 48000
WAIT = 60.0  # seconds; a safety net, never reached when things work
CODEC = "codec-soundfile"

E = TypeVar("E")


def codec_load(generation: int = 1) -> PluginLoad:
    return PluginLoad(name=CODEC, role=PluginRole.CODEC, directory=str(REPO / "plugins" / "codec-soundfile"),
                      entry_point="python:codec_soundfile.plugin:SoundfileCodec", config={},
                      generation=generation)


def tap_sink(name: str = "speakers") -> SinkConfig:
    return SinkConfig(name=name, params=DeviceParams(rate=RATE, channels=2, format=SampleFormat.S16_LE,
                                                     period_frames=1024, periods=4), default=True)


def wav_tone(path: Path, seconds: float, freq: float = 1000.0) -> np.ndarray:
    """Write a 16-bit stereo WAV of a tone; returns the samples the device must get. At 1000
    or 1500 Hz (a whole number of samples per period, shifted half a sample) no sample is 0."""
    samples = tone(freq, seconds, RATE)
    write_audio(path, samples, RATE, "WAV", "PCM_16")
    return device_samples(path)


def device_samples(path: Path) -> np.ndarray:
    """What the file decodes to, as S16 device samples (float -> int as the pipeline rounds)."""
    import soundfile as sf

    decoded, _ = sf.read(str(path), dtype="float32", always_2d=True)
    scale = 2.0 ** 15
    return np.clip(np.rint(decoded.astype(np.float64) * scale), -scale, scale - 1).astype("<i2")


def without_silence(frames: np.ndarray) -> np.ndarray:
    """The frames that are not all zero: the writer pads with silence when its ring runs dry,
    and the tone has no zero sample."""
    return frames[np.any(frames != 0, axis=1)]


async def next_event(events: Any, kind: type[E], where: Callable[[E], bool] = lambda e: True) -> E:
    """The next event of ``kind`` matching ``where`` (others are skipped)."""
    with anyio.fail_after(WAIT):
        async for event in events:
            if isinstance(event, kind) and where(event):
                return event
    raise AssertionError(f"the event stream ended before a {kind.__name__}")


__all__ = ["RATE", "WAIT", "CODEC", "EngineEvent", "codec_load", "tap_sink", "wav_tone", "device_samples",
           "without_silence", "next_event"]


def write_indexed(path: Path, frames: int) -> Path:
    """A 16-bit stereo WAV whose every frame says its own index (``frame_index`` reads it
    back from device samples); no frame is all zero."""
    import soundfile as sf

    index = np.arange(frames, dtype=np.int64)
    data = np.empty((frames, 2), dtype=np.int16)
    data[:, 0] = (index % 65536) - 32768
    data[:, 1] = index // 65536 + 1
    sf.write(str(path), data, RATE, subtype="PCM_16", format="WAV")
    return path


def frame_index(frames: np.ndarray) -> np.ndarray:
    """The indices ``write_indexed`` wrote into S16 device frames (exact where no fade
    scaled them)."""
    return (frames[:, 0].astype(np.int64) + 32768) + 65536 * (frames[:, 1].astype(np.int64) - 1)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A home whose engine, if a test leaves one behind, is killed at the end."""
    home = tmp_path.resolve() / "home"
    home.mkdir()
    yield home
    pid = lock_holder(EnginePaths(home).lock)
    if pid:
        os.kill(pid, signal.SIGKILL)
