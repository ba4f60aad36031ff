"""Tracks whose samples say where they are: every frame encodes its track and frame index.

Left channel: the frame index's low 15 bits; right channel: the track number times 1024 plus
the index's next 10 bits. Played bit-exactly (16-bit FLAC, 16-bit sink, volume 1, no
processors), what lands in a file tap decodes back to (track, frame) per frame, so a test
reads gaps, repeats, seeks and hand-overs straight from the tap, to the sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.music_fixtures import Track, tag

RATE = 44100
MAX_FRAMES = 1 << 25  # 12.7 minutes at 44.1 kHz: the index must fit 25 bits


def indexed_frames(track_number: int, frames: int) -> np.ndarray:
    """int16 stereo frames encoding (track_number, index) per frame."""
    if not 1 <= track_number < 32 or frames > MAX_FRAMES:
        raise ValueError("track numbers 1..31, at most 2**25 frames")
    index = np.arange(frames, dtype=np.int64)
    left = (index & 0x7FFF).astype(np.int16)
    right = (track_number * 1024 + (index >> 15)).astype(np.int16)
    return np.stack([left, right], axis=1)


@dataclass(frozen=True)
class Decoded:
    track: np.ndarray  # per frame: the track number (0: silence or something else)
    index: np.ndarray  # per frame: the frame index in that track

    def runs(self) -> list[tuple[int, int, int]]:
        """(track, first index, frames) for each run of consecutive frames of one track,
        silence (track 0) left out."""
        if len(self.track) == 0:
            return []
        step = np.diff(self.index) != 1
        change = (np.diff(self.track) != 0) | step
        starts = np.concatenate([[0], np.nonzero(change)[0] + 1])
        ends = np.concatenate([starts[1:], [len(self.track)]])
        return [(int(self.track[s]), int(self.index[s]), int(e - s))
                for s, e in zip(starts, ends, strict=True) if self.track[s] != 0]


def decode(frames: np.ndarray) -> Decoded:
    """Read (track, index) back from int16 stereo frames; silence decodes as track 0."""
    left = frames[:, 0].astype(np.int64)
    right = frames[:, 1].astype(np.int64)
    track = np.where(right > 0, right >> 10, 0)
    index = ((right & 1023) << 15) | (left & 0x7FFF)
    silent = (left == 0) & (right == 0)
    return Decoded(np.where(silent, 0, track), np.where(silent, -1, index))


def read_tap(path: Path) -> np.ndarray:
    data = np.frombuffer(path.read_bytes() if path.exists() else b"", dtype="<i2")
    return data[: len(data) - len(data) % 2].reshape(-1, 2)


def write_indexed_song(root: Path, track_number: int, seconds: float, title: str) -> Path:
    """A tagged 16-bit FLAC of ``seconds`` whose frames encode their own index."""
    path = root / f"{track_number:02d} {title}.flac"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, indexed_frames(track_number, round(seconds * RATE)), RATE, subtype="PCM_16", format="FLAC")
    tag(path, Track(path.name, title, ("Index",), "Indexed", track_number))
    return path
