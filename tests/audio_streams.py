"""In-memory decoded streams and the device samples they should become, for audio tests
that check what a sink played sample by sample."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from mfx.audio import Pipeline


class ArrayStream:
    """A DecodedStream over float32 frames held in memory (read, seek and tell as a codec's)."""

    def __init__(self, frames: np.ndarray, samplerate: int) -> None:
        self.frames = np.ascontiguousarray(frames, dtype=np.float32)
        self._rate = samplerate
        self._position = 0

    @property
    def samplerate(self) -> int:
        return self._rate

    @property
    def channels(self) -> int:
        return int(self.frames.shape[1])

    def read(self, frames: int) -> np.ndarray:
        start = self._position
        self._position = min(len(self.frames), start + int(frames))
        return self.frames[start:self._position].copy()

    def seek(self, frame: int) -> int:
        self._position = max(0, min(int(frame), len(self.frames)))
        return self._position

    def tell(self) -> int:
        return self._position


def to_s16(x: np.ndarray) -> np.ndarray:
    """Float frames as the device gets them in S16_LE, computed without mfx: clip(rint(x * 2^15))."""
    return np.clip(np.rint(x.astype(np.float64) * 32768.0), -32768, 32767).astype("<i2")


def without_silence(played: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frames that are not all zero, and their indices in ``played`` (the test tones have
    no zero sample, so every all-zero frame is silence the sink added)."""
    kept = np.flatnonzero(np.any(played != 0, axis=1))
    return played[kept], kept


@contextmanager
def producing(pipeline: Pipeline) -> Iterator[threading.Thread]:
    """``pipeline.run()`` in a thread (it blocks on the ring), joined on the way out."""
    thread = threading.Thread(target=pipeline.run, name="test-producer", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        pipeline.stop()
        thread.join(30)
