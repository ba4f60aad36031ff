"""Decode + process throughput of the player's path, as a multiple of real time.

The path is the one the player runs per block: the codec plugin's stream (primed as the
player primes it), channel mapping, resampling to the sink's rate, the effects plugin's C
``process`` (gain + EQ), volume and conversion to S16 — a ``Pipeline`` writing into a ring
that a reader thread empties at once (no device pacing). Baseline: ``soundfile`` decoding
the same file in one call, with nothing else (the decoder's own ceiling). Target: >= 200x
real time on one core for FLAC and MP3.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.common import Figure
from mfx.audio import DeviceParams, Pipeline
from mfx.engine.tracks import PrimedStream
from mfx.runtimes.base import LoadRequest, PluginType
from mfx.runtimes.dynamic_library import DynamicLibraryRuntime
from tests.audio_env import load_soundfile_codec, tone, write_audio

REPO = Path(__file__).resolve().parents[1]
SECONDS = 60.0


class _DrainedSink:
    """A SinkEngine stand-in for measuring: the same ring, emptied by a thread at once."""

    def __init__(self, params: DeviceParams) -> None:
        from mfx.audio import FrameRingBuffer
        from mfx.audio.stream_clock import StreamClock

        self.params = params
        self.ring = FrameRingBuffer(params.period_frames * 16, params.channels, params.format.dtype)
        self._clock = StreamClock()
        self.open_stream = self._clock.open
        self.end_stream = self._clock.end
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            if self.ring.wait_for(1, timeout=0.05):
                # Through the clock, as the sink's writer reads, so streams are credited.
                self._clock.take(self.ring, self.params.period_frames * 4, self.params.rate)

    def stream_position(self, stream: object) -> object:
        return self._clock.position(stream, self.ring)  # type: ignore[arg-type]

    def set_feeding(self, feeding: bool) -> None:
        """Nothing to bridge: the drain takes whatever the pipeline writes, at once."""

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _effects():
    async def load():
        runtime = DynamicLibraryRuntime(Path(tempfile.mkdtemp(prefix="mfx-bench-lib-")))
        await runtime.__aenter__()
        request = LoadRequest(name="effects", version="1.0.0", type=PluginType.DYNAMIC_LIBRARY,
                              entry_point="libeffects.so", plugin_dir=REPO / "plugins" / "effects",
                              state_dir=Path(tempfile.mkdtemp(prefix="mfx-bench-state-")))
        instance = await runtime.load(request)
        await instance.initialize({"gainDb": -1.0, "eq": [{"type": "lowshelf", "freq": 120, "q": 0.707, "gainDb": 2.0},
                                                           {"type": "peaking", "freq": 3000, "q": 1.0, "gainDb": -1.5}]})
        return instance
    return asyncio.run(load())


def _through_player_path(codec, path: Path, processors: list) -> float:
    sink = _DrainedSink(DeviceParams(rate=48000, channels=2))
    pipeline = Pipeline(sink, processors)  # type: ignore[arg-type]
    started = time.perf_counter()
    stream = codec.open(str(path))
    primed = PrimedStream(stream, stream.read(pipeline.block_frames))
    pipeline.enqueue(primed, "bench")
    pipeline.run()
    elapsed = time.perf_counter() - started
    sink.close()
    return SECONDS / elapsed


def run() -> list[Figure]:
    codec = load_soundfile_codec()
    effects = _effects()
    figures = []
    with tempfile.TemporaryDirectory(prefix="mfx-bench-player-") as tmp:
        samples = tone(440.0, SECONDS, rate=44100)
        samples += np.float32(0.01) * np.random.default_rng(1).standard_normal(samples.shape).astype(np.float32)
        files = {
            "FLAC": write_audio(Path(tmp) / "a.flac", samples, 44100, "FLAC", "PCM_16"),
            "MP3": write_audio(Path(tmp) / "a.mp3", samples, 44100, "MP3", "MPEG_LAYER_III"),
        }
        for label, path in files.items():
            started = time.perf_counter()
            sf.read(str(path), dtype="float32")
            baseline = SECONDS / (time.perf_counter() - started)
            speed = max(_through_player_path(codec, path, [effects]) for _ in range(3))
            figures.append(Figure(f"{label} 44.1k -> 48k, decode+resample+effects+S16", speed, "x realtime",
                                  "soundfile decode only", baseline, ">= 200x realtime", higher_is_better=True))
    return figures
