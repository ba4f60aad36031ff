"""``python -m bench player``'s measuring path: its drained sink stands in for the sink engine
wherever the player's pipeline uses one, so the benchmark runs as ``make bench`` runs it."""

from __future__ import annotations

from pathlib import Path

from bench import bench_player
from tests.audio_env import load_soundfile_codec, tone, write_audio


def test_a_second_of_music_goes_through_the_player_path(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a.flac", tone(440.0, 1.0, rate=44100), 44100, "FLAC", "PCM_16")
    speed = bench_player._through_player_path(load_soundfile_codec(), path, [])
    assert speed > 0
