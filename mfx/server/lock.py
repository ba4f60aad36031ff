"""One daemon per home: an exclusive lock on ``$MFX_HOME/mfx.lock``."""

from __future__ import annotations

from pathlib import Path

from mfx.errors import DaemonAlreadyRunningError
from mfx.pid_lock import PidLock


class HomeLock:
    """Held for the daemon's lifetime; the kernel releases it if the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = PidLock(path)

    def acquire(self) -> None:
        holder = self._lock.try_acquire()
        if holder is not None:
            raise in_use_error(self.path.parent, holder or None)

    def holder(self) -> int | None:
        """The pid of the daemon holding the lock (0 when it has not written it yet), or None
        when no daemon does. Changes nothing: a home without a lock file stays without one."""
        return self._lock.holder()

    def release(self) -> None:
        self._lock.release()


def in_use_error(home: Path, pid: int | None) -> DaemonAlreadyRunningError:
    """What to tell someone who wants a daemon on ``home`` while another one serves it."""
    who = f"pid {pid}" if pid else "the process holding its lock"
    stop = f"kill {pid}" if pid else f"stop the process holding {home / 'mfx.lock'}"
    return DaemonAlreadyRunningError(
        f"another mfx daemon ({who}) already serves {home}; use it (export MFX_HOME={home}; mfx get all), "
        f"or stop it ({stop}, or Ctrl-C where it runs) and start again; a second daemon needs "
        "another home (--home)")

