"""Where the etcd store keeps things, and how ``--store etcd://...`` is read.

Every key lives under one prefix (``/mfx`` unless the URL names another), so several mfx
installations can share an etcd cluster and one installation's daemons share its objects:

- ``PREFIX/o/KIND/NAME``: an object's JSON (its resourceVersion is the key's mod_revision);
- ``PREFIX/e/DEDUP_KEY``: the name of the Event that reports those repeats (same lease as it);
- ``PREFIX/compact_rev_key``: whose turn it is to compact etcd's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mfx.errors import BadRequestError

DEFAULT_PREFIX = "/mfx"
DEFAULT_PORT = 2379
# How often a daemon compacts etcd's history (``mfx.store.etcd_compaction``): kube-apiserver's
# five minutes.
DEFAULT_COMPACTION_SECONDS = 300.0


@dataclass(frozen=True)
class EtcdTLS:
    """Client TLS: the CA that signed the members' certificates, and an optional client cert."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.ca_file is not None or self.cert_file is not None


@dataclass(frozen=True)
class EtcdTarget:
    """The members to talk to (tried in turn) and the key prefix."""

    endpoints: tuple[str, ...]
    prefix: str = DEFAULT_PREFIX
    tls: EtcdTLS = EtcdTLS()

    @property
    def url(self) -> str:
        return f"etcd://{','.join(self.endpoints)}{self.prefix}"


def parse_store_url(url: str, tls: EtcdTLS | None = None) -> EtcdTarget:
    """``etcd://h1:2379,h2:2379,h3:2379[/prefix]`` as an ``EtcdTarget``."""
    parts = urlsplit(url)
    if parts.scheme != "etcd":
        raise BadRequestError(f"--store {url!r}: expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX]")
    endpoints: list[str] = []
    for raw in parts.netloc.split(","):
        host, _, port = raw.strip().rpartition(":") if ":" in raw else (raw.strip(), "", str(DEFAULT_PORT))
        if not host or not port.isdigit():
            raise BadRequestError(f"--store {url!r}: {raw!r} is not HOST:PORT (e.g. 127.0.0.1:2379)")
        endpoints.append(f"{host}:{port}")
    prefix = parts.path.rstrip("/") or DEFAULT_PREFIX
    return EtcdTarget(tuple(endpoints), prefix, tls or EtcdTLS())


def range_end(prefix: bytes) -> bytes:
    """The end of the key range holding every key that starts with ``prefix``."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


@dataclass(frozen=True)
class Keys:
    """The keys of one prefix."""

    prefix: str

    @property
    def objects(self) -> bytes:
        return f"{self.prefix}/o/".encode()

    def kind(self, kind: str) -> bytes:
        return f"{self.prefix}/o/{kind}/".encode()

    def object(self, kind: str, name: str) -> bytes:
        return f"{self.prefix}/o/{kind}/{name}".encode()

    @property
    def compaction(self) -> bytes:
        """Whose turn it is to compact (``mfx.store.etcd_compaction``)."""
        return f"{self.prefix}/compact_rev_key".encode()

    def event_index(self, dedup_key: str) -> bytes:
        return f"{self.prefix}/e/{dedup_key}".encode()

    def split(self, key: bytes) -> tuple[str, str]:
        """``(kind, name)`` of an object key."""
        kind, _, name = key[len(self.objects):].decode().partition("/")
        return kind, name
