"""The node agent: registers this machine's Node and keeps its Lease renewed (the kubelet's
heartbeat).

```python
agent = NodeAgent(client, AgentSettings("player-1", labels={"room": "kitchen"}, lease_seconds=40))
await task_group.start(agent.run)     # registered and renewed once when start returns
```

At start the Node is created, or updated with this agent's labels (labels users added and
the spec, e.g. a cordon, are kept). Then every ``lease_seconds / 4`` the Lease named after
the node is renewed; the Node's status (Ready, node info, sound devices, lastHeartbeatTime)
is written when it changed, when Ready is not True (the lifecycle controller marked the
node Unknown) and at least every ``status_report_seconds``. On a clean stop the agent just
stops: as in Kubernetes, nodes are not deleted, and the Lease runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
from anyio.abc import TaskStatus

from mfx.api.kinds import NODE
from mfx.api.objects import Obj, format_time, now
from mfx.errors import AlreadyExistsError, ConflictError, MfxError, NotFoundError
from mfx.node.client import ObjectClient
from mfx.node.facts import NodeFacts, gather_facts
from mfx.node.lease import LeaseRecord, new_lease, with_record
from mfx.node.reasons import NODE_LEASE_LABEL, NodeReason
from observability.metrics import Metrics
from reconciler.conditions import get_condition, set_condition

log = logging.getLogger("mfx.node.agent")

NODE_KIND = NODE.kind
# Writes that lost a race with another writer are retried at once, this many times.
CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class AgentSettings:
    node_name: str
    labels: Mapping[str, str] = field(default_factory=dict)  # --node-labels, over the well-known ones
    lease_seconds: int = 40  # the kubelet's default
    status_report_seconds: float = 60.0

    @property
    def renew_interval(self) -> float:
        return self.lease_seconds / 4


class NodeAgent:
    def __init__(self, client: ObjectClient, settings: AgentSettings, *, metrics: Metrics | None = None,
                 facts: Callable[[], Awaitable[NodeFacts]] = gather_facts) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self._facts = facts
        self._reported: dict[str, Any] | None = None  # the status fields last written
        self._reported_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.settings.node_name

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Register, renew once, report ``started``; then renew until cancelled."""
        facts = await self._facts()
        await self.register(facts)
        await self.heartbeat(facts)
        task_status.started()
        failing = False
        while True:
            await anyio.sleep(self.settings.renew_interval)
            try:
                await self.heartbeat(await self._facts())
            except MfxError as error:
                # The kubelet way: a failed renewal is tried again at the next period; the
                # lease has four of them before it runs out. Said once, not every period.
                if not failing:
                    log.warning("node %s: could not renew its lease: %s; trying again every %.0f s",
                                self.name, error, self.settings.renew_interval)
                failing = True
                continue
            if failing:
                log.info("node %s: lease renewed again", self.name)
                failing = False

    async def register(self, facts: NodeFacts) -> Obj:
        """Create this machine's Node, or put this agent's labels on the one there."""
        labels = {**facts.labels(), **self.settings.labels}
        for _ in range(CONFLICT_RETRIES):
            try:
                node = await self.client.get(NODE_KIND, self.name)
            except NotFoundError:
                try:
                    node = await self.client.create({
                        "apiVersion": NODE.api_version, "kind": NODE_KIND,
                        "metadata": {"name": self.name, "labels": labels},
                        "spec": {"unschedulable": False},
                    })
                except AlreadyExistsError:
                    continue
                log.info("node %s registered", self.name)
                return node
            current = dict(node["metadata"].get("labels") or {})
            if all(current.get(k) == v for k, v in labels.items()):
                return node
            node["metadata"] = {**node["metadata"], "labels": {**current, **labels}}
            try:
                return await self.client.update(node)
            except ConflictError:
                continue
        raise ConflictError(f'node "{self.name}" kept changing while its agent registered it; '
                            "check that no other agent runs with the same --node-name")

    async def heartbeat(self, facts: NodeFacts) -> None:
        """Renew the node's Lease, then report the Node's status if it is due."""
        await self._renew()
        if self.metrics is not None:
            self.metrics.node_lease_renewals_total.inc()
        await self._report(facts)

    async def _renew(self) -> None:
        for _ in range(CONFLICT_RETRIES):
            at = now()
            try:
                lease = await self.client.get("Lease", self.name)
            except NotFoundError:
                record = LeaseRecord(self.name, self.settings.lease_seconds, at, at, 0)
                try:
                    await self.client.create(new_lease(self.name, record, {NODE_LEASE_LABEL: "true"}))
                except AlreadyExistsError:
                    continue
                return
            old = LeaseRecord.of(lease)
            changed_holder = old.holder != self.name
            record = LeaseRecord(
                holder=self.name, duration_seconds=self.settings.lease_seconds,
                acquire_time=at if changed_holder or old.acquire_time is None else old.acquire_time,
                renew_time=at, transitions=old.transitions + (1 if changed_holder and old.holder else 0))
            try:
                await self.client.update(with_record(lease, record))
            except ConflictError:
                continue
            return
        raise ConflictError(f'lease "{self.name}" kept changing while its node agent renewed it; '
                            "check that no other agent runs with the same --node-name")

    async def _report(self, facts: NodeFacts) -> None:
        fields = facts.status_fields()
        at = now()
        due = (self._reported != fields or self._reported_at is None
               or (at - self._reported_at).total_seconds() >= self.settings.status_report_seconds)
        for _ in range(CONFLICT_RETRIES):
            node = await self.client.get(NODE_KIND, self.name)
            ready = get_condition(node, "Ready")
            if not due and ready is not None and ready.get("status") == "True":
                return
            status = dict(node.get("status") or {})
            status.update(fields)
            stamp = format_time(at)
            status["lastHeartbeatTime"] = stamp
            node["status"] = status
            set_condition(node, "Ready", True, NodeReason.AGENT_READY,
                          "the node agent is running and renewing its lease", now=stamp)
            for condition in node["status"]["conditions"]:
                if condition.get("type") == "Ready":
                    condition["lastHeartbeatTime"] = stamp
            try:
                await self.client.update_status(node)
            except ConflictError:
                continue
            self._reported, self._reported_at = fields, at
            return
        raise ConflictError(f'node "{self.name}" kept changing while its agent reported its status')
