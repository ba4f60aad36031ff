"""The audio engine, in process: sinks, plugins and playback behind the ``AudioEngine``
calls, with the events they raise. ``mfx.engine.server`` puts it on a socket; tests drive it
directly.

Use::

    async with Engine(home) as engine:
        with engine.subscribe() as events:
            await engine.configure_sink(SinkConfig("speakers", DeviceParams(), default=True))
            ...
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

import mfx
from mfx.audio.realtime import WRITER_RT_PRIORITY, request_realtime
from mfx.audio.sink import SinkEngine
from mfx.engine.api import (
    PROTOCOL_VERSION,
    EngineEvent,
    EngineInfo,
    ErrorReport,
    PlaybackReport,
    PlaybackState,
    PluginLoad,
    SinkChanged,
    SinkConfig,
    SinkReport,
    TrackInfo,
    TrackRequest,
)
from mfx.engine.events import EventHub
from mfx.engine.paths import EnginePaths
from mfx.engine.playback import Playback
from mfx.engine.plugins import EnginePlugins
from mfx.engine.sinks import EngineSinks
from mfx.engine.snapshot import EngineSnapshot
from mfx.task_group import TaskGroupOwner

log = logging.getLogger("mfx.engine")

XRUN_CHECK_SECONDS = 0.25  # how often the sinks' xrun counters are compared (they raise no event)


class Engine(TaskGroupOwner):
    def __init__(self, home: Path, *, block_frames: int | None = None) -> None:
        self.paths = EnginePaths(home)
        self.started_at = time.time()
        self._hub = EventHub()
        self._sinks = EngineSinks(lambda report: self._hub.emit(SinkChanged(report)))
        self._plugins = EnginePlugins(self.paths.plugin_state)
        options = {} if block_frames is None else {"block_frames": block_frames}
        self._playback = Playback(self._sinks, self._plugins, self._hub.emit, **options)
        self._realtime = "SCHED_OTHER"
        self._closed = False

    async def __aenter__(self) -> Self:
        self._realtime = await anyio.to_thread.run_sync(_probe_realtime)
        await self._plugins.__aenter__()
        try:
            await super().__aenter__()
        except BaseException:
            await self._plugins.__aexit__(None, None, None)
            raise
        group = self.task_group()
        group.start_soon(self._hub.pump)
        group.start_soon(self._playback.run)
        group.start_soon(self._watch_xruns)
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        with anyio.CancelScope(shield=True):
            await self.close(drain=False)
        try:
            return await super().__aexit__(*exc_info)  # type: ignore[arg-type]
        finally:
            with anyio.CancelScope(shield=True):
                await self._plugins.__aexit__(None, None, None)

    async def close(self, *, drain: bool, drain_seconds: float = 10.0) -> None:
        """Stop playing and close every sink (``drain``: play what is buffered first)."""
        if self._closed:
            return
        self._closed = True
        self._playback.close()
        await self._sinks.close_all(drain=drain, drain_seconds=drain_seconds)

    # --- reading ----------------------------------------------------------------------------

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(pid=os.getpid(), version=mfx.__version__, protocol=PROTOCOL_VERSION,
                          started_at=self.started_at, realtime=self._realtime, home=str(self.paths.home))

    @property
    def busy(self) -> bool:
        """Something is playing (the engine does not exit for idleness then)."""
        return self._playback.state is PlaybackState.PLAYING

    @contextmanager
    def subscribe(self) -> Iterator[MemoryObjectReceiveStream[EngineEvent]]:
        with self._hub.subscribe() as receive:
            yield receive

    async def events(self) -> AsyncIterator[EngineEvent]:
        with self.subscribe() as receive:
            async for event in receive:
                yield event

    def snapshot(self) -> EngineSnapshot:
        current, queued = self._playback.requests()
        return EngineSnapshot(sinks=self._sinks.configs(), plugins=self._plugins.loads(), current=current,
                              queued=queued, processors=self._playback.processor_names,
                              fade_seconds=self._playback.fade_seconds, playback=self._playback.report())

    # --- sinks ------------------------------------------------------------------------------

    async def configure_sink(self, config: SinkConfig) -> SinkReport:
        return await self._sinks.configure(config)

    async def close_sink(self, name: str, *, drain: bool = True, drain_seconds: float = 10.0) -> None:
        self._sinks.get(name)  # a clear NotFound before anything stops
        self._playback.detach(name)
        await self._sinks.close(name, drain=drain, drain_seconds=drain_seconds)

    def sink_engine(self, name: str) -> SinkEngine:
        """The sink itself, for a caller in this process (a test injecting a device fault)."""
        return self._sinks.get(name)

    async def sink_report(self, name: str) -> SinkReport:
        return self._sinks.report(name)

    async def sink_reports(self) -> list[SinkReport]:
        return self._sinks.reports()

    # --- plugins ----------------------------------------------------------------------------

    async def load_plugins(self, plugins: Sequence[PluginLoad]) -> dict[str, ErrorReport | None]:
        results = await self._plugins.apply(plugins)
        self._playback.plugins_changed()
        return results

    # --- playback ---------------------------------------------------------------------------

    async def open_track(self, request: TrackRequest) -> TrackInfo:
        return await self._playback.open(request)

    async def play(self, label: str, *, sink: str | None = None, paused: bool = False) -> None:
        self._playback.play(label, sink=sink, paused=paused)

    async def enqueue(self, label: str) -> None:
        self._playback.enqueue(label)

    async def drop_queued(self) -> list[str]:
        return self._playback.drop_queued()

    async def pause(self) -> PlaybackReport:
        return self._playback.pause()

    async def resume(self) -> PlaybackReport:
        return self._playback.resume()

    async def seek(self, frame: int) -> PlaybackReport:
        return self._playback.seek(frame)

    async def stop(self) -> None:
        self._playback.stop()

    async def set_volume(self, volume: float, muted: bool) -> None:
        self._playback.set_volume(volume, muted)

    async def set_processors(self, names: Sequence[str]) -> None:
        self._playback.set_processors(names)

    async def set_fade(self, seconds: float) -> None:
        self._playback.set_fade(seconds)

    async def playback(self) -> PlaybackReport:
        return self._playback.report()

    # --- internals --------------------------------------------------------------------------

    async def _watch_xruns(self) -> None:
        """Sinks count xruns without raising an event: compare the counters now and then and
        report a change as the sink's and the playback's."""
        seen: dict[str, int] = {}
        while True:
            await anyio.sleep(XRUN_CHECK_SECONDS)
            for report in self._sinks.reports():
                if report.xruns != seen.get(report.name, report.xruns):
                    self._hub.emit(SinkChanged(report))
                    self._playback.changed()
                seen[report.name] = report.xruns


def _probe_realtime() -> str:
    """The scheduling class the writer threads get: asked for in a thread of its own, the way
    each writer asks for it (it applies to the calling thread only)."""
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(request_realtime("probe")), name="mfx-rt-probe")
    thread.start()
    thread.join()
    return f"SCHED_FIFO/{WRITER_RT_PRIORITY}" if result and result[0] else "SCHED_OTHER"
