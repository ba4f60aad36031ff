"""Pause, resume, seek and gapless track changes are sample-exact on the paced file tap.

The tap records every frame the device was given. With ``fade_seconds=0`` the pipeline
neither fades nor keeps a faded frame at a cut, so the tap must hold the track's own samples
(to_s16, computed without mfx), cut and joined exactly at the frames the pipeline reports.
The ring holds a second of audio: the producer stays far ahead of the paced device, so no
silence is padded in (checked), except after a seek while playing, where the ring is empty
until the producer catches up; there the tone's frames, which are never all zero, are told
from counted silence.

Tests wait on the sink's reported state (``SinkEngine.wait_until``), never on sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from mfx.audio import DeviceParams, Pacing, Pipeline, SampleFormat, SinkEngine, SinkStatus, StreamId
from tests.audio_env import TapDevice, alsa_tap, tone
from tests.audio_streams import ArrayStream, producing, to_s16, without_silence

__all__ = ["alsa_tap"]  # the fixture, imported for pytest

RATE = 48000
WAIT = 60.0  # seconds; a safety net, never reached when things work
S16 = SampleFormat.S16_LE


@pytest.fixture
def paced_tap(alsa_tap: TapDevice) -> Iterator[tuple[SinkEngine, TapDevice]]:
    engine = SinkEngine("tap", DeviceParams(rate=RATE, period_frames=1024, periods=4),
                        pacing=Pacing.AUTO, ring_frames=RATE)
    engine.start()
    assert engine.paced
    try:
        yield engine, alsa_tap
    finally:
        engine.close(drain=False)


def wait(engine: SinkEngine, predicate: object) -> SinkStatus:
    status = engine.wait_until(predicate, timeout=WAIT)  # type: ignore[arg-type]
    assert status is not None, f"the sink never got there: {engine.status()}"
    return status


def finish(engine: SinkEngine, tap: TapDevice) -> tuple[np.ndarray, SinkStatus]:
    status = engine.close(drain=True)
    return tap.read(S16, 2), status


def pause_after(engine: SinkEngine, pipeline: Pipeline, frames: int) -> tuple[int, SinkStatus]:
    """Pause once the device has played ``frames``; the pause frame and the sink once idle."""
    wait(engine, lambda s: s.played_frames >= frames)
    paused = pipeline.pause()
    assert paused is not None
    idle = wait(engine, lambda s: s.idles >= 1)
    return paused, idle


def test_pause_and_resume_continue_at_the_next_sample(paced_tap: tuple[SinkEngine, TapDevice]) -> None:
    engine, tap = paced_tap
    track = tone(1000, 2.5)
    segments: list[StreamId] = []
    pipeline = Pipeline(engine, fade_seconds=0, on_track_start=lambda _, stream: segments.append(stream))
    pipeline.enqueue(ArrayStream(track, RATE), "a")
    with producing(pipeline) as producer:
        paused, idle = pause_after(engine, pipeline, RATE // 2)
        assert RATE // 2 <= paused < len(track)
        assert pipeline.paused_frame == paused == pipeline.position_frame()
        # The device got exactly the frames before the pause frame, and has played them all.
        assert idle.frames_written - idle.silence_frames == paused
        heard = engine.stream_position(segments[0])
        assert heard.frames_at_device == heard.frames_played == paused
        pipeline.resume()
        producer.join(WAIT)
        wait(engine, lambda s: s.idles >= 2)
    played, status = finish(engine, tap)
    expected = to_s16(track)
    assert status.silence_frames == 0 and len(played) == len(expected)
    np.testing.assert_array_equal(played[paused - 1:paused + 1], expected[paused - 1:paused + 1])
    np.testing.assert_array_equal(played, expected)


def test_pause_with_fades_keeps_every_frame_in_its_place(paced_tap: tuple[SinkEngine, TapDevice]) -> None:
    engine, tap = paced_tap
    track = tone(1000, 2.5)
    fade = round(RATE * 0.005)
    pipeline = Pipeline(engine, fade_seconds=0.005)
    pipeline.enqueue(ArrayStream(track, RATE), "a")
    with producing(pipeline) as producer:
        paused, idle = pause_after(engine, pipeline, RATE // 2)
        assert idle.frames_written == paused  # the faded-out frames before it played too
        pipeline.resume()
        producer.join(WAIT)
        wait(engine, lambda s: s.idles >= 2)
    played, status = finish(engine, tap)
    expected = to_s16(track)
    # Nothing lost or repeated: only the fade-out before the pause frame and the fade-in
    # after it differ from the track.
    assert status.silence_frames == 0 and len(played) == len(expected)
    np.testing.assert_array_equal(played[:paused - fade], expected[:paused - fade])
    np.testing.assert_array_equal(played[paused + fade:], expected[paused + fade:])
    assert np.all(np.abs(played[paused - fade:paused + fade].astype(int))
                  <= np.abs(expected[paused - fade:paused + fade].astype(int)))


def test_seek_while_paused_lands_on_the_requested_sample(paced_tap: tuple[SinkEngine, TapDevice]) -> None:
    engine, tap = paced_tap
    track = tone(1000, 2.5)
    target = RATE + 12345
    pipeline = Pipeline(engine, fade_seconds=0)
    pipeline.enqueue(ArrayStream(track, RATE), "a")
    with producing(pipeline) as producer:
        paused, _ = pause_after(engine, pipeline, RATE // 4)
        assert pipeline.seek_frame(target) is not None
        assert pipeline.paused_frame == target == pipeline.position_frame()
        pipeline.resume()
        producer.join(WAIT)
        wait(engine, lambda s: s.idles >= 2)
    played, status = finish(engine, tap)
    expected = to_s16(track)
    assert status.silence_frames == 0
    np.testing.assert_array_equal(played, np.concatenate([expected[:paused], expected[target:]]))


def test_seek_while_playing_lands_on_the_requested_sample(paced_tap: tuple[SinkEngine, TapDevice]) -> None:
    engine, tap = paced_tap
    track = tone(1000, 2.5)
    target = 3 * RATE // 2 + 7
    pipeline = Pipeline(engine, fade_seconds=0)
    pipeline.enqueue(ArrayStream(track, RATE), "a")
    with producing(pipeline) as producer:
        wait(engine, lambda s: s.played_frames >= RATE // 4)
        stream = pipeline.seek_frame(target)
        assert stream is not None
        wait(engine, lambda s: engine.stream_position(stream).frames_at_device > 0)
        assert pipeline.position_frame() >= target  # type: ignore[operator]
        producer.join(WAIT)
        wait(engine, lambda s: s.idles >= 1)
    played, status = finish(engine, tap)
    expected = to_s16(track)
    audio, _ = without_silence(played)
    assert len(played) - len(audio) == status.silence_frames
    cut = len(audio) - (len(expected) - target)  # where the seek cut the first run
    assert RATE // 4 <= cut < target
    np.testing.assert_array_equal(audio[:cut], expected[:cut])
    np.testing.assert_array_equal(audio[cut:], expected[target:])


def test_gapless_tracks_meet_sample_exactly_on_the_paced_tap(paced_tap: tuple[SinkEngine, TapDevice]) -> None:
    engine, tap = paced_tap
    first = tone(1000, 0.37)  # lengths that are not multiples of a block or a period
    second = tone(700, 0.41, amplitude=0.3)
    pipeline = Pipeline(engine, fade_seconds=0)
    pipeline.enqueue(ArrayStream(first, RATE), "a")
    pipeline.enqueue(ArrayStream(second, RATE), "b")
    seen: list[tuple[str, int]] = []

    def note_position(status: SinkStatus) -> bool:
        position = pipeline.played_position()
        if position is not None:
            seen.append((position.label, position.frame))
        return status.idles >= 1

    with producing(pipeline) as producer:
        producer.join(WAIT)  # both tracks produced long before the device is through with "a"
        wait(engine, note_position)
        end = pipeline.played_position()
    # The position names the track the device plays: "a" to its end, then "b".
    labels = [label for label, _ in seen]
    switch = labels.index("b")
    assert set(labels[:switch]) == {"a"} and set(labels[switch:]) == {"b"}
    assert all(0 <= frame <= len(first) for _, frame in seen[:switch])
    assert [frame for _, frame in seen] == sorted(frame for _, frame in seen[:switch]) + \
        sorted(frame for _, frame in seen[switch:])
    assert end is not None and (end.label, end.frame) == ("b", len(second))
    played, status = finish(engine, tap)
    expected = to_s16(np.concatenate([first, second]))
    assert status.silence_frames == 0 and len(played) == len(expected)
    last_of_a, first_of_b = len(first) - 1, len(first)
    np.testing.assert_array_equal(played[last_of_a], to_s16(first[-1:])[0])
    np.testing.assert_array_equal(played[first_of_b], to_s16(second[:1])[0])
    np.testing.assert_array_equal(played, expected)
