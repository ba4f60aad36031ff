"""``mfx tui`` in a real terminal: the installed command runs under tmux against a real daemon
playing a generated library; keys go in with ``send-keys``, the screen comes back with
``capture-pane``."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.audio_env import TapDevice
from tests.daemon_harness import REPO
from tests.music_fixtures import TRACKS, build_library, write_song
from tests.player_env import PlayerRig, start_rig, tap_env

__all__ = ["tap_env"]

WAIT = 30.0  # seconds; a safety net, never reached when things work

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


@dataclasses.dataclass
class Terminal:
    socket: str
    session: str = "mfx-tui"

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True,
                              text=True).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session", "-t", self.session],
                              capture_output=True).returncode == 0

    def until(self, what: str, check: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + WAIT
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.05)  # a safety-net poll of the screen, not a synchronisation sleep
        raise AssertionError(f"{what}; the screen:\n{screen}")


@pytest.fixture
def rig(tmp_path: Path, tap_env: TapDevice) -> Iterator[PlayerRig]:
    library = build_library(tmp_path / "music")
    for track in TRACKS[:2]:
        write_song(library.root, dataclasses.replace(track, seconds=20.0))
    yield from start_rig(tmp_path, tap_env, library=library, pacing="auto")


@pytest.fixture
def terminal(rig: PlayerRig, tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(socket=f"mfx-test-{os.getpid()}-{tmp_path.name}")
    env = {"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    command = " ".join([sys.executable, "-m", "mfx.cli", "--home", str(rig.home), "tui"])
    args = ["new-session", "-d", "-s", term.session, "-x", "120", "-y", "40"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    term.tmux(*args, command)
    try:
        yield term
    finally:
        subprocess.run(["tmux", "-L", term.socket, "kill-server"], capture_output=True)


def test_the_terminal_shows_what_plays_and_the_keys_work(rig: PlayerRig, terminal: Terminal) -> None:
    screen = terminal.until("the footer", lambda s: "Library" in s and "Plugins" in s and "Quit" in s)
    assert "nothing playing" in screen
    result = rig.cli("play", "cafe del mar")
    assert result.exit_code == 0, result.output
    terminal.until("the now-playing line", lambda s: "▶ Café Del Mar — Energy 52 · Café Del Mar" in s)

    terminal.keys("Space")
    terminal.until("paused on screen", lambda s: "⏸ Café Del Mar" in s)
    assert rig.call(rig.player.state).status == "paused"

    terminal.keys("5")  # the Now playing view: progress bar, settings, lyrics
    screen = terminal.until("now playing view", lambda s: "paused   volume 100   mode in-order" in s)
    assert "Intro" in screen and "First line" in screen

    terminal.keys("q")
    deadline = time.monotonic() + WAIT
    while terminal.alive() and time.monotonic() < deadline:
        time.sleep(0.05)  # safety-net poll: the session ends when mfx tui exits
    assert not terminal.alive()
