"""The engine's unix socket: bind it (0600, replacing a stale one) and connect to it, at any
path length.

A unix socket address holds at most 107 bytes, and a home can be deeper than that (test
directories often are). A longer path is reached through ``/proc/self/fd/N/<name>``, N an
open descriptor of the socket's directory: the kernel resolves it like the full path.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

MAX_ADDRESS_BYTES = 100


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    if len(os.fsencode(str(path))) <= MAX_ADDRESS_BYTES:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def bind(path: Path) -> socket.socket:
    """A listening, non-blocking socket at ``path`` that only its owner may connect to (the
    caller holds the engine lock, so an existing socket file is a dead engine's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # born 0600: no moment where others may connect
    try:
        with _address(path) as address:
            sock.bind(address)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    sock.listen(16)
    sock.setblocking(False)
    return sock


def connect(path: Path) -> socket.socket:
    """A connected, non-blocking socket to the engine at ``path`` (OSError when none listens:
    FileNotFoundError, ConnectionRefusedError)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _address(path) as address:
            sock.connect(address)  # a unix connect does not wait for the peer to accept
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
