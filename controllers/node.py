"""The node lifecycle controller: a Node whose agent stopped renewing its Lease is Ready=Unknown.

It runs on the leader only (``register_leader_only``). Each Node is checked when it or its
Lease (same name) changes, and once more when the Lease would run out: a Lease renewed at
``renewTime`` with ``leaseDurationSeconds`` expires at their sum, and the check is scheduled
for that moment (no polling). An expired Lease sets ``Ready=Unknown`` (``NodeStatusUnknown``,
naming when the agent last renewed) with a warning event; the agent sets ``Ready=True`` again
at its next renewal. A Node without a Lease gets the default lease duration from its creation
to get one before it is marked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from mfx.api.objects import Obj, ObjectKey, format_time, now, parse_time
from mfx.errors import NotFoundError
from mfx.node.lease import LEASE_KIND, LeaseRecord
from mfx.node.reasons import NodeReason
from reconciler import ConditionType, Context, Registry, Result, get_condition

KIND = "Node"
# A Node with no Lease yet is given the kubelet's lease duration to get one.
DEFAULT_GRACE_SECONDS = 40
# Checked a little after the expiry, so that the lease has run out when the check runs.
EXPIRY_SLACK_SECONDS = 0.05


def register(on: Registry, env: Any) -> None:
    """Register the Node lifecycle handlers (``env`` is not used: all it needs is the store)."""

    @on.related(LEASE_KIND)
    def _node_of_lease(obj: Obj) -> Iterable[ObjectKey]:
        return [ObjectKey(KIND, obj["metadata"]["name"])]

    @on.reconcile(KIND)
    async def reconcile_node(obj: Obj, ctx: Context) -> Result | None:
        name = obj["metadata"]["name"]
        # Nodes carry only what their agent and this controller report, not the engine's
        # kstatus conditions.
        ctx.status.remove_condition(ConditionType.RECONCILING)
        ctx.status.remove_condition(ConditionType.STALLED)
        at = now()
        try:
            record: LeaseRecord | None = LeaseRecord.of(await ctx.store.get(LEASE_KIND, name))
        except NotFoundError:
            record = None
        if record is None:
            created = parse_time(obj["metadata"]["creationTimestamp"])
            expires = created + timedelta(seconds=DEFAULT_GRACE_SECONDS)
            why = f"the node has no lease: its agent never renewed one (registered at {format_time(created)})"
        else:
            expires = record.expires_at() or at
            renewed = format_time(record.renew_time) if record.renew_time else "never"
            why = f"the node agent stopped renewing its lease at {renewed}"
        if expires > at:
            return Result(requeue_after=(expires - at).total_seconds() + EXPIRY_SLACK_SECONDS)
        ready = get_condition(obj, ConditionType.READY)
        already = ready is not None and ready.get("status") == "Unknown"
        # Set even when it already is Unknown: a condition the handler leaves alone gets the
        # engine's default (Ready=True for a reconcile that succeeded).
        ctx.status.condition(ConditionType.READY, "Unknown", NodeReason.NODE_STATUS_UNKNOWN,
                             str(ready.get("message", why)) if already and ready else why)
        if not already:
            await ctx.events.warning(obj, "NodeNotReady", f"node {name} is not ready: {why}")
            ctx.logger.warning("node %s: %s", name, why)
        return None
