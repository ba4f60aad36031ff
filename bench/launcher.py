"""Time a command from a process of its own, not from the one hosting an in-process daemon.

A benchmark that runs the daemon in its own process and times a command from there (the
``mfx`` CLI, kubectl) waits, as the command ends, for that process's interpreter lock to read
the command's output and take the time; while the daemon's controllers work (right after an
apply) that wait is the controllers' time slices, not the command's. ``run_timed`` starts the
command from a small launcher that does nothing else and reports when the command started and
ended, on the clock ``time.perf_counter`` reads in every process (CLOCK_MONOTONIC on Linux),
so the times can be set against what the daemon saw.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

_LAUNCHER = """\
import subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True)
ended = time.perf_counter()
sys.stdout.buffer.write(done.stdout)
sys.stderr.buffer.write(done.stderr)
sys.stderr.write(f"\\n{started!r} {ended!r}\\n")
sys.exit(done.returncode)
"""


@dataclass(frozen=True)
class Timed:
    started: float  # time.perf_counter() when the command was started
    ended: float  # and when it had ended
    stdout: str

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def run_timed(command: list[str], env: Mapping[str, str] | None = None) -> Timed:
    """Run ``command`` (its output captured) from a launcher process; raises if it fails."""
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], capture_output=True, text=True,
                          env=None if env is None else dict(env))
    head, _, times = done.stderr.rstrip("\n").rpartition("\n")
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, head)
    started, ended = (float(value) for value in times.split())
    return Timed(started, ended, done.stdout)
