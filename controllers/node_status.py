"""Per-node status: each node writes only ``status.nodes.<node>`` of the objects it places.

``NodeStatusStore`` wraps the store a node's controllers use; every other call passes through.
Controllers keep writing status as they always did (``StatusPatcher`` -> ``write_status``);
what this store does with it depends on whether the objects are shared with other nodes:

- **alone** (``mfx serve`` with its in-process agent): the status is written as before, and
  this node's entry in ``status.nodes`` and the counts (as the leader would find them, so
  it finds nothing to change) go with it, in the same write.
- **shared** (``mfx agent`` against a remote API): only the node's entry is written, by a
  JSON merge patch on the status subresource without a resourceVersion, so N agents never
  conflict; the top level belongs to the leader (``placement_status``). The full status the
  controllers wrote stays with this store, in memory, and is what they read back (get, list,
  watch) with the shared fields (``nodes`` and the counts) of the stored object: a node sees
  its own conditions, so a dependency is Ready for it only when it is Ready on this node.

Finalizers, shared: the controllers add and remove the usual finalizer (``FINALIZER``); stored,
it is this node's own (``node.mfx.musicfox.io/<node>``), so an object every node placed holds
one finalizer per node, and a delete completes only once every one of them has stopped its
copy (as ``kubectl delete`` waits for each finalizer). A node sees its own as ``FINALIZER``; a
node that does not place an object holds none on it, and one that stops an object because it
no longer places it removes its own.
The single finalizer of earlier versions, shared by all nodes, is kept until the object is
deleted, then taken as each node's own. A node that is gone (its Node deleted) cannot remove
its finalizer: the leader does (``placement_status``).

The entry is small (``NodeEntry``): Ready and its reason and message, restarts, version, pid,
observedGeneration, when Ready last changed. A Ready condition whose reason is ``NotScheduled``
(the node's controllers do not run the object) removes the entry.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from mfx.api.objects import FINALIZER, Obj, is_deleting, node_finalizer
from mfx.errors import BadRequestError, ConflictError, MfxError
from mfx.store.base import EventRecord, ListResult, Store, WatchEvent, WatchEventType

from .placement import PLACED_KINDS, NodePlacement
from .placement_status import figures

log = logging.getLogger("mfx.controllers.node_status")

NOT_SCHEDULED = "NotScheduled"  # the Ready reason of an object this node does not run
# Status fields that are the fleet's, not one node's: shown to a node as stored.
SHARED_FIELDS = ("nodes", "desiredNumberScheduled", "numberReady", "updatedNumberScheduled")


def node_entry(status: dict[str, Any]) -> dict[str, Any] | None:
    """The node's part of ``status`` as ``status.nodes.<node>`` holds it (None: no entry)."""
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("reason") == NOT_SCHEDULED:
        return None
    entry: dict[str, Any] = {"ready": ready is not None and ready.get("status") == "True"}
    if ready is not None:
        entry["reason"] = str(ready.get("reason", ""))
        entry["message"] = str(ready.get("message", ""))[:300]
        if ready.get("lastTransitionTime"):
            entry["lastTransitionTime"] = ready["lastTransitionTime"]
    for source, target in (("restartCount", "restartCount"), ("resolvedVersion", "version"),
                           ("observedGeneration", "observedGeneration")):
        if status.get(source) is not None:
            entry[target] = status[source]
    pid = (status.get("runtime") or {}).get("pid") or (status.get("engine") or {}).get("pid")
    if isinstance(pid, int):
        entry["pid"] = pid
    return entry


