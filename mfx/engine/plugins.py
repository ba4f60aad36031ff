"""The plugins loaded into the engine process: Codecs and AudioProcessors, dynamic_library
only (their objects are called on the pipeline's thread, in this process).

``apply`` makes the loaded set exactly what the daemon asks for: a name with a new
generation (or a changed entry point, directory or config) is loaded again, a name no longer
asked for is stopped and unloaded, the rest stay as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import anyio

from mfx.engine.api import ErrorReport, PluginLoad, PluginRole
from mfx.errors import MfxError, NotFoundError, PluginLoadError
from mfx.runtimes.base import (
    LoadRequest,
    LogLevel,
    PluginInstance,
    PluginLogRecord,
    PluginType,
    StartStep,
)
from mfx.runtimes.dynamic_library import DynamicLibraryRuntime

log = logging.getLogger("mfx.engine.plugins")

LOAD_SECONDS = 30.0  # one plugin's load, initialize and start


@dataclass
class LoadedPlugin:
    load: PluginLoad
    instance: PluginInstance

    @property
    def target(self) -> Any:
        """The object the pipeline calls: a Python plugin's own object, or a C library's
        instance (which has ``process``)."""
        plugin = getattr(self.instance, "plugin", None)
        return plugin if plugin is not None else self.instance


class EnginePlugins:
    """An async context manager owning the runtime; not thread-safe (the event loop's)."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._runtime = DynamicLibraryRuntime(state_dir / ".private")
        self._loaded: dict[str, LoadedPlugin] = {}
        self._applying = anyio.Lock()  # one plugin set at a time

    async def __aenter__(self) -> Self:
        await self._runtime.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with anyio.CancelScope(shield=True):
            for name in list(self._loaded):
                await self._unload(name)
            await self._runtime.__aexit__(*exc_info)

    def loads(self) -> list[PluginLoad]:
        return [plugin.load for plugin in self._loaded.values()]

    async def apply(self, wanted: Sequence[PluginLoad]) -> dict[str, ErrorReport | None]:
        async with self._applying:
            return await self._apply(wanted)

    async def _apply(self, wanted: Sequence[PluginLoad]) -> dict[str, ErrorReport | None]:
        results: dict[str, ErrorReport | None] = {}
        names = {load.name for load in wanted}
        for name in [n for n in self._loaded if n not in names]:
            await self._unload(name)
        for load in wanted:
            current = self._loaded.get(load.name)
            if current is not None and current.load == load:
                results[load.name] = None
                continue
            if current is not None:
                await self._unload(load.name)
            try:
                self._loaded[load.name] = await self._load(load)
                results[load.name] = None
            except MfxError as exc:
                log.warning("plugin %s: %s", load.name, exc)
                results[load.name] = ErrorReport(reason=exc.reason, message=str(exc))
        return results

    def codec(self, name: str) -> Any:
        return self._target(name, PluginRole.CODEC, "open")

    def processor(self, name: str) -> Any:
        return self._target(name, PluginRole.AUDIO_PROCESSOR, "process")

    def _target(self, name: str, role: PluginRole, method: str) -> Any:
        plugin = self._loaded.get(name)
        if plugin is None or plugin.load.role is not role:
            loaded = ", ".join(n for n, p in self._loaded.items() if p.load.role is role) or "none"
            raise NotFoundError(f"no {role.value} plugin {name!r} is loaded in the engine (loaded: {loaded})")
        target = plugin.target
        if not callable(getattr(target, method, None)):
            raise PluginLoadError(f"plugin {name!r} has no {method}(): it is not a {role.value}")
        return target

    async def _load(self, load: PluginLoad) -> LoadedPlugin:
        state_dir = self._state_dir / load.name
        state_dir.mkdir(parents=True, exist_ok=True)
        request = LoadRequest(
            name=load.name, version=str(load.generation), type=PluginType.DYNAMIC_LIBRARY,
            entry_point=load.entry_point, plugin_dir=Path(load.directory), state_dir=state_dir,
            config=dict(load.config), log=_log_record, start_timeout_seconds=LOAD_SECONDS)
        with anyio.fail_after(LOAD_SECONDS):
            loaded = await self._runtime.load_started(request, until=StartStep.STARTED)
            instance = loaded.instance
            try:
                if loaded.error is not None:
                    raise loaded.error
                if loaded.reached < StartStep.INITIALIZED:
                    await instance.initialize(request.config)
                if loaded.reached < StartStep.STARTED:
                    await instance.start()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await instance.cleanup()
                raise
        log.info("plugin %s (%s) loaded, generation %d", load.name, load.role.value, load.generation)
        return LoadedPlugin(load, instance)

    async def _unload(self, name: str) -> None:
        plugin = self._loaded.pop(name, None)
        if plugin is None:
            return
        try:
            await plugin.instance.stop()
        except MfxError as exc:
            log.warning("plugin %s: stop: %s", name, exc)
        await plugin.instance.cleanup()
        log.info("plugin %s unloaded", name)


def _log_record(record: PluginLogRecord) -> None:
    level = {LogLevel.DEBUG: logging.DEBUG, LogLevel.INFO: logging.INFO,
             LogLevel.WARNING: logging.WARNING}.get(record.level, logging.ERROR)
    log.log(level, "plugin %s: %s", record.plugin, record.message)
