"""Starting an engine process: ``python -m mfx.engine --home H`` in a session of its own, so
that the daemon's end (SIGTERM, SIGKILL, a Ctrl-C to its process group) does not end it,
with its output appended to ``engine.log``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import mfx
from mfx import cpu_affinity
from mfx.engine.paths import EnginePaths

# Where the mfx package lives: put first on the engine's PYTHONPATH, so the engine runs the
# daemon's own code even when mfx runs from a checkout that is not installed.
_ROOT = str(Path(mfx.__file__).resolve().parent.parent)
LOG_ROTATE_BYTES = 10 * 1024 * 1024


def spawn_engine(paths: EnginePaths, *, env: Mapping[str, str], python: str = sys.executable,
                 idle_exit: float | None = None) -> subprocess.Popen[bytes]:
    paths.directory.mkdir(parents=True, exist_ok=True)
    command = [python, "-m", "mfx.engine", "--home", str(paths.home)]
    if idle_exit is not None:
        command += ["--idle-exit", str(idle_exit)]
    _rotate(paths.log)
    environment = dict(env)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, environment.get("PYTHONPATH")) if p)
    with paths.log.open("ab") as log:
        # Its own directory as working directory: the engine outlives the daemon, and should
        # not keep wherever the daemon was started from in use.
        with cpu_affinity.spawning():  # the engine gets every CPU the daemon has
            return subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                    cwd=paths.directory)


def _rotate(log: Path) -> None:
    """Keep one older log beside the current one, so a crash-looping engine cannot fill the
    disk (each start appends to engine.log; a big one becomes engine.log.1)."""
    try:
        if log.stat().st_size > LOG_ROTATE_BYTES:
            log.replace(log.with_name(log.name + ".1"))
    except FileNotFoundError:
        pass


def log_tail(paths: EnginePaths, limit: int = 2000) -> str:
    try:
        data = paths.log.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode(errors="replace").strip()
