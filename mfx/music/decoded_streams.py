"""The decoded streams the player hands to the pipeline: a song decoded ahead, the empty
stream, and the slot that holds the song enqueued to follow (gapless)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np


class PrimedStream:
    """A codec stream whose first block was decoded ahead."""

    def __init__(self, stream: Any, first: np.ndarray) -> None:
        self.inner = stream
        self.samplerate = int(stream.samplerate)
        self.channels = int(stream.channels)
        self.frames = int(getattr(stream, "frames", 0) or 0)
        self._head: np.ndarray | None = first
        self._head_start = 0

    def read(self, frames: int) -> np.ndarray:
        if self._head is not None and self._head_start < len(self._head):
            out = self._head[self._head_start:self._head_start + frames]
            self._head_start += len(out)
            if len(out) < frames and self._head_start >= len(self._head):
                rest = self.inner.read(frames - len(out))
                if len(rest):
                    out = np.concatenate([out, rest])
            return out
        return self.inner.read(frames)

    def seek(self, frame: int) -> int:
        self._head = None
        return int(self.inner.seek(frame))

    def tell(self) -> int:
        tell = getattr(self.inner, "tell", None)
        position = int(tell()) if callable(tell) else 0
        if self._head is not None:
            position -= len(self._head) - self._head_start
        return max(0, position)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


class EmptyStream:
    """A stream that ends at once: what a slot holds when no song follows any more."""

    def __init__(self, samplerate: int = 48000, channels: int = 2) -> None:
        self.samplerate = samplerate
        self.channels = channels
        self.frames = 0

    def read(self, frames: int) -> np.ndarray:
        return np.zeros((0, self.channels), dtype=np.float32)

    def seek(self, frame: int) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def close(self) -> None:
        pass


class NextSlot:
    """The enqueued next song; its stream can be swapped until the pipeline starts reading."""

    def __init__(self, stream: Any) -> None:
        self._lock = threading.Lock()
        self._stream = stream
        self.started = False

    @property
    def samplerate(self) -> int:
        return int(self._stream.samplerate)

    @property
    def channels(self) -> int:
        return int(self._stream.channels)

    def replace(self, stream: Any) -> Any | None:
        """Swap in ``stream``; returns the old stream, or None if the slot has started."""
        with self._lock:
            if self.started:
                return None
            old, self._stream = self._stream, stream
            return old

    def read(self, frames: int) -> np.ndarray:
        with self._lock:
            self.started = True
            stream = self._stream
        return stream.read(frames)

    def seek(self, frame: int) -> int:
        with self._lock:
            self.started = True
        return int(self._stream.seek(frame))

    def tell(self) -> int:
        tell = getattr(self._stream, "tell", None)
        return int(tell()) if callable(tell) else 0

    def close(self) -> None:
        self._stream.close()
