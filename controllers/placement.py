"""Placement: which nodes run a PluginManifest or an AudioSink (``spec.nodeSelector``).

Like a DaemonSet: an object without a selector runs on every node; one with a selector runs
on the nodes whose labels it matches (``matchLabels`` and ``matchExpressions``, all must
hold). A node's controllers read their own Node's labels from its Node object, watched, so
relabelling a node moves objects onto it or off it (``NodePlacement.run`` re-enqueues every
placed object when the labels change). A cordoned node (``spec.unschedulable``) keeps what
it runs, as a DaemonSet tolerates unschedulable nodes; the leader does not count it as a
node that should run the object (``desiredNumberScheduled``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus

from mfx.api.objects import Obj
from mfx.store.base import Store, WatchEvent, WatchEventType
from mfx.store.list_watch import ListWatch

log = logging.getLogger("mfx.controllers.placement")

NODE_KIND = "Node"
PLACED_KINDS = ("PluginManifest", "AudioSink")


def node_selector_of(obj: Obj) -> Mapping[str, Any] | None:
    selector = (obj.get("spec") or {}).get("nodeSelector")
    return selector if isinstance(selector, Mapping) else None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector against ``labels``; None or empty selects every node."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = set(expression.get("values") or [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def describe_selector(selector: Mapping[str, Any] | None) -> str:
    """The selector as a user would write it on the command line (``room=kitchen,tier in (a,b)``)."""
    if not selector:
        return "<every node>"
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = ",".join(expression.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": str(key), "DoesNotExist": f"!{key}"}.get(str(operator), str(key)))
    return ",".join(parts)


def node_selects(node: Obj, obj: Obj) -> bool:
    """Whether ``node``'s labels match ``obj``'s nodeSelector."""
    return selector_matches(node_selector_of(obj), (node.get("metadata") or {}).get("labels") or {})


@dataclass
class NodePlacement:
    """This node's labels as its Node object has them; what this node's controllers run."""

    node_name: str
    labels: dict[str, str] = field(default_factory=dict)  # until the Node is read: the agent's --node-labels
    unschedulable: bool = False
    nodes: dict[str, Obj] = field(default_factory=dict)  # every Node, as the watch last showed it

    def selects(self, obj: Obj) -> bool:
        return selector_matches(node_selector_of(obj), self.labels)

    def not_placed_message(self, obj: Obj) -> str:
        return (f"not placed on node {self.node_name}: spec.nodeSelector ({describe_selector(node_selector_of(obj))}) "
                "does not match its labels; label the node or change the selector to run it here")

    def _take(self, node: Obj) -> bool:
        """Adopt ``node``'s labels; whether what is placed here may have changed."""
        labels = dict((node.get("metadata") or {}).get("labels") or {})
        unschedulable = bool((node.get("spec") or {}).get("unschedulable"))
        changed = labels != self.labels
        if unschedulable != self.unschedulable:
            log.info("node %s %s: what runs here keeps running", self.node_name,
                     "cordoned" if unschedulable else "uncordoned")
        self.labels, self.unschedulable = labels, unschedulable
        return changed

    async def run(self, store: Store, on_change: Callable[[], Awaitable[None]], *,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Watch this node's Node; call ``on_change`` (re-place everything) when its labels change."""
        changed = anyio.Event()
        listed = anyio.Event()

        def note(node: Obj) -> None:
            name = node.get("metadata", {}).get("name")
            self.nodes[name] = node
            if name == self.node_name and self._take(node):
                changed.set()

        def on_relist(items: list[Obj]) -> None:
            self.nodes.clear()
            for item in items:
                note(item)
            listed.set()

        def on_event(event: WatchEvent) -> None:
            if event.type is WatchEventType.DELETED:
                self.nodes.pop(event.object.get("metadata", {}).get("name"), None)
            else:
                note(event.object)

        watch = ListWatch(store, NODE_KIND, on_event=on_event, on_relist=on_relist, logger=log)
        async with anyio.create_task_group() as group:
            group.start_soon(watch.run)
            await listed.wait()
            changed = anyio.Event()  # the first list is the starting point, not a change
            task_status.started()
            while True:
                await changed.wait()
                changed = anyio.Event()
                log.info("node %s labels now %s: placing plugins and sinks again", self.node_name,
                         ",".join(f"{k}={v}" for k, v in sorted(self.labels.items())) or "<none>")
                await on_change()
