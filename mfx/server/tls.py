"""TLS for the TCP listener, so kubectl sends its bearer token.

client-go (kubectl) only sends a kubeconfig's credentials over TLS: against an ``http://``
server it drops the token and every request is a 401. So the ``--listen`` port answers both:
a connection that opens with a TLS handshake is served over TLS (a certificate signed by a
private CA kept in ``$MFX_HOME/tls``, which ``mfx config kubeconfig`` embeds), any other
connection is served as plain HTTP, as before (mfx's own ``--server``, curl, scripts). The
bearer token is required either way.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import socket
import ssl
from asyncio import sslproto
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mfx.server.listeners import ConnectionGate, ConnectionSlot

TLS_RECORD_HANDSHAKE = 0x16  # the first byte of every TLS ClientHello


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        context.set_alpn_protocols(["http/1.1"])  # h11 only: never let a client pick h2
        return context


def tls_dir(home: Path) -> Path:
    return home / "tls"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost"),
                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                     x509.IPAddress(ipaddress.ip_address("::1"))]
    hostnames = {"localhost", socket.gethostname()}
    addresses: set[str] = set()
    if host in ("", "0.0.0.0", "::"):
        # Listening on every interface: the machine's own addresses, so clients on the
        # network can verify the certificate too.
        try:
            addresses = {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:
            pass
    else:
        addresses = {host}
    for item in sorted(addresses):
        try:
            address = x509.IPAddress(ipaddress.ip_address(item.split("%")[0]))
        except ValueError:
            hostnames.add(item)
            continue
        if address not in names:
            names.append(address)
    names += [x509.DNSName(h) for h in sorted(hostnames - {"localhost"}) if h]
    return names


def ensure_tls(home: Path, host: str = "127.0.0.1") -> TlsFiles:
    """The CA (created once, kept) and a fresh serving certificate for ``host`` and localhost."""
    folder = tls_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = TlsFiles(ca_cert=folder / "ca.crt", cert=folder / "server.crt", key=folder / "server.key")
    ca_key_path = folder / "ca.key"
    now = datetime.datetime.now(datetime.UTC)
    if files.ca_cert.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mfx-ca")])
        ca_cert = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(ca_key_path, _key_pem(ca_key))
        files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mfx")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(files.key, _key_pem(key))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


# --- one port, both protocols -------------------------------------------------------------------


class _Sniffer(asyncio.Protocol):
    """Waits for a connection's first bytes, then hands it to the HTTP protocol: through TLS
    when they are a TLS handshake, directly otherwise."""

    def __init__(self, inner: asyncio.Protocol, context: ssl.SSLContext) -> None:
        self.inner = inner
        self.context = context
        self.transport: asyncio.Transport | None = None
        # The inner protocol's gate admits the connection here, at accept: the first bytes (and
        # a TLS handshake) are bounded by the same limits as a request head.
        self.gate: ConnectionGate | None = getattr(inner, "gate", None)
        self.slot: ConnectionSlot | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.gate is not None:
            self.slot = self.gate.admit()
            if self.slot is None:
                transport.abort()
                return
            self.inner.slot = self.slot  # type: ignore[attr-defined]
            self.timer = asyncio.get_running_loop().call_later(
                self.gate.limits.request_head_timeout, self._expire)
        # asyncio sets TCP_NODELAY only on sockets created with proto=IPPROTO_TCP; without it
        # Nagle holds the body behind the headers for a delayed ACK (40 ms a response).
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if data[:1] == bytes([TLS_RECORD_HANDSHAKE]):
            loop = asyncio.get_running_loop()
            timeout = self.gate.limits.request_head_timeout if self.gate is not None else None
            tls = sslproto.SSLProtocol(loop, self.inner, self.context, None, server_side=True,  # type: ignore[arg-type]
                                       ssl_handshake_timeout=timeout)
            self.transport.set_protocol(tls)
            tls.connection_made(self.transport)
            view = memoryview(data)
            while view:
                buffer = tls.get_buffer(len(view))
                size = min(len(buffer), len(view))
                buffer[:size] = view[:size]
                tls.buffer_updated(size)
                view = view[size:]
        else:
            self.transport.set_protocol(self.inner)
            self.inner.connection_made(self.transport)
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        # Lost before the hand-over (the inner protocol never saw this connection).
        if self.timer is not None:
            self.timer.cancel()
        if self.slot is not None:
            self.slot.release()

    def _expire(self) -> None:
        """No first bytes, or a TLS handshake that never completed, in time."""
        assert self.transport is not None and self.slot is not None
        if getattr(self.inner, "transport", None) is None:  # the inner protocol never started
            self.transport.abort()
            self.slot.release()  # the inner protocol will never see connection_lost


def serve_tls_too(server: Any, files: TlsFiles) -> Any:
    """Make a uvicorn server answer TLS as well as plain HTTP on its sockets."""
    config = server.config
    if not config.loaded:
        config.load()
    context = files.server_context()
    protocol_class = config.http_protocol_class

    def factory(**kwargs: Any) -> asyncio.Protocol:
        return _Sniffer(protocol_class(**kwargs), context)

    config.http_protocol_class = factory
    return server


def write_listen_address(path: Path, sock: socket.socket) -> None:
    """Record the address a TCP listener is bound to (the real port, even for ``:0``)."""
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    path.write_text(f"{host}:{port}\n")
