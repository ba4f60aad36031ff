"""Playback that never glitches: a minute of music on a real-time device with the default
85 ms buffer while the control plane is hammered.

The device is a private PulseAudio null sink (it consumes audio in real time, as a card
does: tests/audio_env.py). At the same time:
- the control plane applies 1000 objects and then updates all of them (`mfx apply`, a real
  client process);
- the daemon's event loop is blocked for 500 ms, five times, by a call that holds the GIL
  (a C function called through ``ctypes.PyDLL``, which does not release it);
- two busy processes keep both cores loaded.
The audio engine is a process of its own with a real-time writer: it reports zero xruns and
zero writer deadline misses for the whole song. The wait is for the song's end.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from mfx.api.music import PlayerStatus
from tests.audio_env import PrivatePulse, TapDevice, pulse
from tests.daemon_harness import mfx_command
from tests.music_fixtures import LibraryLayout, Track, tag
from tests.player_env import PlayerRig, start_rig

__all__ = ["pulse"]

SONG_SECONDS = 62.0
RATE = 48000
OBJECTS = 1000
STALLS = 5


def write_song(root: Path) -> None:
    path = root / "Long Minute.flac"
    root.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SONG_SECONDS * RATE), dtype=np.float32) / RATE
    mono = (0.2 * np.sin(2 * np.pi * 330.0 * t)).astype(np.float32)
    sf.write(path, np.stack([mono, mono], axis=1), RATE, subtype="PCM_16", format="FLAC")
    tag(path, Track(path.name, "Long Minute", ("Load",), "Load", 1))


def manifests(directory: Path, generation: int) -> Path:
    """OBJECTS suspended PluginManifests (stored and reconciled, no process started)."""
    directory.mkdir(parents=True, exist_ok=True)
    docs = [{"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
             "metadata": {"name": f"load-{i:04d}", "labels": {"round": str(generation)}},
             "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python:none", "suspend": True,
                      "interfaces": ["MusicSource"]}} for i in range(OBJECTS)]
    path = directory / f"round-{generation}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def hold_the_gil(seconds: float) -> None:
    """Block the calling event loop with the GIL held: usleep through PyDLL keeps it."""
    libc = ctypes.PyDLL("libc.so.6")
    libc.usleep(int(seconds * 1_000_000))


@pytest.fixture
def rig(tmp_path: Path, pulse: PrivatePulse) -> Iterator[PlayerRig]:
    library = LibraryLayout(root=tmp_path / "music")
    write_song(library.root)
    device = TapDevice(config=pulse.alsa_config(), file=tmp_path / "unused.raw")
    yield from start_rig(tmp_path, device, library=library, pacing="auto", rate=RATE)


@pytest.mark.soak
def test_a_minute_of_music_with_no_xrun_while_the_control_plane_is_hammered(rig: PlayerRig, tmp_path: Path) -> None:
    song = next(s for s in rig.songs("Long Minute") if s.title == "Long Minute")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    churn_errors: list[str] = []

    def churn() -> None:
        env_home = ["--home", str(rig.home)]
        for generation in (1, 2):
            done = subprocess.run([*mfx_command(), *env_home, "apply", "-f", str(manifests(tmp_path / "load", generation))],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                churn_errors.append(done.stdout + done.stderr)

    try:
        rig.call(rig.player.add, [song])
        rig.call(rig.player.play, 0)
        churner = threading.Thread(target=churn)
        churner.start()
        for _ in range(STALLS):
            rig.call(hold_the_gil, 0.5)  # runs on the daemon's event loop
        churner.join()
        assert not churn_errors, churn_errors
        view = rig.wait(lambda v: v.status is PlayerStatus.STOPPED and v.tracks_started == 1,
                        timeout=SONG_SECONDS * 3)
        assert view.last_error is None
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    # The load happened while the song played ...
    listed = subprocess.run([*mfx_command(), "--home", str(rig.home), "get", "pm", "-l", "round=2", "-o", "name"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert len(listed) == OBJECTS
    # ... and the device never ran dry, nor was the writer ever late.
    report = rig.sink_report()
    assert report.frames_written >= SONG_SECONDS * RATE * 0.99
    assert report.xruns == 0, (report.xrun_causes, report.silence_frames)
    assert report.deadline_misses == 0, report
    assert report.actual is not None and report.actual.buffer_frames == 4 * 1024