class NodeStatusStore:
    """The store of one node's controllers; see the module docstring."""

    def __init__(self, inner: Store, placement: NodePlacement, *, shared: bool) -> None:
        self._inner = inner
        self.placement = placement
        self.node_name = placement.node_name
        self.shared = shared
        self.finalizer = node_finalizer(self.node_name)
        self._own: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, name, uid) -> status written
        self._let_go_of: set[tuple[str, str, str]] = set()  # objects this node removed its finalizer from

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    # --- reads: a shared object shows this node's own status ---------------------------------

    def view(self, obj: Obj) -> Obj:
        if not self.shared or obj.get("kind") not in PLACED_KINDS:
            return obj
        stored = obj.get("status") or {}
        own = self._own.get(_key(obj))
        if own is None:
            entry = (stored.get("nodes") or {}).get(self.node_name) or {}
            own = {"restartCount": entry["restartCount"]} if "restartCount" in entry else {}
        status = {**own, **{k: stored[k] for k in SHARED_FIELDS if k in stored}}
        return {**obj, "metadata": self._metadata_view(obj), "status": status}

    def _metadata_view(self, obj: Obj) -> dict[str, Any]:
        """The finalizers as this node's controllers know them: its own shown as ``FINALIZER``;
        and an object this node does not place shown with it too, so that it adds none: a
        delete does not wait for a node that never ran the object."""
        metadata: dict[str, Any] = obj.get("metadata") or {}
        stored = metadata.get("finalizers") or []
        ours = (self.finalizer in stored or (FINALIZER in stored and is_deleting(obj))
                or not self.placement.selects(obj))
        shown = [f for f in stored if f not in (self.finalizer, FINALIZER)] + ([FINALIZER] if ours else [])
        return metadata if shown == stored else {**metadata, "finalizers": shown}

    async def get(self, kind: str, name: str) -> Obj:
        return self.view(await self._inner.get(kind, name))

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Obj]:
        return {key: self.view(obj) for key, obj in (await self._inner.get_many(keys)).items()}

    async def list(self, kind: str, **options: Any) -> ListResult:
        result = await self._inner.list(kind, **options)
        if not self.shared or kind not in PLACED_KINDS:
            return result
        return dataclasses.replace(result, items=[self.view(obj) for obj in result.items])

    def watch(self, kind: str | None, since: int) -> AsyncIterator[WatchEvent]:
        stream = self._inner.watch(kind, since)
        if not self.shared or kind not in PLACED_KINDS:
            return stream
        return _ViewedWatch(stream, self)

    def forget(self, obj: Obj) -> None:
        self._own.pop(_key(obj), None)
        self._let_go_of.discard(_key(obj))

    # --- writes ------------------------------------------------------------------------------

    async def update(self, obj: Obj) -> Obj:
        """The engine updates a placed object only for its finalizer. Shared, that is this
        node's own finalizer, added or removed (with the shared one of earlier versions, once
        the object is deleted), by a JSON patch on the list as stored: appended, or removed at
        the index a ``test`` operation checks, so the other nodes' finalizers and writes never
        make it conflict (a failed test is a conflict: the controller reads again). The first
        finalizer of an object creates the list (see below)."""
        if not self.shared or obj.get("kind") not in PLACED_KINDS:
            return await self._inner.update(obj)
        kind, name = obj["kind"], obj["metadata"]["name"]
        stored = await self._inner.get(kind, name)
        have: list[str] = stored["metadata"].get("finalizers") or []
        inner: Any = self._inner
        if FINALIZER in (obj["metadata"].get("finalizers") or []):
            if self.finalizer in have or not self.placement.selects(stored):  # held, or not ours to hold
                return self.view(stored)
            self._let_go_of.discard(_key(stored))
            if not have:
                # No JSON patch can create a missing list without replacing one made meanwhile,
                # and a resourceVersion would make any write (a node's entry, the leader's
                # counts) a conflict. So the first finalizer is a merge patch of its own: if
                # another node's first one crossed it, the later write wins, and the node whose
                # finalizer it removed sees that in its watch event and appends it again.
                return self.view(await inner.patch(kind, name, {"metadata": {"finalizers": [self.finalizer]}}))
            added = [{"op": "add", "path": "/metadata/finalizers/-", "value": self.finalizer}]
            return self.view(await inner.json_patch(kind, name, added))
        removed = _removal(have, (self.finalizer, FINALIZER))
        if not removed:
            return self.view(stored)
        try:
            return self.view(await inner.json_patch(kind, name, removed))
        except BadRequestError as error:  # another node removed its own first: read again
            raise ConflictError(f"{kind} {name}: the finalizers changed since they were read; read again") from error

    async def write_status(self, obj: Obj, events: Sequence[EventRecord] = (), *,
                           with_metadata: bool = False) -> Obj:
        if obj.get("kind") not in PLACED_KINDS:
            return await self._inner.write_status(obj, events, with_metadata=with_metadata)
        status = dict(obj.get("status") or {})
        entry = node_entry(status)
        nodes = dict(status.get("nodes") or {})
        if not self.shared:
            if entry is None:
                nodes.pop(self.node_name, None)
            else:
                nodes[self.node_name] = entry
            status["nodes"] = nodes
            if not nodes:
                status.pop("nodes")
            # The counts as the leader would write them, in this write: no second write follows.
            found = figures({**obj, "status": status}, self.placement.nodes, write_ready=False)
            status.update(desiredNumberScheduled=found.desired, numberReady=found.ready,
                          updatedNumberScheduled=found.updated)
            return await self._inner.write_status({**obj, "status": status}, events, with_metadata=with_metadata)
        if with_metadata:  # the finalizer, stored before anything it guards
            updated = await self.update(obj)
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": updated["metadata"]["resourceVersion"]}}
        self._own[_key(obj)] = {k: v for k, v in status.items() if k not in SHARED_FIELDS}
        written = obj
        if nodes.get(self.node_name) != entry:
            patch = {"status": {"nodes": {self.node_name: entry}}}
            written = await self._inner.patch_status(obj["kind"], obj["metadata"]["name"], patch)  # type: ignore[attr-defined]
        for record in events:
            try:
                await self._inner.record_event(record)
            except MfxError as error:  # as ApiStore.write_status: the status is written, raising would write it again
                log.warning("could not report event %s about %s %s: %s", record.reason, record.involved_kind,
                            record.involved_name, error)
        if entry is None and status.get("runtime") is None and not is_deleting(obj):
            await self._let_go(obj)
        return self.view(written)

    async def _let_go(self, obj: Obj) -> None:
        """Remove this node's finalizer from an object it no longer places, once nothing of it
        runs here (its Ready says ``NotScheduled`` and it has no ``runtime``: a plugin stopped;
        a sink is closed before it says so): a delete need not wait for this node. Once per
        object until the node adds its finalizer again; a failure is retried at the next write."""
        key = _key(obj)
        if key in self._let_go_of:
            return
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            stored = await self._inner.get(kind, name)
            removed = _removal(stored["metadata"].get("finalizers") or [], (self.finalizer,))
            if removed:
                await self._inner.json_patch(kind, name, removed)  # type: ignore[attr-defined]
        except MfxError as error:
            log.info("%s %s: this node's finalizer stays until the next write: %s", kind, name, error)
            return
        self._let_go_of.add(key)


