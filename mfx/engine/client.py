"""``EngineClient``: the daemon's ``AudioEngine``, over the engine's socket.

One client lasts as long as the daemon, across engine lives: the supervisor attaches it to
each engine it starts or adopts, and the client mirrors what it was asked for (``mirror``)
so a new engine can be brought back to it. A call made while no engine is attached waits
for one (``connect_wait`` seconds), then fails with AudioError. ``events()`` streams every
event from the moment it is called, across engine lives; the supervisor adds its own
``EngineRestarted``.

Standalone, without a supervisor::

    async with EngineClient.connected(EnginePaths(home).socket) as engine:
        print(engine.info)
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mfx.engine import protocol
from mfx.engine.api import (
    EngineEvent,
    EngineInfo,
    ErrorReport,
    PlaybackReport,
    PlaybackState,
    PluginLoad,
    SinkConfig,
    SinkReport,
    TrackInfo,
    TrackRequest,
)
from mfx.engine.connection import EngineConnection
from mfx.engine.events import fan_out
from mfx.engine.mirror import Mirror
from mfx.engine.snapshot import EngineSnapshot
from mfx.errors import AudioError

log = logging.getLogger("mfx.engine.client")

EVENT_BACKLOG = 10_000  # events a subscriber may fall behind before it is dropped
STALE_POLL_SECONDS = 0.01


class EngineClient:
    def __init__(self, *, connect_wait: float = 30.0) -> None:
        self.connect_wait = connect_wait
        self.mirror = Mirror()
        self._connection: EngineConnection | None = None
        self._info: EngineInfo | None = None
        self._attached = anyio.Event()
        self._subscribers: set[MemoryObjectSendStream[EngineEvent]] = set()
        # No engine runs, and the supervisor starts one on the first call that needs it
        # (``EngineSupervisor(on_demand=True)``); until then nothing plays and no sink is open.
        self.dormant = False
        self.wanted = anyio.Event()
        self.closed = False  # the supervisor let go for good: calls fail at once

    @classmethod
    @contextlib.asynccontextmanager
    async def connected(cls, socket_path: Path) -> AsyncIterator[EngineClient]:
        """A client on the engine listening at ``socket_path``, for as long as the ``with``."""
        client = cls(connect_wait=0)
        async with EngineConnection(socket_path, on_event=client.deliver) as connection:
            await connection.request("subscribe")
            client.attach(connection, await connection.request("hello"))
            try:
                yield client
            finally:
                client.detach()

    # --- engine lives (the supervisor's) ------------------------------------------------------

    def attach(self, connection: EngineConnection, info: EngineInfo) -> None:
        """Make calls on ``connection`` from now on: the engine ``info`` (its hello), whose
        events go to ``deliver``."""
        self._connection, self._info = connection, info
        self._attached.set()

    def detach(self) -> None:
        self._connection = None
        if self._attached.is_set():
            self._attached = anyio.Event()

    def deliver(self, event: EngineEvent) -> None:
        """An event of the engine (or the supervisor): mirror it, hand it to every subscriber."""
        self.mirror.observe(event)
        fan_out(event, self._subscribers, EVENT_BACKLOG)

    @property
    def attached(self) -> bool:
        return self._connection is not None and not self._connection.closed.is_set()

    # --- AudioEngine ------------------------------------------------------------------------

    @property
    def info(self) -> EngineInfo:
        if self._info is None:
            raise AudioError("no audio engine has been connected yet")
        return self._info

    def events(self) -> MemoryObjectReceiveStream[EngineEvent]:
        """Every event from now on (close the stream to stop; ``async with`` it)."""
        send, receive = anyio.create_memory_object_stream[EngineEvent](EVENT_BACKLOG)
        self._subscribers.add(send)
        return receive

    async def configure_sink(self, config: SinkConfig) -> SinkReport:
        report: SinkReport = await self._call("configure_sink", protocol.ConfigureSinkParams(config))
        self.mirror.configured(config)
        return report

    async def close_sink(self, name: str, *, drain: bool = True, drain_seconds: float = 10.0) -> None:
        await self._call("close_sink", protocol.CloseSinkParams(name, drain, drain_seconds))
        self.mirror.closed(name)

    async def sink_report(self, name: str) -> SinkReport:
        report: SinkReport = await self._call("sink_report", protocol.SinkNameParams(name))
        return report

    async def sink_reports(self) -> list[SinkReport]:
        if self.dormant:
            return []
        reports: list[SinkReport] = await self._call("sink_reports")
        return reports

    async def load_plugins(self, plugins: Sequence[PluginLoad]) -> dict[str, ErrorReport | None]:
        results: dict[str, ErrorReport | None] = await self._call(
            "load_plugins", protocol.LoadPluginsParams(tuple(plugins)))
        self.mirror.plugins = list(plugins)
        return results

    async def open_track(self, request: TrackRequest) -> TrackInfo:
        info: TrackInfo = await self._call("open_track", protocol.OpenTrackParams(request))
        self.mirror.opened(request)
        return info

    async def play(self, label: str, *, sink: str | None = None, paused: bool = False) -> None:
        await self._call("play", protocol.PlayParams(label, sink, paused))
        self.mirror.handed_over(label)
        await self._refresh()

    async def enqueue(self, label: str) -> None:
        await self._call("enqueue", protocol.LabelParams(label))
        self.mirror.handed_over(label)
        await self._refresh()

    async def drop_queued(self) -> list[str]:
        if self.dormant:
            return []
        dropped: list[str] = await self._call("drop_queued")
        await self._refresh()
        return dropped

    async def pause(self) -> PlaybackReport:
        if self.dormant:
            return await self.playback()
        return self._reported(await self._call("pause"))

    async def resume(self) -> PlaybackReport:
        return self._reported(await self._call("resume"))

    async def seek(self, frame: int) -> PlaybackReport:
        return self._reported(await self._call("seek", protocol.SeekParams(int(frame))))

    async def stop(self) -> None:
        if self.dormant:  # nothing plays: nothing to stop, and no engine is started for it
            return
        await self._call("stop")
        await self._refresh()

    async def set_volume(self, volume: float, muted: bool) -> None:
        await self._call("set_volume", protocol.VolumeParams(float(volume), bool(muted)))
        self.mirror.volume, self.mirror.muted = float(volume), bool(muted)

    async def set_processors(self, names: Sequence[str]) -> None:
        await self._call("set_processors", protocol.ProcessorsParams(tuple(names)))
        self.mirror.processors = list(names)

    async def set_fade(self, seconds: float) -> None:
        await self._call("set_fade", protocol.FadeParams(float(seconds)))
        self.mirror.fade_seconds = float(seconds)

    async def playback(self) -> PlaybackReport:
        if self.dormant:  # no engine: nothing plays, and asking does not start one
            return PlaybackReport(PlaybackState.IDLE, None, {}, 0, 0, time.monotonic())
        return self._reported(await self._call("playback"))

    # --- beyond AudioEngine -------------------------------------------------------------------

    async def snapshot(self) -> EngineSnapshot:
        """What the engine holds: sinks, plugins, current and queued tracks, playback."""
        snapshot: EngineSnapshot = await self._call("snapshot")
        return snapshot

    async def shutdown(self, *, drain: bool = False, drain_seconds: float = 10.0) -> None:
        """Ask the engine to close its sinks and exit (its supervisor must be told first, or
        it starts a new one: ``EngineSupervisor.stop(keep_running=False)``)."""
        await self._call("shutdown", protocol.ShutdownParams(drain, drain_seconds))

    # --- internals --------------------------------------------------------------------------

    async def _refresh(self) -> None:
        """Mirror the playback a call without a report changed, at once: its event may still
        be on the way when the engine is lost, and a restart resumes from the mirror."""
        try:
            self.mirror.playback(await self._call("playback"))
        except AudioError as exc:  # lost right after the call: the restart sees what it can
            log.warning("engine playback after a change: %s", exc)

    def _reported(self, report: PlaybackReport) -> PlaybackReport:
        self.mirror.playback(report)
        return report

    async def _call(self, method: str, params: object = None) -> Any:
        connection = await self._connection_for(method)
        return await connection.request(method, params)

    async def _connection_for(self, method: str) -> EngineConnection:
        if self.closed:
            raise AudioError(f"the audio engine was let go (calling {method}): the daemon is stopping")
        if self.dormant:
            self.dormant = False
            self.wanted.set()  # the supervisor starts the engine now
        with anyio.move_on_after(self.connect_wait):
            while True:
                connection = self._connection
                if connection is not None and not connection.closed.is_set():
                    return connection
                attached = self._attached
                if attached.is_set():  # lost, and the supervisor has not detached it yet
                    await anyio.sleep(STALE_POLL_SECONDS)
                else:
                    await attached.wait()
        raise AudioError(f"no audio engine is connected (calling {method}); it is being "
                         "restarted or was stopped: see $MFX_HOME/engine/engine.log")
