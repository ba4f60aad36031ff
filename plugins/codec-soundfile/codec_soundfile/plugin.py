"""The Codec: ``open(path)`` gives a stream of float32 frames, shape (frames, channels).

Formats are whatever libsndfile was built with (the ``soundfile`` wheel ships WAV, FLAC,
Ogg Vorbis, Opus, MP3 and more). Every libsndfile failure becomes ``mfx.errors.DecodeError``
naming the file.

MP3 is decoded in one call at open and then served from memory: with libsndfile 1.2.2 a
partial read of a VBR MP3 can come back with samples missing (its MPEG reader reports a
full buffer when mpg123 delivered less) and seeking is not sample-accurate. One full read
is exact, so MP3 streams are exact too, at the cost of memory (about 10 MB per stereo
minute at 44.1 kHz); ``mp3MaxSeconds`` bounds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from mfx.errors import DecodeError, InvalidConfigError
from mfx.sdk.music import AudioStream, Codec
from mfx.sdk.plugin import PluginInfo

# Extension -> libsndfile major format; only those the loaded libsndfile offers are used.
_EXTENSIONS = {
    "wav": "WAV", "wave": "WAV", "flac": "FLAC", "ogg": "OGG", "oga": "OGG", "opus": "OGG",
    "mp3": "MP3", "aif": "AIFF", "aiff": "AIFF", "au": "AU", "caf": "CAF", "w64": "W64",
}
DEFAULT_MP3_MAX_SECONDS = 900.0

def _decode_error(path: Path, exc: BaseException) -> DecodeError:
    return DecodeError(
        f"cannot decode {str(path)!r}: {exc}; check that it is a complete audio file in one of "
        f"the supported formats ({', '.join(sorted(set(_EXTENSIONS)))})")


class SoundfileStream(AudioStream):
    """An open file being decoded block by block."""

    def __init__(self, path: Path, handle: sf.SoundFile) -> None:
        self.path = path
        self._file = handle
        self.samplerate = int(handle.samplerate)
        self.channels = int(handle.channels)
        self.frames = int(handle.frames)
        self.format = str(handle.format)
        self.subtype = str(handle.subtype)

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate

    def read(self, frames: int) -> np.ndarray:
        try:
            return self._file.read(int(frames), dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise _decode_error(self.path, exc) from None

    def seek(self, frame: int) -> int:
        target = max(0, min(int(frame), self.frames))
        try:
            return int(self._file.seek(target))
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise _decode_error(self.path, exc) from None

    def tell(self) -> int:
        return int(self._file.tell())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SoundfileStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryStream(AudioStream):
    """A file decoded in one call, served from memory (MP3, see the module docstring)."""

    def __init__(self, path: Path, samples: np.ndarray, samplerate: int, fmt: str, subtype: str) -> None:
        self.path = path
        self._samples = samples
        self._position = 0
        self.samplerate = int(samplerate)
        self.channels = int(samples.shape[1])
        self.frames = int(samples.shape[0])
        self.format = fmt
        self.subtype = subtype

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate

    def read(self, frames: int) -> np.ndarray:
        start = self._position
        end = min(self.frames, start + max(0, int(frames)))
        self._position = end
        return self._samples[start:end].copy()

    def seek(self, frame: int) -> int:
        self._position = max(0, min(int(frame), self.frames))
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._samples = np.zeros((0, self.channels), dtype=np.float32)

    def __enter__(self) -> MemoryStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SoundfileCodec(Codec):
    """Codec interface: ``formats()``, ``open(path)``; lifecycle ``initialize``/``health``."""

    info = PluginInfo(name="codec-soundfile", version="1.0.0",
                      description="WAV, FLAC, Ogg Vorbis, Opus and MP3 through libsndfile",
                      interfaces=("Codec",))

    def __init__(self) -> None:
        super().__init__()
        self.mp3_max_seconds = DEFAULT_MP3_MAX_SECONDS

    def initialize(self, config: Mapping[str, Any] | None = None) -> None:
        super().initialize(config or {})
        value = (config or {}).get("mp3MaxSeconds", DEFAULT_MP3_MAX_SECONDS)
        if not isinstance(value, (int, float)) or value < 1:
            raise InvalidConfigError(f"spec.config.mp3MaxSeconds: expected a number >= 1, got {value!r}")
        self.mp3_max_seconds = float(value)

    def health(self) -> bool:
        return bool(sf.__libsndfile_version__)

    def formats(self) -> list[str]:
        """File extensions this codec decodes (lower case, without the dot)."""
        available = sf.available_formats()
        return sorted(ext for ext, major in _EXTENSIONS.items() if major in available)

    def open(self, path: str | Path) -> SoundfileStream | MemoryStream:
        path = Path(path)
        try:
            handle = sf.SoundFile(str(path))
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise _decode_error(path, exc) from None
        if handle.format != "MP3":
            return SoundfileStream(path, handle)
        with handle:
            seconds = handle.frames / handle.samplerate
            if seconds > self.mp3_max_seconds:
                raise DecodeError(
                    f"cannot decode {str(path)!r}: {seconds:.0f} s of MP3 is longer than "
                    f"mp3MaxSeconds={self.mp3_max_seconds:.0f}; raise it in the plugin config")
            try:
                samples = handle.read(dtype="float32", always_2d=True)
            except (sf.SoundFileError, RuntimeError, OSError) as exc:
                raise _decode_error(path, exc) from None
            return MemoryStream(path, samples, handle.samplerate, handle.format, handle.subtype)
