"""One daemon per home: an exclusive lock on ``$MFX_HOME/mfx.lock``."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mfx.errors import DaemonAlreadyRunningError


class HomeLock:
    """Held for the daemon's lifetime; the kernel releases it if the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_in(fd)
            os.close(fd)
            raise in_use_error(self.path.parent, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def holder(self) -> int | None:
        """The pid of the daemon holding the lock (0 when it has not written it yet), or None
        when no daemon does. Changes nothing: a home without a lock file stays without one."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                # A shared lock is refused only while a daemon holds the exclusive one.
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _pid_in(fd) or 0
            return None
        finally:
            os.close(fd)  # also drops the shared lock

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def in_use_error(home: Path, pid: int | None) -> DaemonAlreadyRunningError:
    """What to tell someone who wants a daemon on ``home`` while another one serves it."""
    who = f"pid {pid}" if pid else "the process holding its lock"
    stop = f"kill {pid}" if pid else f"stop the process holding {home / 'mfx.lock'}"
    return DaemonAlreadyRunningError(
        f"another mfx daemon ({who}) already serves {home}; use it (export MFX_HOME={home}; mfx get all), "
        f"or stop it ({stop}, or Ctrl-C where it runs) and start again; a second daemon needs "
        "another home (--home)")


def _pid_in(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
