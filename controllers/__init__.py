"""Kind-specific controllers (plugin, audiosink, gitsource, node) on the reconciler engine.

The daemon builds one ``ControllerEnv`` and one ``Registry`` and calls ``register_all(on,
env)``; each controller module registers its handlers on ``on`` with one line here. The
controllers that must run once per fleet are registered by ``register_leader_only`` on a
registry of their own, which runs only while the daemon leads the election.
Controllers that own async resources (task groups, probe schedulers) append them to
``env.resources`` (entered before the manager runs, left after it); work to do once the
manager has stopped (stopping plugins in reverse dependency order) goes to
``env.shutdown_hooks``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfx.engine.api import AudioEngine
from mfx.engine.sink_registry import SinkRegistry
from mfx.store.base import Store
from observability.metrics import Metrics
from reconciler import EventBus, Registry, ServiceRegistry

if TYPE_CHECKING:
    from mfx.store.plugin_logs import PluginLogStore
    from reconciler import Manager

    from .placement import NodePlacement
    from .plugin_runtime import PluginRuntimes


@dataclass
class ControllerEnv:
    """What the composition root (``mfx.server.services``) shares with every controller."""

    store: Store
    metrics: Metrics
    home: Path  # $MFX_HOME: plugins/<name>/<version>/, state/<name>/, logs/
    plugin_paths: list[Path]  # --plugin-path directories holding <name>/
    services: ServiceRegistry  # interface -> Ready providers (the player looks here)
    bus: EventBus
    runtimes: PluginRuntimes
    log_store: PluginLogStore | None = None
    allow_unsigned_sources: tuple[str, ...] = ()
    manager: Manager | None = None  # set once the Manager is built, before it runs
    resources: list[AbstractAsyncContextManager[Any]] = field(default_factory=list)
    shutdown_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    controllers: dict[str, Any] = field(default_factory=dict)  # kind -> controller object
    sinks: SinkRegistry = field(default_factory=SinkRegistry)  # open AudioSinks; the player plays to .default()
    engine: AudioEngine | None = None  # the audio engine process the AudioSink controller drives
    keep_audio_on_exit: bool = False  # the engine outlives the daemon: leave its sinks open
    placement: NodePlacement | None = None  # this node's labels: which plugins and sinks run here (None: all)


def register_all(on: Registry, env: ControllerEnv) -> None:
    """Register every controller's handlers on ``on`` (one line per controller)."""
    from .plugin import KIND as PLUGIN_KIND
    from .plugin import PluginController

    plugins = PluginController(env)
    plugins.register(on)
    env.controllers[PLUGIN_KIND] = plugins
    env.resources.append(plugins.probes)
    env.shutdown_hooks.append(plugins.stop_all)
    from . import audiosink

    audiosink.register(on, env)


@dataclass
class LeaderEnv:
    """What the controllers that run once per fleet, on the elected leader, share."""

    store: Store
    metrics: Metrics
    home: Path  # the leader's $MFX_HOME (git caches under git/)


def register_leader_only(on: Registry, env: LeaderEnv) -> None:
    """Register the controllers that must run once per fleet (GitSource syncs, node
    lifecycle): the daemon runs them only while it leads the election."""
    from . import gitsource, node

    gitsource.register(on, env)
    node.register(on, env)


__all__ = ["ControllerEnv", "LeaderEnv", "register_all", "register_leader_only"]
