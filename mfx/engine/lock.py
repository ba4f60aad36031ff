"""One engine per home: an exclusive flock on ``engine.lock`` held for the engine's life.

The kernel drops the lock when the process dies however it dies, so a crashed engine never
blocks its successor, and whoever holds it is the engine (its pid is written in the file).
"""

from __future__ import annotations

from pathlib import Path

from mfx.errors import AlreadyExistsError
from mfx.pid_lock import PidLock


class EngineRunningError(AlreadyExistsError, reason="EngineRunning"):
    """Another engine already serves this home."""


class EngineLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = PidLock(path)

    def acquire(self) -> None:
        """Take the lock or raise EngineRunningError naming the pid that holds it."""
        holder = self._lock.try_acquire()
        if holder is None:
            return
        who = f"pid {holder}" if holder else "another process"
        raise EngineRunningError(
            f"an audio engine ({who}) already serves {self.path.parent.parent}; it holds "
            f"{self.path}; stop it (kill {holder or '<pid>'}) or use another --home")

    def release(self) -> None:
        self._lock.release()


def lock_holder(path: Path) -> int | None:
    """The pid holding the engine lock at ``path`` (0 before it wrote it), None when free."""
    return PidLock(path).holder()
