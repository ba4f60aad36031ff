"""Durable object storage with Kubernetes API-server semantics (``Store``), SQLite by default."""

from mfx.store.base import EventRecord, ListResult, Store, WatchEvent, WatchEventType
from mfx.store.sqlite import SCHEMA_VERSION, SQLiteStore

__all__ = [
    "SCHEMA_VERSION",
    "EventRecord",
    "ListResult",
    "SQLiteStore",
    "Store",
    "WatchEvent",
    "WatchEventType",
]
