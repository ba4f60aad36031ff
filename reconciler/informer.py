"""The informer of a controller: the store's one list/watch/relist loop (``mfx.store.list_watch``)."""

from __future__ import annotations

from mfx.store.list_watch import EventCallback, RelistCallback, list_all
from mfx.store.list_watch import ListWatch as Informer

__all__ = ["EventCallback", "Informer", "RelistCallback", "list_all"]
