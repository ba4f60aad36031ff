"""Sample formats of a sink and the float32 -> integer conversion feeding it.

Decoders and processors work in float32 in [-1.0, 1.0); devices take one of four
little-endian formats. Conversion scales by 2^(bits-1), rounds to nearest (ties to even,
numpy's ``rint``) and clips to the integer range, so the same input always gives the same
bytes. Dither is off by default: with it off the output is bit-exact and testable; TPDF
dither is there for 16-bit sinks playing quiet high-resolution material.

The ALSA format codes are the stable ``snd_pcm_format_t`` values of alsa-lib's ABI; keeping
them here lets everything but ``alsa_device`` stay free of the ``alsaaudio`` extension.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from mfx.errors import UnsupportedFormatError


class SampleFormat(enum.StrEnum):
    S16_LE = "S16_LE"
    S24_LE = "S24_LE"  # 24 significant bits, low-aligned in a 32-bit little-endian word
    S32_LE = "S32_LE"
    FLOAT_LE = "FLOAT_LE"

    @property
    def alsa_code(self) -> int:
        return _ALSA_CODES[self]

    @property
    def dtype(self) -> np.dtype:
        return _DTYPES[self]

    @property
    def sample_bytes(self) -> int:
        return int(self.dtype.itemsize)

    @property
    def bits(self) -> int:
        return _BITS[self]

    @classmethod
    def parse(cls, name: str) -> SampleFormat:
        """The format named ``name`` (case-insensitive), or UnsupportedFormatError."""
        try:
            return cls(str(name).upper())
        except ValueError:
            supported = ", ".join(f.value for f in cls)
            raise UnsupportedFormatError(
                f"sample format {name!r} is not supported: use one of {supported}"
            ) from None

    @classmethod
    def from_alsa_code(cls, code: int) -> SampleFormat | None:
        """The format for an ALSA ``snd_pcm_format_t`` value, None if mfx cannot feed it."""
        for fmt, value in _ALSA_CODES.items():
            if value == code:
                return fmt
        return None


# snd_pcm_format_t (alsa/pcm.h): S16_LE=2, S24_LE=6, S32_LE=10, FLOAT_LE=14.
_ALSA_CODES: dict[SampleFormat, int] = {
    SampleFormat.S16_LE: 2,
    SampleFormat.S24_LE: 6,
    SampleFormat.S32_LE: 10,
    SampleFormat.FLOAT_LE: 14,
}
_DTYPES: dict[SampleFormat, np.dtype] = {
    SampleFormat.S16_LE: np.dtype("<i2"),
    SampleFormat.S24_LE: np.dtype("<i4"),
    SampleFormat.S32_LE: np.dtype("<i4"),
    SampleFormat.FLOAT_LE: np.dtype("<f4"),
}
_BITS: dict[SampleFormat, int] = {SampleFormat.S16_LE: 16, SampleFormat.S24_LE: 24, SampleFormat.S32_LE: 32, SampleFormat.FLOAT_LE: 32}


@dataclass
class TpdfDither:
    """Triangular dither of +-1 LSB peak, added before rounding to an integer format.

    Owns its random generator so a seed makes the output reproducible.
    """

    seed: int | None = None
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def noise(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._rng.random(shape) - self._rng.random(shape)


def float_to_pcm(block: np.ndarray, fmt: SampleFormat, dither: TpdfDither | None = None) -> np.ndarray:
    """Convert float samples to ``fmt``'s dtype (same shape), rounding and clipping.

    Values outside [-1.0, 1.0) clip to the format's extremes instead of wrapping.
    """
    if fmt is SampleFormat.FLOAT_LE:
        return np.clip(block, -1.0, 1.0).astype(fmt.dtype, copy=False)
    scale = float(1 << (fmt.bits - 1))
    # float64 keeps every float32 input exact after scaling by up to 2^31.
    scaled = np.asarray(block, dtype=np.float64) * scale
    if dither is not None:
        scaled += dither.noise(scaled.shape)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -scale, scale - 1.0, out=scaled)
    return scaled.astype(fmt.dtype)


def pcm_to_float(samples: np.ndarray, fmt: SampleFormat) -> np.ndarray:
    """The inverse of ``float_to_pcm`` (without dither): integers back to float32."""
    if fmt is SampleFormat.FLOAT_LE:
        return np.asarray(samples, dtype=np.float32)
    return (np.asarray(samples, dtype=np.float64) / float(1 << (fmt.bits - 1))).astype(np.float32)


def pcm_from_bytes(data: bytes, fmt: SampleFormat, channels: int) -> np.ndarray:
    """Interleaved device bytes as a (frames, channels) array of ``fmt``'s dtype."""
    frame_bytes = fmt.sample_bytes * channels
    usable = len(data) - len(data) % frame_bytes
    return np.frombuffer(data[:usable], dtype=fmt.dtype).reshape(-1, channels)
