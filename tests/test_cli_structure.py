"""The shape of the mfx command line: every verb has one meaning."""

from __future__ import annotations

from pathlib import Path

from tests.daemon_harness import run_cli


def test_resume_is_for_objects_and_play_continues_playback(tmp_path: Path) -> None:
    bare = run_cli(tmp_path, "resume")
    assert bare.exit_code == 1
    assert "name the objects to resume" in bare.output and "mfx play" in bare.output
    assert "mfx play continues" in run_cli(tmp_path, "pause", "--help").output
    assert "mfx resume gitsource/plugins" in run_cli(tmp_path, "resume", "--help").output
