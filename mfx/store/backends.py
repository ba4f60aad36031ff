"""Which store a daemon uses: SQLite in HOME by default, etcd when ``--store etcd://...`` names it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mfx.errors import BadRequestError
from mfx.store.etcd_keys import DEFAULT_COMPACTION_SECONDS, EtcdTLS, parse_store_url
from mfx.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from mfx.store.etcd import EtcdStore


def store_for(url: str | None, database_path: Path, tls: EtcdTLS | None = None, *,
              compaction_seconds: float = DEFAULT_COMPACTION_SECONDS) -> SQLiteStore | EtcdStore:
    """The (unopened) store ``url`` names; None or ``sqlite``: the SQLite file ``database_path``.
    ``compaction_seconds``: how often an etcd store compacts etcd's history (0: never)."""
    if url is None or url in ("", "sqlite"):
        return SQLiteStore(database_path)
    if url.startswith("etcd://"):
        # Imported here: gRPC loads only in a daemon that talks to etcd.
        from mfx.store.etcd import EtcdStore

        return EtcdStore(parse_store_url(url, tls), compaction_interval=compaction_seconds)
    raise BadRequestError(
        f"--store {url!r}: expected etcd://HOST:PORT[,HOST:PORT...] (or leave it out for SQLite in HOME)"
    )
