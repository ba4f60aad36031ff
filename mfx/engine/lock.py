"""One engine per home: an exclusive flock on ``engine.lock`` held for the engine's life.

The kernel drops the lock when the process dies however it dies, so a crashed engine never
blocks its successor, and whoever holds it is the engine (its pid is written in the file).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mfx.errors import AlreadyExistsError


class EngineRunningError(AlreadyExistsError, reason="EngineRunning"):
    """Another engine already serves this home."""


class EngineLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise EngineRunningError naming the pid that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_in(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise EngineRunningError(
                f"an audio engine ({who}) already serves {self.path.parent.parent}; it holds "
                f"{self.path}; stop it (kill {holder or '<pid>'}) or use another --home") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_holder(path: Path) -> int | None:
    """The pid holding the engine lock at ``path`` (0 before it wrote it), None when free."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(fd) or 0
        return None
    finally:
        os.close(fd)


def _pid_in(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
