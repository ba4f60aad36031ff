"""What the PluginManifest controller needs from the composition root.

A Protocol, so ``controllers.ControllerEnv`` (and a narrower test double) fits without the
controller depending on everything the daemon shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mfx.store.base import Store
from observability.metrics import Metrics
from reconciler import ServiceRegistry

if TYPE_CHECKING:
    from mfx.store.plugin_logs import PluginLogStore
    from reconciler import Manager

    from .placement import NodePlacement
    from .plugin_runtime import PluginRuntimes


class PluginEnv(Protocol):
    store: Store
    metrics: Metrics
    home: Path  # $MFX_HOME: plugins/<name>/<version>/, state/<name>/
    plugin_paths: list[Path]  # --plugin-path directories holding <name>/
    services: ServiceRegistry  # interface -> Ready providers
    runtimes: PluginRuntimes
    log_store: PluginLogStore | None
    manager: Manager | None  # set once the Manager is built, before it runs
    placement: NodePlacement | None  # which plugins run on this node (None: every one)
