"""A bounded, thread-safe ring of audio frames between the player and the writer thread.

The producer (the pipeline) writes blocks of any size; the consumer (the sink's writer
thread) reads up to one period at a time. Frames are rows of a fixed dtype and channel
count (the sink's format), so the writer hands them to the device without converting.

``clear`` and ``truncate`` (seek, skip, pause, stop) bump a generation number. A producer
that passes the generation it saw to ``write`` gets its write refused (or cut short) once
the ring has been cleared under it, so stale audio never lands after a fade-out.

A blocked producer is woken once the rest of its block fits (or half the ring is free),
not after every period the reader takes: a reader notifies only the waiter whose condition
now holds, so the producer costs one wake-up per block instead of one per period.

A producer may tag what it writes with a ``StreamId``; the ring keeps, in order, which
stream its frames belong to, so a reader learns whose frames it took (``read_owned``) and
``buffered_of`` says how much of a stream waits to be played.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

StreamId = int  # a stream opened on a sink (see stream_clock)
Owners = list[tuple[StreamId | None, int]]  # runs of frames, oldest first: (stream, frames)


@dataclass(slots=True)
class _Run:
    """Consecutive frames of one stream in the ring."""

    stream: StreamId | None
    frames: int


class FrameRingBuffer:
    def __init__(self, capacity_frames: int, channels: int, dtype: np.dtype | type | str,
                 *, blocking: bool = True) -> None:
        if capacity_frames < 1 or channels < 1:
            raise ValueError("a ring buffer needs at least one frame of one channel")
        self.capacity = int(capacity_frames)
        self.channels = int(channels)
        self.dtype = np.dtype(dtype)
        self.blocking = blocking  # False: write returns what fitted instead of waiting
        self._data = np.zeros((self.capacity, self.channels), dtype=self.dtype)
        self._start = 0  # index of the oldest frame
        self._fill = 0
        self._generation = 0
        self._closed = False
        self._owners: collections.deque[_Run] = collections.deque()
        self._room_wanted = 0  # free frames a blocked producer waits for (0: none waits)
        self._empty_waiters = 0  # threads in wait_until_empty
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    # --- state -----------------------------------------------------------------------

    @property
    def fill(self) -> int:
        with self._lock:
            return self._fill

    @property
    def free(self) -> int:
        with self._lock:
            return self.capacity - self._fill

    @property
    def fill_ratio(self) -> float:
        with self._lock:
            return self._fill / self.capacity

    @property
    def generation(self) -> int:
        with self._lock:
            return self._generation

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    # --- producer ----------------------------------------------------------------------

    def write(self, frames: np.ndarray, *, timeout: float | None = None,
              generation: int | None = None, stream: StreamId | None = None) -> int:
        """Append ``frames`` (shape (n, channels)) of ``stream``; returns how many were stored.

        Blocking mode waits for room until everything is stored, ``timeout`` passes, the
        ring is closed, or (when ``generation`` is given) the ring is cleared or truncated.
        Non-blocking mode stores what fits and returns at once.
        """
        frames = self._check(frames)
        total = len(frames)
        done = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while done < total:
                if self._closed or (generation is not None and generation != self._generation):
                    break
                room = self.capacity - self._fill
                # Room for the rest of the block, but never more than half the ring: a block
                # as large as the ring would otherwise wait for it to run dry before refilling.
                wanted = min(total - done, max(1, self.capacity // 2))
                if room < wanted and self.blocking:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is None or remaining > 0:
                        self._room_wanted = wanted
                        try:
                            self._changed.wait(remaining)
                        finally:
                            self._room_wanted = 0
                        continue
                if room == 0:
                    break  # non-blocking, or the time is up: what fitted is stored
                n = min(room, total - done)
                self._put(frames[done:done + n])
                self._own(stream, n)
                done += n
                self._changed.notify_all()
        return done

    # --- consumer ----------------------------------------------------------------------

    def read(self, max_frames: int) -> np.ndarray:
        """Remove and return up to ``max_frames`` frames (a copy; possibly empty). Never blocks."""
        return self.read_owned(max_frames)[0]

    def read_owned(self, max_frames: int) -> tuple[np.ndarray, Owners]:
        """``read``, and which streams the frames read belong to."""
        with self._changed:
            n = min(int(max_frames), self._fill)
            out = self._take(n)
            owners = self._disown_front(n)
            if n and ((self._room_wanted and self.capacity - self._fill >= self._room_wanted)
                      or (self._empty_waiters and not self._fill)):
                self._changed.notify_all()
            return out, owners

    def buffered_of(self, stream: StreamId) -> int:
        """Frames of ``stream`` waiting to be read."""
        with self._lock:
            return sum(run.frames for run in self._owners if run.stream == stream)

    def wait_for(self, frames: int, timeout: float | None = None,
                 wake: Callable[[], bool] | None = None) -> int:
        """Wait until at least ``frames`` are buffered, the ring is closed or interrupted,
        ``wake()`` is true, or ``timeout`` passes; returns the fill then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._fill < frames and not self._closed and not (wake is not None and wake()):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._fill

    def wait_until_empty(self, timeout: float | None = None) -> bool:
        """Wait until a reader has taken every frame; False on timeout or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._empty_waiters += 1
            try:
                while self._fill and not self._closed:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._changed.wait(remaining)
            finally:
                self._empty_waiters -= 1
            return self._fill == 0

    # --- control -----------------------------------------------------------------------

    def clear(self) -> int:
        """Drop every buffered frame (seek, stop); returns how many were dropped."""
        return self.truncate(0)

    def truncate(self, keep_frames: int,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> int:
        """Keep only the oldest ``keep_frames`` frames, passed through ``transform`` (a
        fade-out, so the cut is inaudible); drop the rest. Returns the frames dropped."""
        with self._changed:
            keep = max(0, min(int(keep_frames), self._fill))
            dropped = self._fill - keep
            if keep and transform is not None:
                head = self._take(keep)
                self._start, self._fill = 0, 0
                self._put(np.asarray(transform(head), dtype=self.dtype).reshape(keep, self.channels))
            self._fill = keep
            self._keep_owners(keep)
            self._generation += 1
            self._changed.notify_all()
            return dropped

    def interrupt(self) -> None:
        """Wake every waiter so it can look at its own stop conditions."""
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        """Refuse further writes and wake everyone; buffered frames stay readable."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # --- internals (lock held) ---------------------------------------------------------------

    def _check(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim == 1 and self.channels == 1:
            frames = frames.reshape(-1, 1)
        if frames.ndim != 2 or frames.shape[1] != self.channels:
            raise ValueError(f"expected frames of shape (n, {self.channels}), got {frames.shape}")
        if frames.dtype != self.dtype:
            raise ValueError(f"expected frames of dtype {self.dtype}, got {frames.dtype}: "
                             "convert to the sink format first (formats.float_to_pcm)")
        return frames

    def _put(self, frames: np.ndarray) -> None:
        n = len(frames)
        end = (self._start + self._fill) % self.capacity
        first = min(n, self.capacity - end)
        self._data[end:end + first] = frames[:first]
        if first < n:
            self._data[:n - first] = frames[first:]
        self._fill += n

    def _own(self, stream: StreamId | None, n: int) -> None:
        if self._owners and self._owners[-1].stream == stream:
            self._owners[-1].frames += n
        else:
            self._owners.append(_Run(stream, n))

    def _disown_front(self, n: int) -> Owners:
        owners: Owners = []
        while n > 0 and self._owners:
            run = self._owners[0]
            took = min(n, run.frames)
            owners.append((run.stream, took))
            run.frames -= took
            if not run.frames:
                self._owners.popleft()
            n -= took
        return owners

    def _keep_owners(self, keep: int) -> None:
        kept: collections.deque[_Run] = collections.deque()
        for run in self._owners:
            if keep <= 0:
                break
            took = min(keep, run.frames)
            kept.append(_Run(run.stream, took))
            keep -= took
        self._owners = kept

    def _take(self, n: int) -> np.ndarray:
        out = np.empty((n, self.channels), dtype=self.dtype)
        first = min(n, self.capacity - self._start)
        out[:first] = self._data[self._start:self._start + first]
        if first < n:
            out[first:] = self._data[:n - first]
        self._start = (self._start + n) % self.capacity
        self._fill -= n
        return out
