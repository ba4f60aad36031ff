"""The daemon's part in a fleet: its node agent, and the controllers that run on the leader.

``node_agent_service`` registers this machine's Node and renews its Lease until shutdown.
``leader_service`` campaigns for the ``mfx-controllers`` Lease (identity: ``leader_identity``)
and, while it leads, runs the controllers that must run once per fleet (GitSource syncs, node
lifecycle) on a manager of their own, and the per-node counts of plugins and sinks
(``controllers.placement_status``); losing the lease stops them, and a clean shutdown
releases it so another daemon takes over at once. On one machine the daemon leads at once.
"""

from __future__ import annotations

import hashlib
import logging
import socket

import anyio
from anyio.abc import TaskGroup, TaskStatus

from controllers import LeaderEnv, register_leader_only
from controllers.placement_status import PlacementStatus
from mfx.node.agent import AgentSettings, NodeAgent
from mfx.node.client import StoreClient
from mfx.node.leader import LeaderElector
from mfx.server.daemon import DaemonConfig, DaemonContext
from reconciler import ControllerOptions, Manager, Registry

log = logging.getLogger("mfx.daemon.fleet")

LEADER_LEASE = "mfx-controllers"


def node_name(config: DaemonConfig) -> str:
    """The Node this daemon registers: ``--node-name``, else the host name (lowercase, as the kubelet)."""
    return config.node_name or socket.gethostname().lower()


def make_node_agent(context: DaemonContext) -> NodeAgent:
    """This machine's node agent, over the daemon's store (in process, or the API through
    ``ApiStore`` in ``mfx agent``), kept in ``context.node_agent``."""
    config = context.config
    agent = NodeAgent(StoreClient(context.store),
                      AgentSettings(node_name(config), labels=dict(config.node_labels),
                                    lease_seconds=config.node_lease_seconds),
                      metrics=context.metrics)
    context.node_agent = agent
    return agent


async def node_agent_service(context: DaemonContext, group: TaskGroup) -> None:
    agent = make_node_agent(context)

    async def run(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as inner:
            await inner.start(agent.run)
            task_status.started()
            await context.shutdown.wait()
            inner.cancel_scope.cancel()

    # Registered before the API serves: `mfx get nodes` shows this node as soon as the daemon answers.
    await group.start(run)


def leader_identity(config: DaemonConfig) -> str:
    """The node and a digest of HOME: one daemon at a time serves a home (its lock), so this
    names one candidate, and the same one after a restart. A daemon restarted after a crash
    is still the holder of the lease its previous run held, and leads again at once instead
    of waiting out its own lease (a pid in the identity would make it a stranger)."""
    digest = hashlib.sha256(str(config.home.resolve()).encode()).hexdigest()[:8]
    return f"{node_name(config)}_{digest}"


async def leader_service(context: DaemonContext, group: TaskGroup) -> None:
    config = context.config
    elector = LeaderElector(
        StoreClient(context.store), LEADER_LEASE, leader_identity(config),
        lease_duration=config.leader_lease_seconds, renew_deadline=config.leader_renew_deadline,
        retry_period=config.leader_retry_period, metrics=context.metrics)
    context.leader = elector
    leading = anyio.Event()

    async def lead() -> None:
        on = Registry()
        register_leader_only(on, LeaderEnv(store=context.store, metrics=context.metrics, home=config.home))
        options = ControllerOptions(workers=config.workers, resync_period=config.resync_seconds)
        # Without an agent in this process, the top-level Ready of plugins and sinks is the
        # fleet's: the leader sums up the nodes' entries.
        counts = PlacementStatus(context.store,
                                 local_node=None if context.node_agent is None else context.node_agent.name)
        async with Manager(context.store, on, metrics=context.metrics, options=options), \
                anyio.create_task_group() as group:
            group.start_soon(counts.run)
            leading.set()
            await anyio.sleep_forever()

    async def run() -> None:
        async with anyio.create_task_group() as inner:
            inner.start_soon(elector.run, lead)
            await context.shutdown.wait()
            inner.cancel_scope.cancel()

    group.start_soon(run)
    # A lone daemon leads at once; waiting for it (briefly) lets the API serve with the
    # GitSource controller already running. A daemon that must wait for another's lease
    # to run out starts serving meanwhile.
    with anyio.move_on_after(config.leader_retry_period):
        await leading.wait()

