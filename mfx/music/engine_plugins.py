"""The Codec and AudioProcessor plugins the audio engine loads into its own process.

The daemon runs every plugin (health checks, `mfx plugin call`, `formats()`); the engine
decodes and processes audio with its own instances of the Ready ``dynamic_library`` Codecs
and AudioProcessors, so no audio call crosses a process boundary. ``sync`` sends the set
whenever it changed (a plugin became Ready, went away, or got a new generation); other
plugin types cannot be loaded into the engine and are left out, with a warning once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from mfx.engine.api import AudioEngine, ErrorReport, PluginLoad, PluginRole
from mfx.errors import PluginLoadError
from mfx.music.plugin_lookup import AUDIO_PROCESSOR, CODEC, ServiceLookup
from mfx.runtimes.base import PluginType

log = logging.getLogger("mfx.player")

_ROLES = ((CODEC, PluginRole.CODEC), (AUDIO_PROCESSOR, PluginRole.AUDIO_PROCESSOR))


class EnginePlugins:
    def __init__(self, services: ServiceLookup, engine: AudioEngine) -> None:
        self._services = services
        self._engine = engine
        self._sent: tuple[Any, ...] | None = None
        self._errors: dict[str, ErrorReport | None] = {}
        self._warned: set[str] = set()

    def wanted(self) -> list[PluginLoad]:
        """The Ready in-process Codecs and AudioProcessors, as the engine would load them."""
        loads: dict[str, PluginLoad] = {}
        for interface, role in _ROLES:
            for provider in self._services.lookup(interface):
                running = getattr(provider.instance, "running", None)
                request = getattr(running, "request", None)
                if request is None:
                    continue
                if request.type is not PluginType.DYNAMIC_LIBRARY:
                    if provider.name not in self._warned:
                        self._warned.add(provider.name)
                        log.warning("%s %s is a %s plugin: the audio engine loads only dynamic_library "
                                    "plugins, so it plays without it", interface, provider.name, request.type.value)
                    continue
                loads.setdefault(provider.name, PluginLoad(
                    name=provider.name, role=role, directory=str(request.plugin_dir),
                    entry_point=request.entry_point, config=dict(running.config), generation=int(running.generation)))
        return [loads[name] for name in sorted(loads)]

    async def sync(self) -> None:
        """Send the plugin set to the engine if it changed since the last time."""
        loads = self.wanted()
        key = tuple((p.name, p.role, p.directory, p.entry_point, p.generation,
                     json.dumps(p.config, sort_keys=True, default=str)) for p in loads)
        if key == self._sent:
            return
        self._errors = await self._engine.load_plugins(loads)
        self._sent = key
        for name, error in self._errors.items():
            if error is not None:
                log.warning("the audio engine could not load %s: %s", name, error.message)

    def forget(self) -> None:
        """Send the whole set again next time (the engine was replaced)."""
        self._sent = None

    def check_loaded(self, name: str) -> None:
        """Raise PluginLoadError when ``name`` failed to load in the engine."""
        error = self._errors.get(name)
        if error is not None:
            raise PluginLoadError(f"the audio engine could not load {name}: {error.message}")

    def loaded(self, names: Sequence[str]) -> list[str]:
        """Those of ``names`` the engine has loaded, in order."""
        return [name for name in names if name in self._errors and self._errors[name] is None]
