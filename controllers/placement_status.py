"""The fleet's view of each placed object, kept by the leader: DaemonSet-style counts.

For every PluginManifest and AudioSink, from the Nodes and the per-node entries the agents
write (``status.nodes``, see ``node_status``):

- ``desiredNumberScheduled``: selected nodes that are schedulable (not cordoned) and not gone;
- ``numberReady``: selected nodes whose entry says Ready;
- ``updatedNumberScheduled``: selected nodes whose entry observed ``metadata.generation``;
- entries of nodes that are gone (Node deleted) are removed;
- an object being deleted is let go by nodes that are gone: their finalizers (see
  ``node_status``) are removed, as no agent is left to stop the object there and remove its
  own, as Kubernetes' garbage collector deletes the pods of a deleted Node (a node that is
  only down, its Node still there, keeps the object waiting until it is back, or deleted);
- when no agent runs inside the API server's process (``mfx serve --no-local-agent``), the
  top-level ``Ready`` condition: True (``AllNodesReady``) when every selected, schedulable
  node is Ready, else False (``NodesNotReady``, naming them, or ``NoNodesSelected``). With an
  in-process agent, that agent's conditions stay the top level, as on a single machine.

It runs on the leader only, beside the node lifecycle controller, as one loop fed by the
watches of the three kinds: a change marks the objects it concerns, and the loop writes the
ones whose figures moved (a write that changes nothing is not made, so its own watch event
costs one comparison).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus

from mfx.api.objects import Obj, finalizer_node, generation, is_deleting, now_rfc3339
from mfx.errors import ConflictError, MfxError, NotFoundError
from mfx.store.base import Store, WatchEvent, WatchEventType
from mfx.store.list_watch import ListWatch
from reconciler.conditions import set_condition

from .placement import (
    NODE_KIND,
    PLACED_KINDS,
    describe_selector,
    node_selector_of,
    selector_matches,
)

log = logging.getLogger("mfx.controllers.placement_status")

CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class Figures:
    desired: int
    ready: int
    updated: int
    gone: tuple[str, ...]  # entries of nodes that no longer exist
    condition: tuple[bool, str, str] | None  # (status, reason, message) of Ready, when the leader writes it
    version: str | None = None  # the version every selected node runs, when they agree


def figures(obj: Obj, nodes: dict[str, Obj], *, write_ready: bool) -> Figures:
    entries: dict[str, Any] = (obj.get("status") or {}).get("nodes") or {}
    selector, gen = node_selector_of(obj), generation(obj)
    schedulable: list[str] = []
    ready: list[str] = []
    updated = 0
    versions: set[str] = set()
    for name, node in nodes.items():  # one pass: a fleet's label change recounts every object
        if not selector_matches(selector, (node.get("metadata") or {}).get("labels") or {}):
            continue
        if not (node.get("spec") or {}).get("unschedulable"):
            schedulable.append(name)
        entry = entries.get(name) or {}
        if entry.get("ready") is True:
            ready.append(name)
        if entry.get("version"):
            versions.add(str(entry["version"]))
        updated += entry.get("observedGeneration") == gen
    schedulable.sort()
    gone = tuple(sorted(name for name in entries if name not in nodes))
    condition = None
    if write_ready:
        ready_set = set(ready)
        not_ready = [name for name in schedulable if name not in ready_set]
        if not schedulable:
            condition = (False, "NoNodesSelected",
                         f"no schedulable node matches spec.nodeSelector ({describe_selector(node_selector_of(obj))}); "
                         "label a node (kubectl label node NAME key=value, or mfx patch node NAME "
                         "-p '{\"metadata\":{\"labels\":{\"key\":\"value\"}}}') or uncordon one")
        elif not not_ready:
            condition = (True, "AllNodesReady", f"Ready on {len(ready)} of {len(schedulable)} nodes: "
                         + _some(schedulable))
        else:
            why = [f"{name} ({entries[name].get('reason') or 'not Ready'})" if name in entries
                   else f"{name} (no report yet)" for name in not_ready]
            condition = (False, "NodesNotReady", f"not Ready on {len(not_ready)} of {len(schedulable)} nodes: "
                         + _some(why))
    return Figures(len(schedulable), len(ready), updated, gone, condition,
                   next(iter(versions)) if len(versions) == 1 else None)


def orphaned_finalizers(obj: Obj, nodes: dict[str, Obj]) -> list[str]:
    """The finalizers of nodes that are gone, on an object being deleted: none will remove its own."""
    if not is_deleting(obj):
        return []
    return [f for f in obj["metadata"].get("finalizers") or []
            if (node := finalizer_node(f)) is not None and node not in nodes]


def _some(names: list[str], shown: int = 10) -> str:
    """The first few of ``names``: a fleet's condition message stays one line."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def with_figures(obj: Obj, found: Figures) -> Obj | None:
    """``obj`` with ``found`` in its status; None when it already says so."""
    status = dict(obj.get("status") or {})
    new = {**obj, "status": status}
    status["desiredNumberScheduled"] = found.desired
    status["numberReady"] = found.ready
    status["updatedNumberScheduled"] = found.updated
    if found.gone:
        status["nodes"] = {k: v for k, v in (status.get("nodes") or {}).items() if k not in found.gone}
    changed = any(status.get(k) != (obj.get("status") or {}).get(k)
                  for k in ("desiredNumberScheduled", "numberReady", "updatedNumberScheduled", "nodes"))
    if found.condition is not None:
        status["conditions"] = [dict(c) for c in status.get("conditions") or []]
        if set_condition(new, "Ready", *found.condition, observed_generation=generation(obj),
                         now=now_rfc3339()) is not None:
            changed = True
        current = next(c for c in status["conditions"] if c.get("type") == "Ready")
        if current.get("message") != found.condition[2] or current.get("observedGeneration") != generation(obj):
            current["message"] = found.condition[2]
            current["observedGeneration"] = generation(obj)
            changed = True
        # The VERSION column: what the nodes run, when they all run the same one.
        if status.get("resolvedVersion") != found.version:
            if found.version is None:
                status.pop("resolvedVersion", None)
            else:
                status["resolvedVersion"] = found.version
            changed = True
        if found.updated == found.desired and status.get("observedGeneration") != generation(obj):
            status["observedGeneration"] = generation(obj)
            changed = True
    return new if changed else None


