"""``mfx tui``: a key press to the player's change visible on screen, against the CLI.

A real ``mfx serve`` runs as a subprocess. The TUI runs headless under textual's pilot in
this process: one sample is a press of ``=`` or ``-`` (volume +5 / -5) until the now-playing
line on screen shows the new volume (the key goes through the app's bindings, one API
call, and the answer or the state watch repaints the line). Baseline, in the same run: the
same kind of change made by the CLI, ``mfx volume +1`` as a new process, until it exits with
the daemon's answer. Target: the TUI is faster than the CLI round trip (ratio < 1).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Figure, percentile
from mfx.tui.app import MfxTui
from mfx.tui.client import Connection
from tests.daemon_harness import REPO, SubprocessDaemon

TUI_SAMPLES = 60
CLI_SAMPLES = 20
HANG_GUARD = 30.0  # seconds per sample; only against a hang


async def _tui_samples(home: Path) -> list[float]:
    app = MfxTui(Connection(socket=home / "mfx.sock"))
    samples = []
    async with app.run_test(size=(120, 40)) as pilot:
        while "volume" not in app.clock.state:
            await pilot.pause(0.01)
        nowline = app.query_one("#nowline")
        volume = int(app.clock.state["volume"])
        for index in range(TUI_SAMPLES):
            key, volume = ("minus", volume - 5) if index % 2 == 0 else ("equals_sign", volume + 5)
            wanted = f"vol {volume} "
            started = time.perf_counter()
            await pilot.press(key)
            while wanted not in str(nowline.render()):
                if time.perf_counter() - started > HANG_GUARD:
                    raise RuntimeError(f"the screen never showed {wanted!r}")
                await pilot.pause()
            samples.append(time.perf_counter() - started)
    return samples


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
            tui = asyncio.run(_tui_samples(home))
            cli = _cli_samples(home)
        finally:
            daemon.stop()
    figures = []
    for q in (50, 99):
        figures.append(Figure(
            f"mfx tui: key press -> volume change on screen, p{q}", percentile(tui, q) * 1000, "ms",
            baseline_name=f"`mfx volume +1` round trip (new process), p{q}", baseline=percentile(cli, q) * 1000,
            target="ratio < 1 (faster than the CLI)"))
    return figures
