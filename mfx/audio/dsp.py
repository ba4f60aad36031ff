"""Signal processing on float32 blocks of shape (frames, channels).

- ``map_channels``: mono <-> stereo and other counts.
- ``Resampler``: a streaming soxr resampler to the sink rate (a pass-through, bit for bit,
  when the rates are equal).
- ``GainRamp``: a gain that moves linearly to a new target over a fixed number of frames,
  carried across blocks. ``Volume`` uses it with a ramp of one period (a change is complete
  within one period, without zipper noise); ``Fader`` with ~5 ms for click-free pause, seek
  and track changes.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

FADE_SECONDS = 0.005
MIN_DB = -120.0  # at or below this a dB volume is silence


def map_channels(block: np.ndarray, channels: int) -> np.ndarray:
    """Return ``block`` with ``channels`` channels.

    Mono is copied to every output channel; many -> mono is the average; otherwise the
    first channels are kept and missing ones are silent.
    """
    have = block.shape[1]
    if have == channels:
        return block
    if have == 1:
        return np.repeat(block, channels, axis=1)
    if channels == 1:
        return block.mean(axis=1, keepdims=True, dtype=np.float32)
    out = np.zeros((len(block), channels), dtype=np.float32)
    keep = min(have, channels)
    out[:, :keep] = block[:, :keep]
    return out


class Resampler:
    """Streaming sample-rate conversion of float32 blocks (soxr, "HQ" quality)."""

    def __init__(self, in_rate: int, out_rate: int, channels: int, quality: str = "HQ") -> None:
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self.channels = int(channels)
        self._quality = quality
        self._stream = self._new_stream()

    @property
    def passthrough(self) -> bool:
        return self.in_rate == self.out_rate

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.passthrough:
            return None
        return soxr.ResampleStream(self.in_rate, self.out_rate, self.channels,
                                   dtype="float32", quality=self._quality)

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next block; ``last=True`` also flushes what the filter holds back."""
        if self._stream is None:
            return block
        out = self._stream.resample_chunk(np.ascontiguousarray(block, dtype=np.float32), last=last)
        return np.asarray(out, dtype=np.float32).reshape(-1, self.channels)

    def flush(self) -> np.ndarray:
        """The frames still inside the filter (end of stream)."""
        if self._stream is None:
            return np.zeros((0, self.channels), dtype=np.float32)
        return self.process(np.zeros((0, self.channels), dtype=np.float32), last=True)

    def reset(self) -> None:
        """Forget the history (after a seek)."""
        self._stream = self._new_stream()


def db_to_linear(db: float) -> float:
    return 0.0 if db <= MIN_DB else float(10.0 ** (db / 20.0))


def linear_to_db(gain: float) -> float:
    return MIN_DB if gain <= 0 else max(MIN_DB, 20.0 * math.log10(gain))


class GainRamp:
    """A gain that reaches a new target linearly over ``ramp_frames`` frames.

    The ramp continues across blocks; once it is done the gain holds exactly the target, so
    a gain of 1.0 leaves the samples untouched.
    """

    def __init__(self, ramp_frames: int, gain: float = 1.0) -> None:
        if ramp_frames < 1:
            raise ValueError("ramp_frames must be at least 1")
        self.ramp_frames = int(ramp_frames)
        self._current = float(gain)
        self._target = float(gain)
        self._start = float(gain)
        self._done = self.ramp_frames  # frames of the ramp already applied

    @property
    def gain(self) -> float:
        """The gain the next frame gets."""
        return self._current

    @property
    def target(self) -> float:
        return self._target

    @property
    def ramping(self) -> bool:
        return self._done < self.ramp_frames

    def set(self, target: float, *, immediate: bool = False) -> None:
        target = float(target)
        if immediate:
            self._current = self._start = self._target = target
            self._done = self.ramp_frames
            return
        if target == self._target and not self.ramping:
            return
        self._start = self._current
        self._target = target
        self._done = 0

    def apply(self, block: np.ndarray) -> np.ndarray:
        """Return ``block`` scaled by the (ramping) gain."""
        frames = len(block)
        if not self.ramping:
            if self._current == 1.0:
                return block
            return (block * np.float32(self._current)).astype(np.float32, copy=False)
        steps = min(frames, self.ramp_frames - self._done)
        # gain for frame k of the ramp: start + (target - start) * (k + 1) / ramp_frames
        k = np.arange(self._done + 1, self._done + steps + 1, dtype=np.float64)
        ramp = self._start + (self._target - self._start) * (k / self.ramp_frames)
        gains = np.full(frames, self._target, dtype=np.float64)
        gains[:steps] = ramp
        self._done += steps
        self._current = self._target if not self.ramping else float(ramp[-1])
        return (block * gains[:, None]).astype(np.float32)


class Volume:
    """Player volume in dB or linear, with mute; changes ramp over one period."""

    def __init__(self, period_frames: int, db: float = 0.0) -> None:
        self._level = db_to_linear(db)
        self._muted = False
        self._ramp = GainRamp(period_frames, self._level)

    @property
    def linear(self) -> float:
        return self._level

    @property
    def db(self) -> float:
        return linear_to_db(self._level)

    @property
    def muted(self) -> bool:
        return self._muted

    def set_db(self, db: float) -> None:
        self.set_linear(db_to_linear(db))

    def set_linear(self, gain: float) -> None:
        if gain < 0:
            raise ValueError(f"volume {gain} is negative: use a linear gain >= 0")
        self._level = float(gain)
        self._retarget()

    def set_mute(self, muted: bool) -> None:
        self._muted = bool(muted)
        self._retarget()

    def set_period(self, period_frames: int) -> None:
        ramp = GainRamp(period_frames, self._ramp.gain)
        ramp.set(self._ramp.target)
        self._ramp = ramp

    def _retarget(self) -> None:
        self._ramp.set(0.0 if self._muted else self._level)

    def apply(self, block: np.ndarray) -> np.ndarray:
        return self._ramp.apply(block)

    @property
    def gain(self) -> float:
        """The gain applied right now (mid-ramp values included)."""
        return self._ramp.gain


class Fader:
    """Short fades (~5 ms) that make pause, seek and track changes click-free."""

    def __init__(self, sample_rate: int, seconds: float = FADE_SECONDS, gain: float = 1.0) -> None:
        self.frames = max(1, round(sample_rate * seconds))
        self._ramp = GainRamp(self.frames, gain)

    def fade_in(self, *, from_silence: bool = True) -> None:
        if from_silence:
            self._ramp.set(0.0, immediate=True)
        self._ramp.set(1.0)

    def fade_out(self) -> None:
        self._ramp.set(0.0)

    @property
    def silent(self) -> bool:
        return self._ramp.gain == 0.0 and not self._ramp.ramping

    def apply(self, block: np.ndarray) -> np.ndarray:
        return self._ramp.apply(block)


def fade_out_curve(frames: int, length: int) -> np.ndarray:
    """Gains for fading ``frames`` frames out over ``length`` (the tail past it is silent)."""
    k = np.arange(1, frames + 1, dtype=np.float64)
    return np.clip(1.0 - k / max(1, length), 0.0, 1.0)
