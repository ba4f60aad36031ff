"""codec-soundfile: files written at test time decode with the right length, seek, and fail
cleanly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from mfx.errors import DecodeError
from mfx.sdk.music import AudioStream, Codec
from tests.audio_env import CODEC_PLUGIN_DIR, load_soundfile_codec, tone, write_audio

# (extension, soundfile format, subtype, sample rate, exact): exact formats decode to the
# written samples bit for bit (after 16-bit quantisation); lossy ones only in length.
FORMATS = [
    ("wav", "WAV", "FLOAT", 48000, True),
    ("flac", "FLAC", "PCM_16", 44100, True),
    ("ogg", "OGG", "VORBIS", 44100, False),
    ("opus", "OGG", "OPUS", 48000, False),
    ("mp3", "MP3", "MPEG_LAYER_III", 44100, False),
]


@pytest.fixture(scope="module")
def codec() -> Codec:
    return load_soundfile_codec()  # type: ignore[return-value]


def test_manifest_names_the_codec_class() -> None:
    manifest = yaml.safe_load((CODEC_PLUGIN_DIR / "plugin.yaml").read_text())
    assert manifest["kind"] == "PluginManifest"
    assert manifest["metadata"]["name"] == "codec-soundfile"
    assert manifest["spec"]["type"] == "dynamic_library"
    assert manifest["spec"]["entryPoint"] == "python:codec_soundfile.plugin:SoundfileCodec"
    assert manifest["spec"]["interfaces"] == ["Codec"]


def test_formats_lists_the_five_common_ones(codec: Codec) -> None:
    assert isinstance(codec, Codec)
    assert {"wav", "flac", "ogg", "opus", "mp3"} <= set(codec.formats())


@pytest.mark.parametrize(("ext", "fmt", "subtype", "rate", "exact"), FORMATS, ids=[f[0] for f in FORMATS])
def test_decodes_length_duration_and_samples(codec: Codec, tmp_path: Path, ext: str, fmt: str,
                                             subtype: str, rate: int, exact: bool) -> None:
    signal = tone(440, 1.5, rate=rate, amplitude=0.4)
    path = write_audio(tmp_path / f"tone.{ext}", signal, rate, fmt, subtype)
    with codec.open(str(path)) as stream:
        assert isinstance(stream, AudioStream)
        assert (stream.samplerate, stream.channels, stream.frames) == (rate, 2, len(signal))
        assert stream.duration == pytest.approx(1.5)
        blocks = []
        while len(block := stream.read(4096)):
            assert block.dtype == np.float32 and block.shape[1] == 2
            blocks.append(block)
    decoded = np.concatenate(blocks)
    assert len(decoded) == len(signal)
    if exact:
        expected = signal if subtype == "FLOAT" else np.rint(signal * 32768) / 32768
        np.testing.assert_array_equal(decoded, expected.astype(np.float32))
    else:  # lossy, but still the same tone: strongly correlated with the input
        correlation = np.corrcoef(decoded[:, 0], signal[:, 0])[0, 1]
        assert correlation > 0.9, f"{ext}: decoded audio does not match the tone ({correlation:.3f})"


@pytest.mark.parametrize(("ext", "fmt", "subtype", "rate", "exact"), FORMATS, ids=[f[0] for f in FORMATS])
def test_seek_then_read_matches_reading_through(codec: Codec, tmp_path: Path, ext: str, fmt: str,
                                                subtype: str, rate: int, exact: bool) -> None:
    path = write_audio(tmp_path / f"tone.{ext}", tone(1000, 1.0, rate=rate), rate, fmt, subtype)
    with codec.open(str(path)) as stream:
        whole = stream.read(stream.frames)
        assert stream.seek(30000) == 30000
        after_seek = stream.read(2048)
        assert stream.seek(10**9) == stream.frames  # clamped to the end
        assert len(stream.read(10)) == 0
    np.testing.assert_array_equal(after_seek, whole[30000:32048])


def test_mp3_read_in_blocks_equals_one_read(codec: Codec, tmp_path: Path) -> None:
    """libsndfile 1.2.2 loses samples when a VBR MP3 of a pure tone is read in pieces; the codec
    must not (it decodes MP3 in one call)."""
    import soundfile as sf

    signal = tone(1000, 3.0, rate=44100)
    path = write_audio(tmp_path / "tone.mp3", signal, 44100, "MP3", "MPEG_LAYER_III")
    reference, _ = sf.read(str(path), dtype="float32", always_2d=True)
    with codec.open(str(path)) as stream:
        pieces = [stream.read(4096) for _ in range(len(reference) // 4096 + 2)]
    np.testing.assert_array_equal(np.concatenate(pieces), reference)


def test_corrupt_file_raises_decode_error_naming_it(codec: Codec, tmp_path: Path) -> None:
    garbage = tmp_path / "broken.flac"
    garbage.write_bytes(b"fLaC" + bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)))
    with pytest.raises(DecodeError, match="broken.flac"):
        codec.open(str(garbage))


def test_truncated_file_raises_decode_error_while_reading(codec: Codec, tmp_path: Path) -> None:
    path = write_audio(tmp_path / "cut.flac", tone(440, 2.0), 48000, "FLAC", "PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DecodeError, match="cut.flac"):
        with codec.open(str(path)) as stream:
            while len(stream.read(4096)):
                pass


def test_missing_file_raises_decode_error(codec: Codec, tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="nothing.wav"):
        codec.open(str(tmp_path / "nothing.wav"))
