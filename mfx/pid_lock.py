"""An exclusive flock on a file that names its holder: one process per job (a daemon per
home, an audio engine per home).

The kernel drops the lock when its process dies however it dies, so a crashed holder never
blocks its successor; the holder writes its pid into the file so the next one can name it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class PidLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> int | None:
        """Take the lock: None when taken, else the pid holding it (0 before it wrote it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_in(fd)
            os.close(fd)
            return holder or 0
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return None

    def holder(self) -> int | None:
        """The pid holding the lock (0 before it wrote it), or None when nobody does.
        Changes nothing: a missing lock file stays missing."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                # A shared lock is refused only while someone holds the exclusive one.
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


def _pid_in(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
