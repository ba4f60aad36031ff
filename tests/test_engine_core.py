"""The engine in process: the codec plugin loaded into the engine decodes a generated WAV
and the tap receives it bit-exactly; position, pause/seek and gapless look-ahead are
reported from what the sink played. Synchronised on the engine's own events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfx.audio import SampleFormat
from mfx.engine.api import (
    PlaybackChanged,
    PlaybackIdle,
    PlaybackState,
    PluginLoad,
    PluginRole,
    TrackFailed,
    TrackRequest,
    TrackStarted,
)
from mfx.engine.core import Engine
from mfx.errors import NotFoundError
from tests.audio_env import REPO, TapDevice, alsa_tap
from tests.engine_env import CODEC, codec_load, next_event, tap_sink, wav_tone, without_silence

__all__ = ["alsa_tap"]

pytestmark = pytest.mark.anyio


async def test_a_track_plays_through_the_engine_bit_exactly(alsa_tap: TapDevice, tmp_path: Path) -> None:
    first = wav_tone(tmp_path / "a.wav", 0.5, 1000.0)
    second = wav_tone(tmp_path / "b.wav", 0.25, 1500.0)
    async with Engine(tmp_path / "home") as engine:
        with engine.subscribe() as events:
            assert (await engine.load_plugins([codec_load()])) == {CODEC: None}
            report = await engine.configure_sink(tap_sink())
            assert report.state == "Open"
            info = await engine.open_track(TrackRequest("t1", str(tmp_path / "a.wav"), CODEC, tag={"song": "a"}))
            assert (info.rate, info.channels, info.frames) == (48000, 2, len(first))
            await engine.open_track(TrackRequest("t2", str(tmp_path / "b.wav"), CODEC, tag={"song": "b"}))
            await engine.play("t1")
            await engine.enqueue("t2")
            started = await next_event(events, TrackStarted)
            assert (started.label, started.tag) == ("t1", {"song": "a"})
            started = await next_event(events, TrackStarted)
            assert (started.label, started.tag) == ("t2", {"song": "b"})
            assert (await next_event(events, PlaybackIdle)).error is None
            await engine.close_sink("speakers", drain=True)
    played = without_silence(alsa_tap.read(SampleFormat.S16_LE, 2))
    assert played.shape == (len(first) + len(second), 2)
    assert (played[:len(first)] == first).all()
    assert (played[len(first):] == second).all()


async def test_pause_holds_the_position_and_seek_moves_it(alsa_tap: TapDevice, tmp_path: Path) -> None:
    wav_tone(tmp_path / "a.wav", 2.0)
    async with Engine(tmp_path / "home") as engine:
        with engine.subscribe() as events:
            await engine.load_plugins([codec_load()])
            await engine.configure_sink(tap_sink())
            await engine.open_track(TrackRequest("t1", str(tmp_path / "a.wav"), CODEC, start_frame=24000))
            await engine.play("t1", paused=True)
            report = await engine.playback()
            assert (report.state, report.label, report.frame) == (PlaybackState.PAUSED, "t1", 24000)
            moved = await engine.seek(48000)
            assert (moved.state, moved.frame) == (PlaybackState.PAUSED, 48000)
            resumed = await engine.resume()
            assert resumed.state is PlaybackState.PLAYING
            await next_event(events, TrackStarted)
            held = await engine.pause()
            assert held.state is PlaybackState.PAUSED and held.frame >= 48000
            assert (await engine.playback()).frame == held.frame
            await engine.resume()
            assert (await next_event(events, PlaybackIdle)).error is None
            idle = await next_event(events, PlaybackChanged, lambda e: e.report.state is PlaybackState.IDLE)
            assert idle.report.label is None


async def test_a_track_needs_a_loaded_codec(alsa_tap: TapDevice, tmp_path: Path) -> None:
    wav_tone(tmp_path / "a.wav", 0.1)
    async with Engine(tmp_path / "home") as engine:
        with pytest.raises(NotFoundError, match="no Codec plugin 'codec-soundfile'"):
            await engine.open_track(TrackRequest("t1", str(tmp_path / "a.wav"), CODEC))
        with pytest.raises(NotFoundError, match="open_track it first"):
            await engine.play("t9")


EFFECTS_DIR = REPO / "plugins" / "effects"


@pytest.mark.skipif(not (EFFECTS_DIR / "libeffects.so").exists(), reason="libeffects.so not built (make plugins)")
async def test_a_c_processor_loaded_into_the_engine_is_in_the_chain(alsa_tap: TapDevice, tmp_path: Path) -> None:
    import soundfile as sf

    wav_tone(tmp_path / "a.wav", 0.25)
    effects = PluginLoad(name="effects", role=PluginRole.AUDIO_PROCESSOR, directory=str(EFFECTS_DIR),
                         entry_point="libeffects.so", config={"gainDb": -6.0, "eq": []}, generation=1)
    async with Engine(tmp_path / "home") as engine:
        with engine.subscribe() as events:
            assert await engine.load_plugins([codec_load(), effects]) == {CODEC: None, "effects": None}
            await engine.configure_sink(tap_sink())
            await engine.set_processors(["effects", "not-loaded"])
            assert (await engine.playback()).processors == ("effects",)  # what is missing is left out
            await engine.open_track(TrackRequest("t1", str(tmp_path / "a.wav"), CODEC))
            await engine.play("t1")
            assert (await next_event(events, PlaybackIdle)).error is None
            await engine.close_sink("speakers", drain=True)
            # Unloaded with the set: the chain goes on without it.
            assert await engine.load_plugins([codec_load()]) == {CODEC: None}
            assert (await engine.playback()).processors == ()
    decoded, _ = sf.read(str(tmp_path / "a.wav"), dtype="float32", always_2d=True)
    gained = decoded * np.float32(10.0 ** (-6.0 / 20.0))  # the plugin multiplies by (float)pow(10, dB/20)
    expected = np.clip(np.rint(gained.astype(np.float64) * 2.0**15), -2.0**15, 2.0**15 - 1).astype("<i2")
    np.testing.assert_array_equal(without_silence(alsa_tap.read(SampleFormat.S16_LE, 2)), expected)


async def test_a_track_that_fails_mid_file_is_reported_and_the_next_plays(alsa_tap: TapDevice,
                                                                          tmp_path: Path) -> None:
    from tests.audio_env import tone, write_audio

    whole = write_audio(tmp_path / "whole.flac", tone(1000.0, 2.0), 48000, "FLAC", "PCM_16")
    broken = tmp_path / "broken.flac"  # cut in half: the header opens, the middle fails
    broken.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    after = wav_tone(tmp_path / "after.wav", 0.25, 1500.0)
    async with Engine(tmp_path / "home") as engine:
        with engine.subscribe() as events:
            await engine.load_plugins([codec_load()])
            await engine.configure_sink(tap_sink())
            await engine.open_track(TrackRequest("t1", str(broken), CODEC, tag={"n": 1}))
            await engine.open_track(TrackRequest("t2", str(tmp_path / "after.wav"), CODEC, tag={"n": 2}))
            await engine.play("t1")
            await engine.enqueue("t2")
            failed = await next_event(events, TrackFailed)
            assert (failed.label, failed.tag, failed.error.reason) == ("t1", {"n": 1}, "DecodeFailed")
            assert (await next_event(events, TrackStarted)).label == "t2"
            assert (await next_event(events, PlaybackIdle)).error is None
            await engine.close_sink("speakers", drain=True)
    played = without_silence(alsa_tap.read(SampleFormat.S16_LE, 2))
    fade = round(0.005 * 48000)  # t2 fades in after the cut that skipped t1
    assert (played[-(len(after) - fade):] == after[fade:]).all()


async def test_a_dropped_look_ahead_does_not_play(alsa_tap: TapDevice, tmp_path: Path) -> None:
    first = wav_tone(tmp_path / "a.wav", 0.25, 1000.0)
    wav_tone(tmp_path / "b.wav", 0.25, 1500.0)
    async with Engine(tmp_path / "home") as engine:
        with engine.subscribe() as events:
            await engine.load_plugins([codec_load()])
            await engine.configure_sink(tap_sink())
            await engine.open_track(TrackRequest("t1", str(tmp_path / "a.wav"), CODEC))
            await engine.open_track(TrackRequest("t2", str(tmp_path / "b.wav"), CODEC))
            await engine.play("t1", paused=True)
            await engine.enqueue("t2")
            assert (await engine.playback()).queued == ("t2",)
            await engine.drop_queued()
            assert (await engine.playback()).queued == ()
            await engine.resume()
            assert (await next_event(events, TrackStarted)).label == "t1"
            assert (await next_event(events, PlaybackIdle)).error is None
            await engine.close_sink("speakers", drain=True)
    played = without_silence(alsa_tap.read(SampleFormat.S16_LE, 2))
    fade = round(0.005 * 48000)  # the resume fades in
    assert played.shape == first.shape and (played[fade:] == first[fade:]).all()


async def test_the_fade_set_when_idle_is_the_fade_of_the_next_play(alsa_tap: TapDevice, tmp_path: Path) -> None:
    first = wav_tone(tmp_path / "a.wav", 0.25, 1000.0)
    fade = round(0.02 * 48000)
    async with Engine(tmp_path / "home") as engine:
        with engine.subscribe() as events:
            await engine.load_plugins([codec_load()])
            await engine.configure_sink(tap_sink())
            await engine.set_fade(0.02)
            await engine.open_track(TrackRequest("t1", str(tmp_path / "a.wav"), CODEC))
            await engine.play("t1", paused=True)
            await engine.resume()
            assert (await next_event(events, PlaybackIdle)).error is None
            await engine.close_sink("speakers", drain=True)
    played = without_silence(alsa_tap.read(SampleFormat.S16_LE, 2))
    assert played.shape == first.shape
    assert (played[fade // 2:fade] != first[fade // 2:fade]).any()  # still fading in after 10 ms
    assert (played[fade:] == first[fade:]).all()


async def test_a_new_generation_reloads_a_plugin_and_tracks_open_with_it(alsa_tap: TapDevice,
                                                                        tmp_path: Path) -> None:
    wav_tone(tmp_path / "a.wav", 0.1)
    async with Engine(tmp_path / "home") as engine:
        assert await engine.load_plugins([codec_load(1)]) == {CODEC: None}
        assert await engine.load_plugins([codec_load(1)]) == {CODEC: None}  # unchanged: kept
        assert await engine.load_plugins([codec_load(2)]) == {CODEC: None}  # reloaded
        info = await engine.open_track(TrackRequest("t1", str(tmp_path / "a.wav"), CODEC))
        assert info.frames == 4800
        assert await engine.load_plugins([]) == {}  # unloaded: no codec to open with
        with pytest.raises(NotFoundError):
            await engine.open_track(TrackRequest("t2", str(tmp_path / "a.wav"), CODEC))
