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
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DaemonAlreadyRunningError(
                f"another mfx daemon (pid {holder}) already serves {self.path.parent}; "
                "stop it first, or start this one with a different --home"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
