"""The parts of the daemon that run beside the API (controllers, player), in start order.

``controllers_service`` builds the plugin runtimes, the service registry and event bus, one
``Registry`` with every controller's handlers (``controllers.register_all``) and one
``Manager``; it runs them until the daemon's ``shutdown`` event, then stops every plugin
(dependents first) before the runtimes close.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import partial

import anyio
from anyio.abc import TaskGroup, TaskStatus

from controllers import ControllerEnv, register_all
from controllers.node_status import NodeStatusStore
from controllers.placement import PLACED_KINDS, NodePlacement
from controllers.plugin import KIND as PLUGIN_KIND
from controllers.plugin_runtime import PluginHandle, PluginRuntimes
from mfx.engine.api import AudioEngine, EngineMode
from mfx.engine.core import Engine
from mfx.engine.sink_registry import SinkRegistry
from mfx.engine.supervisor import EngineSupervisor
from mfx.server.daemon import DaemonConfig, DaemonContext, Service
from mfx.server.plugin_call_api import plugin_call_routes
from mfx.store.cached_reads import CachedReads
from mfx.store.plugin_logs import PluginLogStore
from mfx.store.sqlite import SQLiteStore
from reconciler import ControllerOptions, EventBus, Manager, Registry, ServiceRegistry

log = logging.getLogger("mfx.daemon.controllers")


async def controllers_service(context: DaemonContext, group: TaskGroup) -> None:
    if context.event_bus is None:
        context.event_bus = EventBus(metrics=context.metrics)
    if context.service_registry is None:
        context.service_registry = ServiceRegistry(bus=context.event_bus)
    if context.log_store is None:
        context.log_store = PluginLogStore(context.config.home / "logs")
    if context.sink_registry is None:
        context.sink_registry = SinkRegistry()
    await group.start(_run_controllers, context)


async def _run_controllers(context: DaemonContext, *,
                           task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    config = context.config
    assert context.service_registry is not None and context.event_bus is not None
    assert context.sink_registry is not None
    async with AsyncExitStack() as stack:
        if context.audio_engine is None:
            context.audio_engine = await _start_engine(config, stack)
        runtimes = await stack.enter_async_context(PluginRuntimes(config.home, metrics=context.metrics))
        from mfx.server.fleet_services import node_name

        # Behind a remote API other nodes share the objects: this node writes only its entry.
        placement = NodePlacement(node_name(config), labels=dict(config.node_labels))
        shared = _is_api_store(context.store)
        # Behind the API (or on etcd) each read is a request: the controllers read what their
        # watches brought. The SQLite store answers reads from memory already.
        local = isinstance(context.store, SQLiteStore)
        store = NodeStatusStore(context.store if local else CachedReads(context.store), placement, shared=shared)
        env = ControllerEnv(
            store=store, placement=placement, metrics=context.metrics, home=config.home,
            plugin_paths=[p.resolve() for p in config.plugin_paths], services=context.service_registry,
            bus=context.event_bus, runtimes=runtimes, log_store=context.log_store,
            allow_unsigned_sources=tuple(config.allow_unsigned_sources or ()), sinks=context.sink_registry,
            engine=context.audio_engine, keep_audio_on_exit=config.engine_outlives_daemon,
        )
        on = Registry()
        register_all(on, env)
        context.api.extra_routes.extend(plugin_call_routes(_handle_lookup(env)))
        manager = Manager(store, on, metrics=context.metrics,
                          options=ControllerOptions(workers=config.workers, resync_period=config.resync_seconds))
        env.manager = manager
        context.manager = manager
        for resource in env.resources:
            await stack.enter_async_context(resource)
        try:
            # The node's labels are read before anything is placed, and watched while it runs.
            async with anyio.create_task_group() as placing:
                await placing.start(placement.run, context.store, partial(_place_again, manager))
                async with manager:
                    task_status.started()
                    await context.shutdown.wait()
                    log.info("stopping controllers")
                placing.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                for hook in env.shutdown_hooks:
                    try:
                        await hook()
                    except Exception:
                        log.exception("shutdown hook %s failed", hook)


def _is_api_store(store: object) -> bool:
    """Whether ``store`` is an ``ApiStore`` (``mfx agent``'s). Asked without importing it: its
    HTTP client (httpx, which imports rich for its command line) would add ~60 ms to every
    ``mfx serve`` start; a store of a class never imported cannot be one."""
    module = sys.modules.get("mfx.store.api_store")
    return module is not None and isinstance(store, module.ApiStore)


async def _start_engine(config: DaemonConfig, stack: AsyncExitStack) -> AudioEngine:
    """The audio engine: a supervised process (adopted when one already serves this home),
    or, when asked, one inside the daemon."""
    if config.audio_engine is EngineMode.IN_PROCESS:
        return await stack.enter_async_context(Engine(config.home))
    # Started by the first call that needs it (the first AudioSink, the first song), or
    # adopted at once when one already plays for this home.
    supervisor = await stack.enter_async_context(EngineSupervisor(config.home, on_demand=True))
    # Left before the supervisor exits: `mfx serve` leaves the engine playing for the next
    # daemon to adopt; a daemon embedded in a test or a program shuts it down.
    stack.push_async_callback(supervisor.stop, keep_running=config.engine_outlives_daemon)
    return supervisor.client


async def _place_again(manager: Manager) -> None:
    """The node's labels changed: every plugin and sink is looked at again (started or stopped here)."""
    for kind in PLACED_KINDS:
        if kind in manager.controllers:
            await manager.controllers[kind].resync()


def _handle_lookup(env: ControllerEnv) -> Callable[[str], PluginHandle | None]:
    plugins = env.controllers[PLUGIN_KIND]

    def lookup(name: str) -> PluginHandle | None:
        state = plugins.states.get(name)
        return state.handle if state is not None else None

    return lookup


def default_services() -> list[Service]:
    from mfx.server.fleet_services import leader_service, node_agent_service
    from mfx.server.player_api import player_service

    return [node_agent_service, controllers_service, leader_service, player_service]


def control_plane_services() -> list[Service]:
    """``mfx serve --no-local-agent``: only the fleet-wide controllers beside the API; the
    nodes' plugins, sinks and player run under ``mfx agent`` (mfx.server.agent_daemon)."""
    from mfx.server.fleet_services import leader_service

    return [leader_service]
