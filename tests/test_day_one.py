"""Day one on a machine without a sound card: the README's commands, as a new user runs them.

- ``mfx serve`` plays into an ALSA file tap under ``$MFX_HOME/audio`` by itself, says where
  and how to listen, and ``mfx describe sink default`` shows it; ``--no-file-tap`` and an
  explicit ``ALSA_CONFIG_PATH`` turn it off, and a missing device then names its cause.
- ``make run`` (``mfx demo``) refuses a home another daemon serves, before touching it.
- local-music's default folder is ``$MFX_HOME/music``, where ``make run`` puts its demo
  track, so re-applying ``plugins/`` keeps playing it.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mfx.audio.file_tap import FileTap, has_sound_card
from tests.audio_env import write_tap_config
from tests.daemon_harness import REPO, SubprocessDaemon, mfx_command, run_cli
from tests.music_fixtures import Track, write_song

pytestmark = pytest.mark.skipif(has_sound_card(), reason="this machine has a sound card: no file tap is made")

SONG = Track("morning-tune.flac", "Morning Tune", ("mfx",), "Demo", seconds=1.0)
SONG_BYTES = 48000 * 2 * 2  # one second, as the sink writes it: 48 kHz, S16_LE, stereo


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _daemon(home: Path, *extra: str, env: dict[str, str] | None = None) -> SubprocessDaemon:
    daemon = SubprocessDaemon(home, "--plugin-path", str(REPO / "plugins"), *extra, env=env)
    if env is None or "ALSA_CONFIG_PATH" not in env:
        daemon.env.pop("ALSA_CONFIG_PATH", None)  # a new user's shell has none
    return daemon


@pytest.fixture
def serving(home: Path) -> Iterator[SubprocessDaemon]:
    daemon = _daemon(home).start()
    try:
        yield daemon
    finally:
        daemon.stop()


def _ok(home: Path, *args: str) -> str:
    result = run_cli(home, *args)
    assert result.exit_code == 0, result.output
    return result.output


def _ready_condition(home: Path, kind: str, name: str) -> dict[str, str]:
    obj = yaml.safe_load(_ok(home, "get", kind, name, "-o", "yaml"))
    return next(c for c in obj["status"]["conditions"] if c["type"] == "DeviceOpen" or c["type"] == "Ready")


def _wait_for_size(path: Path, size: int) -> None:
    """Until the unpaced tap holds ``size`` bytes (the player writes it at decode speed)."""
    tick = threading.Event()
    for _ in range(1200):
        if path.exists() and path.stat().st_size >= size:
            return
        tick.wait(0.05)
    raise AssertionError(f"{path} never reached {size} bytes")


def test_the_readme_tour_plays_into_a_file_tap(home: Path, serving: SubprocessDaemon) -> None:
    write_song(home / "music", SONG)  # where `make run` puts its demo track
    _ok(home, "apply", "-f", str(REPO / "manifests"))
    _ok(home, "apply", "-R", "-f", str(REPO / "plugins"))
    _ok(home, "wait", "--for=condition=Ready", "pm", "--all", "--timeout=2m")
    _ok(home, "wait", "--for=condition=Ready", "sink/default", "--timeout=60s")

    tap = FileTap.under(home)
    described = _ok(home, "describe", "sink", "default")
    assert str(tap.output) in described and f"aplay -f S16_LE -r 48000 -c 2 {tap.output}" in described
    assert "Morning Tune" in _ok(home, "play", "morning")  # from the default folder, unpatched
    _wait_for_size(tap.output, SONG_BYTES)

    serving.stop()
    said = serving.output()
    assert f"plays into the ALSA file tap {tap.output}" in said
    assert f"listen with: aplay -f S16_LE -r 48000 -c 2 {tap.output}" in said


def test_without_the_file_tap_a_missing_device_names_the_cause(home: Path) -> None:
    daemon = _daemon(home, "--no-file-tap").start()
    try:
        _ok(home, "apply", "-f", str(REPO / "manifests"))
        _ok(home, "wait", "--for=condition=Stalled", "sink/default", "--timeout=60s")
        cond = _ready_condition(home, "sink", "default")
        assert cond["reason"] == "DeviceNotFound"
        message = cond["message"]
        assert "no sound card" in message and "ALSA_CONFIG_PATH is not set" in message
        assert "without --no-file-tap" in message
        assert not (home / "audio").exists()
    finally:
        daemon.stop()


def test_an_explicit_alsa_config_wins(home: Path, tmp_path: Path) -> None:
    chosen = write_tap_config(tmp_path)
    daemon = _daemon(home, env=chosen.env).start()
    try:
        _ok(home, "apply", "-f", str(REPO / "manifests"))
        _ok(home, "wait", "--for=condition=Ready", "sink/default", "--timeout=60s")
        assert "file tap" not in _ok(home, "describe", "sink", "default")
        assert not (home / "audio").exists()
    finally:
        daemon.stop()
    assert "file tap" not in daemon.output()


def test_a_device_the_file_tap_lacks_says_which_it_has(home: Path, serving: SubprocessDaemon) -> None:
    sink = yaml.safe_load((REPO / "manifests" / "audiosink.yaml").read_text())
    sink["spec"]["device"] = "hw:0"
    result = run_cli(home, "apply", "-f", "-", input=yaml.safe_dump(sink))
    assert result.exit_code == 0, result.output
    _ok(home, "wait", "--for=condition=Stalled", "sink/default", "--timeout=60s")
    message = _ready_condition(home, "sink", "default")["message"]
    assert "'hw:0' not found" in message and "set spec.device to 'default'" in message


def test_a_second_serve_says_who_serves_the_home(home: Path, serving: SubprocessDaemon) -> None:
    second = subprocess.run([*mfx_command(), "serve", "--home", str(home)], capture_output=True, text=True,
                            timeout=60)
    assert second.returncode != 0
    pid = serving.process.pid if serving.process else 0
    assert f"pid {pid}" in second.stderr and f"kill {pid}" in second.stderr
    assert f"export MFX_HOME={home}" in second.stderr


def test_make_run_refuses_a_home_another_daemon_serves(home: Path, serving: SubprocessDaemon) -> None:
    sink = yaml.safe_load((REPO / "manifests" / "audiosink.yaml").read_text())
    sink["spec"]["periodFrames"] = 2048  # the user's own change, which the demo must not revert
    result = run_cli(home, "apply", "-f", "-", input=yaml.safe_dump(sink))
    assert result.exit_code == 0, result.output
    # Open: the audio engine (started for the first sink) has its folder in the home by then.
    _ok(home, "wait", "--for=condition=Ready", "sink/default", "--timeout=60s")
    before = yaml.safe_load(_ok(home, "get", "sink", "default", "-o", "yaml"))
    listing = sorted(p.name for p in home.iterdir())

    demo = subprocess.run([*mfx_command(), "demo", "--home", str(home), "--repo", str(REPO), "--once"],
                          env={**os.environ, "MFX_HOME": str(home)}, capture_output=True, text=True,
                          timeout=300)

    assert demo.returncode != 0
    pid = serving.process.pid if serving.process else 0
    assert f"pid {pid}" in demo.stderr and f"kill {pid}" in demo.stderr and str(home) in demo.stderr
    after = yaml.safe_load(_ok(home, "get", "sink", "default", "-o", "yaml"))
    # The generation counts writes of the spec; the controller may write the status meanwhile.
    assert (after["metadata"]["generation"], after["spec"]) == (before["metadata"]["generation"], before["spec"])
    made = {p.name for p in home.iterdir()} - set(listing)  # the daemon's own files come and go
    assert not made & {"player.yaml", "music", "daemon.log"}, made  # the demo made nothing
    assert serving.process is not None and serving.process.poll() is None


def test_reapplying_the_plugins_after_make_run_keeps_its_music(home: Path) -> None:
    demo = subprocess.run([*mfx_command(), "demo", "--home", str(home), "--repo", str(REPO), "--once",
                           "--metrics-address", "127.0.0.1:0"],
                          env={k: v for k, v in os.environ.items() if k not in ("ALSA_CONFIG_PATH", "MFX_MUSIC_DIR")},
                          capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "pointing local-music" not in demo.stdout  # nothing to patch: the default folder has it
    assert "the sink wrote" in demo.stdout

    daemon = _daemon(home).start()
    try:
        _ok(home, "apply", "-R", "-f", str(REPO / "plugins"))
        _ok(home, "wait", "--for=condition=Ready", "pm", "--all", "--timeout=2m")
        assert "Morning Tune" in _ok(home, "search", "morning")
    finally:
        daemon.stop()
