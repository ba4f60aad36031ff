"""The Store protocol: what every backend (SQLite now, etcd later) must provide.

Semantics follow the Kubernetes API server:

- ``metadata.resourceVersion`` is a global, strictly increasing counter (a string on the
  wire, an int here); every write of any object takes the next value (on etcd it is the
  revision: the objects one transaction writes share it).
- ``metadata.generation`` starts at 1 and bumps only when ``spec`` changes (or when
  ``deletionTimestamp`` is first set).
- ``uid`` and ``creationTimestamp`` are set on create and never change.
- Optimistic concurrency: a write that carries ``metadata.resourceVersion`` must carry the
  current one, else ``ConflictError``. A write without it is unconditional.
- ``update`` never changes ``status``; ``update_status`` changes only ``status``.
- ``write_status`` is ``update_status`` (or, ``with_metadata``, an update that takes the
  status too: a controller adding its finalizer with its first status) and the events about
  the object, in one transaction: a reconcile's outcome costs one commit, not one per record.
- ``delete`` of an object with finalizers only sets ``deletionTimestamp``; the object goes
  when an update removes its last finalizer. Without finalizers it goes at once.
- ``write_all`` carries out many creates and updates in one transaction: every one is
  stored, or (when any fails) none is and the first failure is raised.
- ``watch(since)`` yields every change after ``since`` in resourceVersion order, then
  follows live changes; a ``since`` older than the retained history raises ``GoneError``.

The object rules above live once, in ``mfx.store.strategy``; a backend stores their outcome.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, Self, TypedDict, Unpack, runtime_checkable

from mfx.api.objects import Obj


class WatchEventType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"


@dataclass(frozen=True)
class WatchEvent:
    type: WatchEventType
    object: Obj  # the object as of this change (for DELETED: its last state)
    resource_version: int


@dataclass(frozen=True)
class ListResult:
    items: list[Obj]
    resource_version: int  # the store's resourceVersion when the list was taken
    continue_token: str | None = None  # set when ``limit`` cut the list


@dataclass(frozen=True)
class EventRecord:
    """A Kubernetes-style event about an object, before the store de-duplicates it."""

    involved_kind: str
    involved_name: str
    involved_uid: str
    type: str  # "Normal" | "Warning"
    reason: str  # CamelCase, e.g. "Started", "ReloadFailed"
    message: str
    source: str = "mfx"  # component that reported it, e.g. "pluginmanifest-controller"
    involved_api_version: str = ""


class BatchAction(enum.Enum):
    CREATE = "create"
    UPDATE = "update"


@dataclass(frozen=True)
class BatchWrite:
    """One write of ``Store.write_all``: a create or an update, with the same rules as alone.

    ``obj`` is handed over: the store may stamp it (uid, resourceVersion ...) and keep it,
    so the caller passes one of its own and does not use it afterwards. The objects
    ``write_all`` answers may be those very objects, which watchers get too: read them only.

    ``base``: for an update pinned to a resourceVersion, the stored object it was computed
    from. The update then conflicts only if the object changed since in more than a
    controller changes it: its status, and its finalizers when the update leaves them as they
    were (it then carries the new ones). What was computed is still right after such a write,
    and kube-apiserver's apply retries such a conflict by itself too. A remote store
    (``ApiStore``) may ignore it and answer the conflict."""

    action: BatchAction
    obj: Obj
    base: Obj | None = None


class ListOptions(TypedDict, total=False):
    """What a list may ask for besides the kind, as keyword arguments of ``Store.list``."""

    label_selector: str | None  # Kubernetes label selector syntax
    limit: int | None  # at most this many items (0 or None: all), and a continue token
    continue_token: str | None  # the previous page's token: the next page


class Store(Protocol):
    """Durable object storage with list + watch; see the module docstring for semantics."""

    async def create(self, obj: Obj) -> Obj: ...

    async def get(self, kind: str, name: str) -> Obj: ...

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Obj]: ...

    async def list(self, kind: str, **options: Unpack[ListOptions]) -> ListResult: ...

    async def update(self, obj: Obj) -> Obj: ...

    async def update_status(self, obj: Obj) -> Obj: ...

    async def write_status(self, obj: Obj, events: Sequence[EventRecord] = (), *,
                           with_metadata: bool = False) -> Obj: ...

    async def write_all(self, writes: Sequence[BatchWrite]) -> builtins.list[Obj]: ...

    async def delete(self, kind: str, name: str, *, resource_version: int | None = None) -> Obj: ...

    def watch(self, kind: str | None, since: int) -> AsyncIterator[WatchEvent]: ...

    async def current_resource_version(self) -> int: ...

    async def record_event(self, event: EventRecord) -> Obj: ...

    async def close(self) -> None: ...


@runtime_checkable
class MaintainedStore(Protocol):
    """A store with upkeep to run while a daemon serves it (etcd: compacting its history;
    SQLite: checkpointing its write-ahead log off the commit path)."""

    async def maintain(self) -> None:
        """Run the upkeep until cancelled."""
        ...


class ReleasedWatch:
    """The iterator and context-manager side of a store's watch: ``aclose()``, or leaving
    ``async with``, releases it at once (``_release``, each store's own)."""

    def _release(self) -> None:
        raise NotImplementedError

    def __aiter__(self) -> Self:
        return self

    async def aclose(self) -> None:
        self._release()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release()
