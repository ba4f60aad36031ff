"""A device that plays in real time although the PCM under it does not.

The ALSA ``null`` PCM and the file tap over it accept a second of audio in a fraction of a
millisecond: a writer feeding them "plays" a song in a second, and every position derived
from what was written runs ahead of time. ``PacedDevice`` wraps such a device and behaves
like a sound card with ``buffer_frames`` of buffer draining at ``rate`` against
``time.monotonic()``: a write blocks until the virtual play head has made room, ``delay()``
says how much of what was accepted has not played yet, and a writer that comes back after
the buffer ran dry gets an underrun, as ALSA reports one (the frames are not taken, the
stream is ready again).

Time is counted per run: a run starts with the first write after an open, a drop, a drain
or an underrun, and frame ``k`` of it plays at ``start + k / rate``. Frames are whole
numbers computed from the start of the run, so no rounding accumulates over hours.

``pacing_needed`` decides whether a sink wraps its device (``Pacing.AUTO``: only when the
PCM does not pace itself, see ``alsa_config``).
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Callable

import numpy as np

from mfx.audio.alsa_config import pcm_paces_itself
from mfx.audio.alsa_device import PcmDevice, translate_error


class Pacing(enum.StrEnum):
    """Whether a sink paces its device against the monotonic clock."""

    AUTO = "auto"  # pace devices that do not pace themselves (null, the file tap)
    NONE = "none"  # write as fast as the device takes it (bit-exact, fast tests)


def pacing_needed(device: PcmDevice, pacing: Pacing | str) -> bool:
    """Whether ``device`` must be wrapped in a PacedDevice under ``pacing``.

    A device object may say itself (``paces_itself``: True, False or None); otherwise the ALSA
    configuration of its PCM name decides. A PCM that cannot be told is trusted to pace
    itself: pacing a real card a second time would starve it.
    """
    if Pacing(pacing) is Pacing.NONE:
        return False
    paces = getattr(device, "paces_itself", None)
    if paces is None:
        paces = pcm_paces_itself(device.actual.device)
    return paces is False


class PacedDevice:
    """A PcmDevice playing ``inner`` at its rate against a monotonic clock. One thread writes;
    ``delay``, ``played`` and ``avail`` may be asked from any thread."""

    paces_itself = True

    def __init__(self, inner: PcmDevice, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.requested = inner.requested
        self.actual = inner.actual
        self._rate = inner.actual.rate
        self._capacity = inner.actual.buffer_frames
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._run_start: float | None = None  # when frame 0 of the current run played
        self._run_frames = 0  # frames accepted in the current run
        self._played_before = 0  # frames played in earlier runs
        self._first_start: float | None = None  # the start of the first run since the open
        self._closed = False

    # --- what has played ------------------------------------------------------------------

    def delay(self) -> int:
        """Frames accepted and not played yet (what a card's buffer holds)."""
        with self._lock:
            return self._run_frames - self._played_in_run(self._clock())

    def played(self) -> int:
        """Frames played since the device was opened."""
        with self._lock:
            return self._played_before + self._played_in_run(self._clock())

    def avail(self) -> int:
        return self._capacity - self.delay()

    @property
    def playing_since(self) -> float | None:
        """The monotonic time the current run's first frame played (None when stopped)."""
        with self._lock:
            return self._run_start

    @property
    def first_played_at(self) -> float | None:
        """The monotonic time the first frame since the open played."""
        with self._lock:
            return self._first_start

    # --- PcmDevice ----------------------------------------------------------------------------

    def write(self, frames: np.ndarray) -> int:
        """Block until the buffer has room for ``frames`` (in chunks of at most the buffer),
        hand them to the inner device, and return how many it took. Returns fewer (0 if
        none) when the device is dropped or closed meanwhile."""
        done = 0
        while done < len(frames):
            chunk = frames[done:done + self._capacity]
            if not self._wait_for_room(len(chunk)):
                break
            taken = self.inner.write(chunk)
            with self._changed:
                if self._run_start is None:
                    self._run_start = self._clock()
                    if self._first_start is None:
                        self._first_start = self._run_start
                self._run_frames += taken
            done += taken
            if taken < len(chunk):
                break
        return done

    def wait_played(self, timeout: float | None = None) -> bool:
        """Block until everything accepted has played (True), or ``timeout``, a drop or a
        close (False). The run goes on: the next write continues it, or underruns when it
        comes after the buffer ran dry."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._changed:
            while True:
                if self._closed or self._run_start is None:
                    return self._run_start is None
                now = self._clock()
                left = self._run_frames - self._played_in_run(now)
                if left <= 0:
                    return True
                wait = left / self._rate
                if deadline is not None:
                    if now >= deadline:
                        return False
                    wait = min(wait, deadline - now)
                self._changed.wait(wait)

    def drain(self) -> None:
        self.wait_played()
        self._end_run(played_out=True)
        self.inner.drain()

    def drop(self) -> None:
        self._end_run(played_out=False)
        self.inner.drop()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.inner.close()

    # --- internals ----------------------------------------------------------------------------

    def _played_in_run(self, now: float) -> int:
        if self._run_start is None:
            return 0
        return min(self._run_frames, max(0, math.floor((now - self._run_start) * self._rate)))

    def _wait_for_room(self, frames: int) -> bool:
        """Wait until ``frames`` fit; raise an underrun when the run ran dry before this write."""
        with self._changed:
            while not self._closed:
                if self._run_start is None:
                    return True
                now = self._clock()
                elapsed = (now - self._run_start) * self._rate
                if elapsed > self._run_frames:  # the buffer ran dry before this write
                    self._played_before += self._run_frames
                    self._run_start, self._run_frames = None, 0
                    raise translate_error("Broken pipe [paced]", self.actual.device, opening=False)
                room_at = self._run_start + (self._run_frames + frames - self._capacity) / self._rate
                if now >= room_at:
                    return True
                self._changed.wait(room_at - now)
            return False

    def _end_run(self, *, played_out: bool) -> None:
        with self._changed:
            now = self._clock()
            self._played_before += self._run_frames if played_out else self._played_in_run(now)
            self._run_start, self._run_frames = None, 0
            self._changed.notify_all()
