"""``mfx agent``: the composition root of a node agent, the daemon without a store of its own.

It is ``run_daemon`` with an ``ApiStore`` for a store: the node's controllers (plugins, audio
sinks), the player and the node agent run exactly as in ``mfx serve``, but every object they
read, watch and write goes through a remote API server's HTTP API (``mfx serve``, or a
Kubernetes API server with mfx's CRDs). The agent keeps its own unix socket in its home: the
player API and the TUI (``mfx --home DIR now``) talk to it there, and object requests sent to
it are passed on to the API server.

The fleet-wide controllers (GitSource syncs, node lifecycle) are not the agent's: they run
on the API server's side, where the leader election picks one of them.

Cut off from every API server, nothing stops: plugins keep their processes, the player
plays, watches wait to resume (``mfx.store.api_store_watch``), the Lease is renewed again at
the next period, and the loss and the return of the server are each logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from anyio.abc import TaskGroup

from mfx.backoff import Backoff, jittered
from mfx.errors import MfxError
from mfx.node.agent import NodeAgent
from mfx.server.daemon import DaemonConfig, DaemonContext, Service, run_daemon
from mfx.server.fleet_services import make_node_agent, node_name
from mfx.server.services import controllers_service
from mfx.store.api_connection import ApiConnection
from mfx.store.api_store import ApiStore

log = logging.getLogger("mfx.agent")

# Registering the Node waits for the API server this way when it cannot be reached at start.
REGISTER_BACKOFF = Backoff(initial=0.2, cap=10.0)


async def run_agent(config: DaemonConfig, connection: ApiConnection, *,
                    on_ready: Callable[[DaemonContext], None] | None = None, handle_signals: bool = True) -> None:
    """Run the node agent until SIGTERM/SIGINT (or until ``shutdown`` is set)."""

    def ready(context: DaemonContext) -> None:
        log.info("node agent %s: controllers run against %s; local API and player on %s",
                 node_name(config), ", ".join(connection.servers), config.socket_path)
        if on_ready is not None:
            on_ready(context)

    await run_daemon(config, services=agent_services(), on_ready=ready, handle_signals=handle_signals,
                     open_store=lambda _config: ApiStore(connection))


def agent_services() -> list[Service]:
    """The node's part of ``mfx serve``'s services: its Node and Lease, controllers, player."""
    from mfx.server.player_api import player_service

    return [_until_shutdown([remote_node_agent_service, controllers_service, player_service])]


def _until_shutdown(services: list[Service]) -> Service:
    """``services`` started in order, unless a stop comes first: the controllers start once
    their informers have listed, which waits for an API server; SIGTERM must not."""

    async def start(context: DaemonContext, group: TaskGroup) -> None:
        with anyio.CancelScope() as starting:
            async with anyio.create_task_group() as watcher:
                async def stop_starting() -> None:
                    await context.shutdown.wait()
                    log.info("stopped before the API server answered")
                    starting.cancel()

                watcher.start_soon(stop_starting)
                for service in services:
                    await service(context, group)
                watcher.cancel_scope.cancel()

    return start


async def remote_node_agent_service(context: DaemonContext, group: TaskGroup) -> None:
    """Register the Node and renew its Lease through the API, waiting for the API server if
    it cannot be reached yet (the rest of the agent does not wait for it)."""
    group.start_soon(_keep_registered, make_node_agent(context), context.shutdown)


async def _keep_registered(agent: NodeAgent, shutdown: anyio.Event) -> None:
    async with anyio.create_task_group() as inner:
        failures = 0
        while True:
            try:
                await inner.start(agent.run)  # registered and renewed once; renews until cancelled
                break
            except MfxError as error:
                failures += 1
                if failures == 1:
                    log.warning("node %s: cannot register with the API server yet: %s; retrying with backoff",
                                agent.name, error)
                with anyio.move_on_after(jittered(REGISTER_BACKOFF.delay(failures))):
                    await shutdown.wait()
                if shutdown.is_set():
                    return
        if failures:
            log.info("node %s registered with the API server", agent.name)
        await shutdown.wait()
        inner.cancel_scope.cancel()
