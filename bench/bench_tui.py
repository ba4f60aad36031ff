"""``mfx tui``: a key press to the player's change visible on screen, against the CLI.

A real ``mfx serve`` runs as a subprocess. The TUI runs headless (textual's test driver) in
this process: one sample is a key event for ``=`` or ``-`` (volume +5 / -5), handed to the
driver as a terminal's input would be, until the now-playing line shows the new volume (the
key goes through the app's bindings, one API call, and the answer or the state watch
updates the line; the next frame paints it). Baseline, in the same run: the
same kind of change made by the CLI, ``mfx volume +1`` as a new process, until it exits with
the daemon's answer. Target: the TUI is faster than the CLI round trip (ratio < 1).
For scale, the pilot's ``press()`` of a key bound to nothing is printed too.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textual import events

from bench.common import Figure, percentile
from mfx.tui.app import MfxTui
from mfx.tui.client import Connection
from tests.daemon_harness import REPO, SubprocessDaemon

TUI_SAMPLES = 60
CLI_SAMPLES = 20
HANG_GUARD = 30.0  # seconds per sample; only against a hang


async def _tui_samples(home: Path) -> tuple[list[float], list[float]]:
    app = MfxTui(Connection(socket=home / "mfx.sock"))
    samples = []
    idle = []
    async with app.run_test(size=(120, 40)) as pilot:
        while "volume" not in app.clock.state:
            await pilot.pause(0.01)
        nowline = app.query_one("#nowline")
        volume = int(app.clock.state["volume"])
        driver = app._driver
        assert driver is not None
        for index in range(TUI_SAMPLES):
            key, char, volume = ("minus", "-", volume - 5) if index % 2 == 0 else ("equals_sign", "=", volume + 5)
            wanted = f"vol {volume} "
            event = events.Key(key, char)
            event.set_sender(app)
            started = time.perf_counter()
            driver.send_message(event)  # what the terminal driver does when the key arrives
            while wanted not in str(nowline.render()):
                if time.perf_counter() - started > HANG_GUARD:
                    raise RuntimeError(f"the screen never showed {wanted!r}")
                await asyncio.sleep(0.0005)
            samples.append(time.perf_counter() - started)
            await pilot.pause()  # let the screen settle before the next sample
        for _ in range(TUI_SAMPLES // 2):  # the pilot's own cost: it waits for the screen to settle
            started = time.perf_counter()
            await pilot.press("x")  # bound to nothing
            idle.append(time.perf_counter() - started)
    return samples, idle


def _cli_samples(home: Path) -> list[float]:
    samples = []
    command = [sys.executable, "-m", "mfx.cli", "--home", str(home), "volume"]
    for index in range(CLI_SAMPLES):
        started = time.perf_counter()
        subprocess.run([*command, "-1" if index % 2 == 0 else "+1"], check=True, capture_output=True, cwd=REPO)
        samples.append(time.perf_counter() - started)
    return samples


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="mfx-bench-tui-") as directory:
        home = Path(directory) / "home"
        home.mkdir()
        daemon = SubprocessDaemon(home).start()
        try:
            tui, idle = asyncio.run(_tui_samples(home))
            cli = _cli_samples(home)
        finally:
            daemon.stop()
    figures = []
    for q in (50, 99):
        figures.append(Figure(
            f"mfx tui: key press -> volume change on screen, p{q}", percentile(tui, q) * 1000, "ms",
            baseline_name=f"`mfx volume +1` round trip (new process), p{q}", baseline=percentile(cli, q) * 1000,
            target="ratio < 1 (faster than the CLI)"))
    figures.append(Figure("for scale: textual pilot's press() of an unbound key (waits for the screen to settle), p50",
                          percentile(idle, 50) * 1000, "ms"))
    return figures
