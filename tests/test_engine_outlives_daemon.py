"""Music outlives the control plane: `mfx serve` killed mid-song leaves the audio engine
playing, and the next `mfx serve` adopts it without a gap.

Real processes throughout: two `mfx serve` in turn, one audio engine, the paced file tap.
The song is an indexed track (tests/indexed_tracks.py), so "no gap" is read from the tap:
every frame of the song, once, in order.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio_env import TapDevice
from tests.daemon_harness import REPO, SubprocessDaemon, run_cli
from tests.indexed_tracks import RATE, decode, read_tap, write_indexed_song
from tests.player_env import tap_env, tap_sink_manifest, write_manifests

__all__ = ["tap_env"]

PLAYER = "/apis/player.mfx.musicfox.io/v1"
SECONDS = 12.0


def api(home: Path) -> httpx.Client:
    transport = httpx.HTTPTransport(uds=str(home / "mfx.sock"))
    return httpx.Client(transport=transport, base_url="http://mfx", timeout=30.0)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy (the condition, not a fixed sleep)."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        value = check()
        if value:
            return value
        pause.wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def engine_processes(home: Path) -> list[int]:
    """Pids of every audio engine serving ``home``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mfx.engine" in argv and str(home).encode() in argv:
            found.append(int(entry.name))
    return found


def player_state(home: Path) -> dict[str, Any]:
    with api(home) as client:
        response = client.get(PLAYER + "/state")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def ready_transition(home: Path) -> str:
    """When the sink's Ready condition last changed."""
    result = run_cli(home, "get", "sink", "tap", "-o",
                     'jsonpath={.status.conditions[?(@.type=="Ready")].lastTransitionTime}')
    assert result.exit_code == 0 and result.output.strip(), result.output
    return result.output.strip()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    yield home
    for pid in engine_processes(home):
        os.kill(pid, signal.SIGKILL)


def test_a_killed_daemon_leaves_the_music_playing_and_the_next_one_adopts_it(
        tmp_path: Path, home: Path, tap_env: TapDevice) -> None:
    music = tmp_path / "music"
    write_indexed_song(music, 1, SECONDS, "Outlives")
    manifests = write_manifests(tmp_path / "manifests", music, sink=tap_sink_manifest(pacing="auto"))
    first = SubprocessDaemon(home, "--plugin-path", str(REPO / "plugins"), env=tap_env.env).start()
    try:
        assert run_cli(home, "apply", "-f", str(manifests)).exit_code == 0
        for kind in ("pm", "sink"):
            result = run_cli(home, "wait", "--for=condition=Ready", kind, "--all", "--timeout=60s")
            assert result.exit_code == 0, result.output
        with api(home) as client:
            client.post("/apis/mfx.musicfox.io/v1alpha1/pluginmanifests/local-music/call",
                        json={"method": "rescan"}).raise_for_status()
        result = run_cli(home, "play", "Outlives")
        assert result.exit_code == 0, result.output
        wait_for(lambda: player_state(home)["positionSeconds"] >= 2.0, "two seconds of the song")
        engines = engine_processes(home)
        assert len(engines) == 1
        ready_since = ready_transition(home)
    finally:
        first.stop(signal.SIGKILL)

    # The daemon is gone; the engine plays on: the tap keeps growing.
    assert engine_processes(home) == engines
    size = tap_env.file.stat().st_size
    wait_for(lambda: tap_env.file.stat().st_size > size + RATE * 4, "a second more audio in the tap")

    second = SubprocessDaemon(home, "--plugin-path", str(REPO / "plugins"), env=tap_env.env).start()
    try:
        state = wait_for(lambda: (s := player_state(home))["status"] == "playing" and s, "the adopted song")
        assert state["current"]["title"] == "Outlives"
        later = wait_for(lambda: (s := player_state(home))["positionSeconds"] > state["positionSeconds"] and s,
                         "the position to advance")
        assert later["current"]["title"] == "Outlives"
        result = run_cli(home, "now")
        assert "Outlives" in result.output, result.output
        assert engine_processes(home) == engines  # adopted: no second engine
        wait_for(lambda: run_cli(home, "get", "sink", "tap", "-o", "yaml").output.count("observedGeneration"),
                 "the sink to be reconciled by the new daemon")
        assert ready_transition(home) == ready_since, "the sink's Ready did not flap: the device stayed open"
        wait_for(lambda: player_state(home)["status"] == "stopped", "the song to end", timeout=SECONDS * 3)
        assert run_cli(home, "delete", "sink", "tap").exit_code == 0  # drains the device into the tap
    finally:
        second.stop(signal.SIGTERM)
    # Every frame of the song, once, in order: no gap across the daemon's death.
    assert decode(read_tap(tap_env.file)).runs() == [(1, 0, round(SECONDS * RATE))]