class _ViewedWatch:
    """A watch whose objects are seen through ``NodeStatusStore.view``."""

    def __init__(self, stream: AsyncIterator[WatchEvent], store: NodeStatusStore) -> None:
        self._stream = stream
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __aiter__(self) -> _ViewedWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        event = await self._stream.__anext__()
        if event.type is WatchEventType.BOOKMARK:
            return event
        if event.type is WatchEventType.DELETED:
            view = self._store.view(event.object)
            self._store.forget(event.object)
            return dataclasses.replace(event, object=view)
        return dataclasses.replace(event, object=self._store.view(event.object))

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


def _removal(have: list[str], finalizers: tuple[str, ...]) -> list[dict[str, Any]]:
    """The JSON patch that removes ``finalizers`` from ``have`` (the list as read), each at the
    index a ``test`` operation checks first: another writer's change meanwhile fails it rather
    than removing the wrong one. Empty when none of them is there."""
    operations: list[dict[str, Any]] = []
    for index in reversed(range(len(have))):  # the last first: the indices before it stay right
        if have[index] in finalizers:
            operations += [{"op": "test", "path": f"/metadata/finalizers/{index}", "value": have[index]},
                           {"op": "remove", "path": f"/metadata/finalizers/{index}"}]
    return operations


def _key(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("name")), str(meta.get("uid", "")))
