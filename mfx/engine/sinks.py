"""The engine's sinks by name: one ``SinkEngine`` (device, ring, real-time writer) each.

Opening, reopening and closing a device blocks (a writer thread is joined, libasound opens
the PCM), so those run in worker threads; the event loop only keeps the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio

from mfx.audio.sink import SinkEngine
from mfx.audio.sink_status import SinkStatus
from mfx.engine.api import SinkConfig, SinkReport
from mfx.errors import NoSinkError, NotFoundError

log = logging.getLogger("mfx.engine.sinks")


def sink_report(status: SinkStatus) -> SinkReport:
    actual = status.actual
    return SinkReport(
        name=status.name, state=status.state.value, reason=status.reason, message=status.message,
        requested=status.requested, actual=actual, paced=status.paced,
        frames_written=status.frames_written, silence_frames=status.silence_frames,
        xruns=status.xruns, xrun_causes=dict(status.xrun_causes), write_errors=dict(status.write_errors),
        reopens=status.reopens, buffer_fill=status.buffer_fill, period_seconds=status.period_seconds,
        latency_seconds=status.latency_seconds, deadline_misses=status.deadline_misses,
        worst_lateness_seconds=status.worst_lateness_seconds)


class EngineSinks:
    """Not thread-safe: the event loop's. ``on_report`` gets every state change of every
    sink, from whichever thread made it."""

    def __init__(self, on_report: Callable[[SinkReport], None]) -> None:
        self._on_report = on_report
        self._sinks: dict[str, SinkEngine] = {}
        self._configs: dict[str, SinkConfig] = {}
        self._default: str | None = None
        # Sink changes wait for one another: two configures of one name must not both open it.
        self._changing = anyio.Lock()

    def configs(self) -> list[SinkConfig]:
        return list(self._configs.values())

    def get(self, name: str) -> SinkEngine:
        sink = self._sinks.get(name)
        if sink is None:
            raise NotFoundError(f"the engine has no sink {name!r} (sinks: {', '.join(self._sinks) or 'none'})")
        return sink

    def default_name(self) -> str:
        """The sink the player plays on: the one configured as default, else the only one."""
        if self._default is not None and self._default in self._sinks:
            return self._default
        if len(self._sinks) == 1:
            return next(iter(self._sinks))
        if not self._sinks:
            raise NoSinkError("the engine has no sink: configure an AudioSink first")
        raise NoSinkError(f"no default sink among {', '.join(self._sinks)}: mark one AudioSink as default")

    async def configure(self, config: SinkConfig) -> SinkReport:
        """Open the sink, reopen it when its parameters changed; unchanged, nothing happens."""
        async with self._changing:
            return await self._configure(config)

    async def _configure(self, config: SinkConfig) -> SinkReport:
        sink = self._sinks.get(config.name)
        if config.default:
            self._default = config.name
        elif self._default == config.name:
            self._default = None
        previous = self._configs.get(config.name)
        self._configs[config.name] = config
        if sink is not None and previous is not None and previous.pacing != config.pacing:
            # Pacing is how the device is opened: a sink of its own from here on.
            retired = self._sinks.pop(config.name)
            await anyio.to_thread.run_sync(lambda: retired.close(drain=False))
            sink = None
        if sink is None:
            sink = SinkEngine(config.name, config.params, on_state=self._report_state, pacing=config.pacing)
            self._sinks[config.name] = sink
            try:
                await anyio.to_thread.run_sync(sink.start)
            except BaseException:
                self._sinks.pop(config.name, None)
                self._configs.pop(config.name, None)
                raise
        elif previous is None or previous.params != config.params:
            await anyio.to_thread.run_sync(sink.reconfigure, config.params)
        return self.report(config.name)

    async def close(self, name: str, *, drain: bool, drain_seconds: float) -> None:
        async with self._changing:
            await self._close(name, drain=drain, drain_seconds=drain_seconds)

    async def _close(self, name: str, *, drain: bool, drain_seconds: float) -> None:
        sink = self.get(name)
        self._sinks.pop(name)
        self._configs.pop(name, None)
        if self._default == name:
            self._default = None
        await anyio.to_thread.run_sync(lambda: sink.close(drain=drain, timeout=drain_seconds))

    async def close_all(self, *, drain: bool, drain_seconds: float = 10.0) -> None:
        for name in list(self._sinks):
            await self.close(name, drain=drain, drain_seconds=drain_seconds)

    def report(self, name: str) -> SinkReport:
        return sink_report(self.get(name).status())

    def reports(self) -> list[SinkReport]:
        return [self.report(name) for name in self._sinks]

    def realtime(self) -> dict[str, bool]:
        return {name: sink.realtime for name, sink in self._sinks.items()}

    def _report_state(self, status: SinkStatus) -> None:
        self._on_report(sink_report(status))
