"""Audio: writer-thread headroom on a real-time device, and decode + process throughput.

1. Headroom. A private PulseAudio null sink paces the writer in real time (1024-frame
   periods at 48 kHz: 21.3 ms). A producer thread keeps the ring full; the writer's work per
   period (everything outside the blocking device write and the wait for data) is recorded.
   Baseline: the main thread idle. Measured: the main thread running a CPU-bound asyncio
   loop of JSON work, which competes for the GIL. Target: p99 work well under one period,
   and no xruns.
2. Throughput. 60 s of stereo 44.1 kHz audio as FLAC and as MP3 through codec-soundfile ->
   Pipeline (channel map, soxr resampling to 48 kHz, a gain processor, volume, S16 conversion)
   -> SinkEngine -> the ALSA ``null`` PCM. Baseline: the bare libsndfile decode of the same
   file in one call. Target: >= 200x real time on one core.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import Figure, percentile
from mfx.audio import DeviceParams, Pipeline, SampleFormat, SinkEngine, float_to_pcm

SECONDS = 3.0
PERIOD = 1024
RATE = 48000


def _feed(engine: SinkEngine, stop: threading.Event) -> None:
    t = np.arange(4800) / RATE
    block = float_to_pcm(np.repeat((0.3 * np.sin(2 * np.pi * 440 * t))[:, None], 2, axis=1).astype(np.float32),
                         SampleFormat.S16_LE)
    while not stop.is_set():
        engine.ring.write(block, timeout=0.1)


async def _json_work(seconds: float) -> None:
    doc = {"items": [{"id": i, "name": f"song {i}", "tags": ["a", "b"], "score": i * 0.5} for i in range(200)]}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            json.loads(json.dumps(doc))
        await asyncio.sleep(0)


def _headroom(busy: bool) -> tuple[list[float], int]:
    engine = SinkEngine("bench", DeviceParams(rate=RATE, period_frames=PERIOD, periods=4))
    engine.start()
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(engine, stop), daemon=True)
    feeder.start()
    try:
        engine.wait_until(lambda s: s.frames_written >= 8 * PERIOD, timeout=10)
        skip = len(engine.writer_loop_seconds())
        if busy:
            asyncio.run(_json_work(SECONDS))
        else:
            time.sleep(SECONDS)
        samples = engine.writer_loop_seconds()[skip:]
        xruns = engine.status().xruns
    finally:
        stop.set()
        feeder.join()
        engine.close(drain=False)
    return samples, xruns


class _Gain:
    def process(self, block: np.ndarray, sample_rate: int) -> np.ndarray:
        return block * np.float32(0.8)


def _throughput(codec: object, path: Path) -> float:
    engine = SinkEngine("bench-null", DeviceParams(device="null", rate=RATE), ring_frames=16 * PERIOD)
    engine.start()
    pipeline = Pipeline(engine, [_Gain()], volume_db=-3.0)
    started = time.perf_counter()
    stream = codec.open(str(path))  # type: ignore[attr-defined]
    seconds = stream.duration
    pipeline.enqueue(stream)
    pipeline.run()
    engine.close(drain=True)
    return seconds / (time.perf_counter() - started)


def _bare_decode(path: Path, seconds: float) -> float:
    import soundfile as sf

    started = time.perf_counter()
    sf.read(str(path), dtype="float32")
    return seconds / (time.perf_counter() - started)


def run() -> list[Figure]:
    from tests.audio_env import (
        PrivatePulse,
        load_soundfile_codec,
        tone,
        write_audio,
        write_tap_config,
    )

    figures: list[Figure] = []
    saved = {k: os.environ.get(k) for k in ("ALSA_CONFIG_PATH", "ALSA_TAP_FILE")}
    root = Path(tempfile.mkdtemp(prefix="mfx-pa-", dir="/tmp"))
    pulse = PrivatePulse(root)
    try:
        if shutil.which("pulseaudio"):
            pulse.start()
            os.environ["ALSA_CONFIG_PATH"] = str(pulse.alsa_config())
            period_ms = PERIOD / RATE * 1000
            idle, idle_xruns = _headroom(busy=False)
            loaded, busy_xruns = _headroom(busy=True)
            idle_p99 = percentile(idle, 99) * 1000
            busy_p99 = percentile(loaded, 99) * 1000
            figures.append(Figure("writer work per period, p99, main thread busy (asyncio JSON)", busy_p99, "ms",
                                  "main thread idle", idle_p99, f"< {period_ms:.1f} ms (one period)"))
            figures.append(Figure("writer work p99 as a share of the period, busy", busy_p99 / period_ms * 100, "%",
                                  "idle", idle_p99 / period_ms * 100, "< 50 %"))
            figures.append(Figure("xruns in 3 s with the main thread busy", busy_xruns, "xruns",
                                  "idle", idle_xruns, "0"))
            pulse.stop()

        tap = write_tap_config(root)
        os.environ.update(tap.env)
        codec = load_soundfile_codec()
        signal = tone(1000, 60.0, rate=44100, amplitude=0.3)
        signal[:, 1] = tone(660, 60.0, rate=44100, amplitude=0.3)[:, 0]
        for ext, fmt, subtype in (("flac", "FLAC", "PCM_16"), ("mp3", "MP3", "MPEG_LAYER_III")):
            path = write_audio(root / f"bench.{ext}", signal, 44100, fmt, subtype)
            speed = max(_throughput(codec, path) for _ in range(3))
            bare = max(_bare_decode(path, 60.0) for _ in range(3))
            figures.append(Figure(f"{ext.upper()} decode + process -> sink, 44.1k -> 48k", speed, "x realtime",
                                  "libsndfile decode alone", bare, ">= 200x realtime", higher_is_better=True))
    finally:
        pulse.stop()
        shutil.rmtree(root, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return figures