class PlacementStatus:
    """``await PlacementStatus(store, local_node=...).run()`` on the leader.

    ``local_node``: the node of an agent in this process (``mfx serve``), which writes the
    top level and the counts with its own status; the leader then recounts an object only
    when a Node changes or another node reports on it, so one machine sees no second write.
    """

    def __init__(self, store: Store, *, local_node: str | None) -> None:
        self.store = store
        self.local_node = local_node
        self.write_ready = local_node is None
        self.nodes: dict[str, Obj] = {}
        self.objects: dict[tuple[str, str], Obj] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._wake = anyio.Event()

    def _mark(self, keys: Any) -> None:
        self._dirty.update(keys)
        self._wake.set()

    def _on_node(self, node: Obj, deleted: bool) -> None:
        name = node["metadata"]["name"]
        before = self.nodes.get(name)
        if deleted:
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = node
        if deleted or before is None or before.get("metadata", {}).get("labels") != node["metadata"].get("labels") \
                or bool((before.get("spec") or {}).get("unschedulable")) != bool((node.get("spec") or {}).get("unschedulable")):
            self._mark(self.objects)

    def _on_object(self, obj: Obj, deleted: bool) -> None:
        key = (obj["kind"], obj["metadata"]["name"])
        if deleted:
            self.objects.pop(key, None)
            self._dirty.discard(key)
            return
        self.objects[key] = obj
        entries = (obj.get("status") or {}).get("nodes") or {}
        if (self.local_node is None or any(name != self.local_node for name in entries)
                or orphaned_finalizers(obj, self.nodes)):
            self._mark([key])

    async def run(self) -> None:
        async with anyio.create_task_group() as group:
            for kind in (NODE_KIND, *PLACED_KINDS):  # all listed before any count is taken
                await group.start(self._follow, kind)
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                dirty, self._dirty = self._dirty, set()
                for key in sorted(dirty):
                    obj = self.objects.get(key)
                    if obj is not None and (obj := await self._release(obj)) is not None:
                        await self._write(obj)

    async def _follow(self, kind: str, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        def on_event(event: WatchEvent) -> None:
            deleted = event.type is WatchEventType.DELETED
            (self._on_node if kind == NODE_KIND else self._on_object)(event.object, deleted)

        def on_relist(items: list[Obj]) -> None:
            for item in items:
                (self._on_node if kind == NODE_KIND else self._on_object)(item, False)

        await ListWatch(self.store, kind, on_event=on_event, on_relist=on_relist, logger=log).run(
            task_status=task_status)

    async def _release(self, obj: Obj) -> Obj | None:
        """``obj`` without the finalizers of gone nodes, written when it had any; None when it
        is gone (deleted by that write, or before)."""
        for _ in range(CONFLICT_RETRIES):
            orphans = orphaned_finalizers(obj, self.nodes)
            if not orphans:
                return obj
            kept = [f for f in obj["metadata"]["finalizers"] if f not in orphans]
            try:
                released = await self.store.update({**obj, "metadata": {**obj["metadata"], "finalizers": kept}})
            except ConflictError:
                try:
                    obj = await self.store.get(obj["kind"], obj["metadata"]["name"])
                except NotFoundError:
                    return None
                continue
            except NotFoundError:
                return None
            except MfxError as error:
                log.warning("could not remove the finalizers %s of gone nodes from %s %s: %s; retried at its "
                            "next change", ", ".join(orphans), obj["kind"], obj["metadata"]["name"], error)
                return obj
            log.info("%s %s: removed the finalizers %s of nodes that are gone", obj["kind"],
                     obj["metadata"]["name"], ", ".join(orphans))
            return released if kept else None
        return obj

    async def _write(self, obj: Obj) -> None:
        for _ in range(CONFLICT_RETRIES):
            new = with_figures(obj, figures(obj, self.nodes, write_ready=self.write_ready))
            if new is None:
                return
            try:
                await self.store.update_status(new)
                return
            except ConflictError:
                try:
                    obj = await self.store.get(obj["kind"], obj["metadata"]["name"])
                except NotFoundError:
                    return
            except NotFoundError:
                return
            except MfxError as error:
                log.warning("could not write the node counts of %s %s: %s; retried at its next change",
                            obj["kind"], obj["metadata"]["name"], error)
                return
