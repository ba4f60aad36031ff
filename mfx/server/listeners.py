"""Sockets the API is served on, and the uvicorn servers around them.

The sockets are bound here rather than by uvicorn, because uvicorn makes a unix socket
world-writable (0666); ours must be 0600 from the moment it exists.

A TCP listener faces clients that need not be friendly, before any token is checked. uvicorn
closes a connection idle between requests (keep-alive timeout), but not one that never
finishes a request head (an idle connect, a slowloris trickle), and it accepts connections
without bound. So every TCP listener has a ``ConnectionGate``: at most
``max_connections`` open at once (more are closed at accept, before they cost anything but
the accept), and a connection that has not completed a request head within
``request_head_timeout`` of opening or of its previous request is closed. Each listener has
its own gate and the unix socket none, so whatever happens on TCP, the owner's ``mfx``
commands over the socket still get through. On the HTTPS listener the TLS handshake counts as
part of the request head (``mfx.server.tls_listener``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("mfx.server.listeners")


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 256  # per TCP listener
    request_head_timeout: float = 10.0  # seconds to send a whole request head (and a TLS handshake)
    # Seconds a TLS connection being closed waits for the client's close_notify: asyncio's
    # default (30 s) would let a client that never answers keep its place that long.
    tls_close_timeout: float = 5.0


class ConnectionSlot:
    """One admitted connection's place in its gate; released exactly once."""

    def __init__(self, gate: ConnectionGate) -> None:
        self._gate = gate
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._gate.open -= 1


class ConnectionGate:
    """Counts a listener's open connections against its limits."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open = 0
        self.refused = 0

    def admit(self) -> ConnectionSlot | None:
        if self.open >= self.limits.max_connections:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("TCP listener at its limit of %d connections: refused %d so far",
                            self.limits.max_connections, self.refused)
            return None
        self.open += 1
        return ConnectionSlot(self)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol under a ``ConnectionGate``."""

    def __init__(self, *args: Any, gate: ConnectionGate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate
        self.slot: ConnectionSlot | None = None  # set when TLS admitted it at accept, before the handshake
        self._refused = False
        self._last_progress = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self.slot is None:
            self.slot = self.gate.admit()
            if self.slot is None:
                self._refused = True
                transport.abort()
                return
        super().connection_made(transport)
        self._last_progress = self.loop.time()
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._note_progress()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        if self._timer is not None:
            self._timer.cancel()
        if self.slot is not None:
            self.slot.release()
        super().connection_lost(exc)

    def _note_progress(self) -> None:
        # IDLE: no request head completed since the connection opened or the last request.
        if self.conn.their_state is not h11.IDLE:
            self._last_progress = self.loop.time()

    def _arm(self) -> None:
        # A few checks per timeout: a connection is closed between 1 and 1.25 timeouts idle.
        self._timer = self.loop.call_later(self.gate.limits.request_head_timeout / 4, self._check)

    def _check(self) -> None:
        if self.transport.is_closing():
            return
        self._note_progress()
        if self.loop.time() - self._last_progress >= self.gate.limits.request_head_timeout:
            self.transport.abort()  # no complete request head in time: idle or a slow trickle
            return
        self._arm()


def bind_unix(path: Path) -> socket.socket:
    """Bind a 0600 unix socket at ``path``, replacing a stale one left by a dead daemon."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where others may connect
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r} is not HOST:PORT (example: 127.0.0.1:8443)")
    return host or "127.0.0.1", int(port)


def bind_tcp(address: str) -> socket.socket:
    host, port = parse_address(address)
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it Nagle holds a response's body behind its headers for a delayed ACK (40 ms).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def write_listen_address(path: Path, sock: socket.socket) -> None:
    """Record the address a TCP listener is bound to (the real port, even for ``:0``)."""
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    path.write_text(f"{host}:{port}\n")


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the daemon."""

    gate: ConnectionGate | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def make_server(app: Any, *, limits: ConnectionLimits | None = None) -> QuietServer:
    """A uvicorn server for ``app``; with ``limits`` (every TCP listener), its connections
    go through a ``ConnectionGate`` of their own (``server.gate``)."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
        http="h11",
    )
    server = QuietServer(config)
    if limits is not None:
        config.load()
        server.gate = ConnectionGate(limits)
        config.http_protocol_class = functools.partial(GuardedH11Protocol, gate=server.gate)
    return server
