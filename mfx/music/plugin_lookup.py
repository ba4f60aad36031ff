"""What the player needs from the plugins the daemon runs: the Ready providers of an
interface, and the in-process object behind a provider's handle."""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger("mfx.player")

MUSIC_SOURCE = "MusicSource"
CODEC = "Codec"
AUDIO_PROCESSOR = "AudioProcessor"


class ServiceHandle(Protocol):
    """A Ready plugin as the service registry hands it out (the controller's PluginHandle)."""

    name: str

    async def call(self, method: str, params: Any = None) -> Any: ...


class ProviderLike(Protocol):
    name: str
    priority: int
    instance: Any  # a ServiceHandle


class ServiceLookup(Protocol):
    """``reconciler.ServiceRegistry`` satisfies this."""

    def lookup(self, interface: str) -> list[Any]: ...


def local_object(handle: Any) -> Any:
    """The in-process object behind a handle: the plugin object of a Python plugin, the
    instance itself for a C library (which has ``process``), or the handle as given."""
    running = getattr(handle, "running", None)
    instance = getattr(running, "instance", None) if running is not None else None
    target = instance if instance is not None else handle
    plugin = getattr(target, "plugin", None)
    return plugin if plugin is not None else target


def ready_processors(services: ServiceLookup, names: list[str]) -> tuple[list[Any], list[str]]:
    """The AudioProcessors called ``names`` that are Ready, in that order, and their names; one
    that is not Ready is left out (playback goes on without it)."""
    by_name = {p.name: p for p in services.lookup(AUDIO_PROCESSOR)}
    chosen: list[Any] = []
    active: list[str] = []
    for name in names:
        provider = by_name.get(name)
        target = local_object(provider.instance) if provider is not None else None
        if target is None or not callable(getattr(target, "process", None)):
            log.warning("AudioProcessor %s is not Ready; playing without it", name)
            continue
        chosen.append(target)
        active.append(name)
    return chosen, active
