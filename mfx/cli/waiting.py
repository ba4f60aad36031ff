"""Waiting on one object through a watch: until it is deleted, or until a condition holds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from mfx.api.kinds import KindInfo
from mfx.api.objects import Obj, condition, finalizer_node
from mfx.cli.client import Client
from mfx.errors import MfxError, NotFoundError


def watch_until(client: Client, kind: KindInfo, name: str, resource_version: str,
                deadline: float) -> Iterator[dict[str, Any]]:
    """Watch one object until the deadline, resuming the watch if the stream ends early."""
    rv = resource_version
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        client_timeout = max(1, int(remaining + 0.999))
        params_rv = rv
        for event in client.stream_lines(kind.resource_path, params={
                "watch": "true", "resourceVersion": params_rv, "fieldSelector": f"metadata.name={name}",
                "timeoutSeconds": str(client_timeout)}):
            if event.get("type") == "ERROR":
                return
            rv = event["object"]["metadata"].get("resourceVersion", rv)
            yield event
            if event["type"] == "DELETED":
                return


def wait_deleted(client: Client, kind: KindInfo, name: str, deadline: float) -> None:
    try:
        obj = client.get(kind, name)
    except NotFoundError:
        return
    for event in watch_until(client, kind, name, obj["metadata"]["resourceVersion"], deadline):
        if event["type"] == "DELETED":
            return
        obj = event["object"]
    raise MfxError(f'timed out waiting for {kind.plural} "{name}" to be deleted{_held_by(obj)}; '
                   f"see 'mfx describe {kind.typed} {name}'")


def _held_by(obj: Obj) -> str:
    """What keeps a deleted object: its finalizers, and for a node's, what to look at."""
    finalizers = obj["metadata"].get("finalizers") or []
    if not finalizers:
        return ""
    nodes = [node for f in finalizers if (node := finalizer_node(f)) is not None]
    text = f" (still held by its finalizers: {', '.join(finalizers)}"
    if nodes:
        text += (f"; node {', '.join(nodes)} has not stopped its copy yet: is its agent up? 'mfx get nodes'; "
                 "a node gone for good lets go once it is deleted: 'mfx delete node NAME'")
    return text + ")"


def condition_met(obj: Obj, ctype: str, wanted: str) -> bool:
    cond = condition(obj, ctype)
    if cond is None or str(cond.get("status")).lower() != wanted.lower():
        return False
    observed = cond.get("observedGeneration") or (obj.get("status") or {}).get("observedGeneration")
    return observed is None or int(observed) >= int(obj["metadata"].get("generation", 0))


def wait_condition(client: Client, kind: KindInfo, name: str, ctype: str, wanted: str, deadline: float) -> None:
    obj = client.get(kind, name)
    if condition_met(obj, ctype, wanted):
        return
    for event in watch_until(client, kind, name, obj["metadata"]["resourceVersion"], deadline):
        if event["type"] == "DELETED":
            raise NotFoundError(f'{kind.plural} "{name}" was deleted while waiting for {ctype}')
        obj = event["object"]
        if condition_met(obj, ctype, wanted):
            return
    reason = ""
    cond = condition(obj, ctype) or condition(obj, "Ready")
    if cond:
        reason = f" (last {cond.get('type')}={cond.get('status')}, reason {cond.get('reason')}: {cond.get('message')})"
    raise MfxError(f"timed out waiting for the condition on {kind.plural}/{name}{reason}; "
                   f"see 'mfx describe {kind.typed} {name}' and 'mfx why {kind.typed}/{name}'")
