"""TLS on the HTTPS listener: each connection is admitted by the listener's ``ConnectionGate``
at accept, its TLS handshake is bounded by the request-head timeout, and only then does the
HTTP protocol take it over.

uvicorn's own TLS (``ssl_context_factory``) would hand the handshake to asyncio with its default
timeout of a minute and call the HTTP protocol only once the handshake is done, so a client
stalling in the handshake would neither count against ``max_connections`` nor be cut at the
head timeout. ``loop.start_tls`` upgrades the accepted connection instead, with the timeout
and the gate's slot in hand from the first byte.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from mfx.server.listeners import ConnectionGate, ConnectionSlot, GuardedH11Protocol, QuietServer


class _TlsHandshake(asyncio.Protocol):
    """One connection from accept until its handshake completes; then ``inner`` has it.

    While ``start_tls`` runs, this protocol is the TLS layer's application protocol: bytes
    decrypted before the HTTP protocol takes over (a client that sends its request with the
    end of its handshake) are kept here and handed on, none lost.
    """

    def __init__(self, inner: GuardedH11Protocol, context: ssl.SSLContext, gate: ConnectionGate) -> None:
        self._inner = inner
        self._context = context
        self._gate = gate
        self._slot: ConnectionSlot | None = None
        self._early: list[bytes] = []
        self._eof = False
        self._lost = False
        # A protocol callback has no task group to start in: the handshake task belongs to this
        # connection, and the reference keeps it alive until it ends.
        self._handshake: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._slot = self._gate.admit()
        if self._slot is None:
            transport.abort()
            return
        self._inner.slot = self._slot
        transport.pause_reading()  # the ClientHello is for the TLS layer start_tls puts in place
        self._handshake = asyncio.get_running_loop().create_task(self._upgrade(transport))

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        assert self._slot is not None
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(transport, self, self._context, server_side=True,
                                       ssl_handshake_timeout=self._gate.limits.request_head_timeout,
                                       ssl_shutdown_timeout=self._gate.limits.tls_close_timeout)
        except asyncio.CancelledError:
            self._slot.release()  # start_tls closed the connection
            raise
        except Exception:  # failed, reset or too slow: start_tls closed the connection
            self._slot.release()
            return
        if tls is None or self._lost:
            self._slot.release()
            return
        tls.set_protocol(self._inner)
        self._inner.connection_made(tls)  # type: ignore[arg-type]
        for data in self._early:
            self._inner.data_received(data)
        if self._eof:
            self._inner.eof_received()

    def data_received(self, data: bytes) -> None:
        self._early.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return True  # keep the connection open: the HTTP protocol decides once it has it

    def connection_lost(self, exc: Exception | None) -> None:
        # Only ever before the HTTP protocol took over: afterwards the connection reports to it.
        self._lost = True
        if self._slot is not None:
            self._slot.release()


def serve_tls(server: QuietServer, context: ssl.SSLContext) -> QuietServer:
    """Make a gated uvicorn server (``make_server(..., limits=...)``) speak only TLS on its
    sockets, with ``context`` (the serving certificate)."""
    gate = server.gate
    if gate is None:
        raise ValueError("serve_tls needs a server with connection limits")
    http_protocol = server.config.http_protocol_class

    def factory(**kwargs: Any) -> asyncio.Protocol:
        inner = http_protocol(**kwargs)
        assert isinstance(inner, GuardedH11Protocol)
        return _TlsHandshake(inner, context, gate)

    server.config.http_protocol_class = factory  # type: ignore[assignment]
    return server
