"""The small API client the node agent and leader election use, and its in-process backing.

Both reach the control plane only through ``ObjectClient``: four calls with the API server's
semantics (``NotFoundError``, ``AlreadyExistsError``, ``ConflictError`` when an update carries
a stale ``metadata.resourceVersion``). ``mfx serve`` backs it with its own store
(``StoreClient``); a remote agent (``mfx agent``) with a ``StoreClient`` over
``mfx.store.api_store.ApiStore``: the same calls as HTTP requests to an API server.
"""

from __future__ import annotations

from typing import Protocol

from mfx.api.objects import Obj
from mfx.store.base import Store


class ObjectClient(Protocol):
    """Get, create and update objects (and their status) the way the API server does."""

    async def get(self, kind: str, name: str) -> Obj: ...

    async def create(self, obj: Obj) -> Obj: ...

    async def update(self, obj: Obj) -> Obj: ...

    async def update_status(self, obj: Obj) -> Obj: ...


class StoreClient:
    """``ObjectClient`` over the daemon's own store: what the in-process agent uses."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, kind: str, name: str) -> Obj:
        return await self._store.get(kind, name)

    async def create(self, obj: Obj) -> Obj:
        return await self._store.create(obj)

    async def update(self, obj: Obj) -> Obj:
        return await self._store.update(obj)

    async def update_status(self, obj: Obj) -> Obj:
        return await self._store.update_status(obj)
