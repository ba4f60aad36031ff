"""Opened tracks: a codec stream with its first block decoded ahead, in a slot the pipeline
reads through, so a look-ahead can still be dropped until the pipeline starts it."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfx.engine.api import TrackInfo, TrackRequest
from mfx.errors import DecodeError, MfxError


class PrimedStream:
    """A codec stream whose first block was decoded at open (so a bad file fails there)."""

    def __init__(self, stream: Any, first: np.ndarray) -> None:
        self.inner = stream
        self.samplerate = int(stream.samplerate)
        self.channels = int(stream.channels)
        frames = getattr(stream, "frames", None)
        self.frames: int | None = int(frames) if frames else None
        self._head: np.ndarray | None = first
        self._head_start = 0

    def read(self, frames: int) -> np.ndarray:
        if self._head is not None and self._head_start < len(self._head):
            out = self._head[self._head_start:self._head_start + frames]
            self._head_start += len(out)
            if len(out) < frames:
                rest = np.asarray(self.inner.read(frames - len(out)), dtype=np.float32)
                if len(rest):
                    out = np.concatenate([out, rest.reshape(-1, self.channels)])
            return out
        return np.asarray(self.inner.read(frames), dtype=np.float32)

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
            with contextlib.suppress(Exception):  # a stream that fails to close is gone anyway
                close()


class TrackSlot:
    """What the pipeline reads a track through. ``drop`` empties it while the pipeline has
    not started it yet: the pipeline then finds a track that ends at once."""

    def __init__(self, stream: PrimedStream) -> None:
        self._lock = threading.Lock()
        self._stream = stream
        self.samplerate = stream.samplerate
        self.channels = stream.channels
        self.started = False
        self.dropped = False

    def drop(self) -> bool:
        """Empty the slot; False when the pipeline has started reading it already."""
        with self._lock:
            if self.started:
                return False
            self.dropped = True
            return True

    def seek_unstarted(self, frame: int) -> bool:
        """Move the start of a slot the pipeline has not read yet; False once it has."""
        with self._lock:
            if self.started:
                return False
            self._stream.seek(frame)
            return True

    def read(self, frames: int) -> np.ndarray:
        with self._lock:
            self.started = True
            if self.dropped:
                return np.zeros((0, self.channels), dtype=np.float32)
        return self._stream.read(frames)

    def seek(self, frame: int) -> int:
        with self._lock:
            self.started = True
            if self.dropped:
                return 0
        return int(self._stream.seek(frame))

    def tell(self) -> int:
        # A dropped slot's stream may be closed already: it is never read again.
        with self._lock:
            if self.dropped:
                return 0
        return self._stream.tell()


@dataclass
class OpenedTrack:
    request: TrackRequest
    stream: PrimedStream
    slot: TrackSlot

    @property
    def label(self) -> str:
        return self.request.label

    @property
    def rate(self) -> int:
        return self.stream.samplerate

    def info(self) -> TrackInfo:
        return TrackInfo(label=self.label, rate=self.stream.samplerate, channels=self.stream.channels,
                         frames=self.stream.frames)

    def close(self) -> None:
        self.stream.close()


def open_track(codec: Any, request: TrackRequest, block_frames: int) -> OpenedTrack:
    """Open ``request.path`` with ``codec``, seek to its start frame and decode one block
    (blocking: call it from a worker thread)."""
    try:
        stream = codec.open(request.path)
    except MfxError:
        raise
    except Exception as exc:  # a codec's own failure: the file cannot be decoded
        raise DecodeError(f"cannot open {request.path!r}: {exc}") from exc
    try:
        if request.start_frame:
            stream.seek(int(request.start_frame))
        first = np.asarray(stream.read(block_frames), dtype=np.float32).reshape(-1, int(stream.channels))
    except BaseException as exc:
        close = getattr(stream, "close", None)
        if callable(close):
            close()
        if isinstance(exc, Exception) and not isinstance(exc, MfxError):
            raise DecodeError(f"cannot decode {request.path!r}: {exc}") from exc
        raise
    primed = PrimedStream(stream, first)
    return OpenedTrack(request=request, stream=primed, slot=TrackSlot(primed))
