"""A WebAssembly plugin's log: records gathered on its thread during a call and handed to
``LoadRequest.log`` on the caller's thread once the call has returned.

Gathering and delivering are apart because the guest logs from inside wasmtime, on the
plugin's thread, while the log sink belongs to the event loop.
"""

from __future__ import annotations

from collections.abc import Callable

from mfx.runtimes.base import LogLevel, PluginLogRecord

MAX_LOG_RECORDS_PER_CALL = 1000
MAX_LOG_MESSAGE_BYTES = 8192


class CallLog:
    """The records of the call running now, plus the unfinished lines of stdout and stderr."""

    def __init__(self, plugin: str, sink: Callable[[PluginLogRecord], None]) -> None:
        self._plugin = plugin
        self._sink = sink
        self._records: list[PluginLogRecord] = []
        self._dropped = 0
        self._line_buffers: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def emit(self, level: LogLevel, message: str, stream: str) -> None:
        if len(self._records) >= MAX_LOG_RECORDS_PER_CALL:
            self._dropped += 1
            return
        self._records.append(PluginLogRecord(self._plugin, level, message, stream=stream))

    def writer(self, stream: str) -> Callable[[bytes], None]:
        """What WASI writes to ``stream`` with: one record per line; an over-long line is
        cut at ``MAX_LOG_MESSAGE_BYTES``."""
        def write(data: bytes) -> None:
            buffer = self._line_buffers[stream]
            buffer.extend(data)
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                self.emit(LogLevel.INFO, line.decode("utf-8", "replace"), stream)
            if len(buffer) > MAX_LOG_MESSAGE_BYTES:
                self.emit(LogLevel.INFO, buffer.decode("utf-8", "replace"), stream)
                buffer.clear()
        return write

    def flush(self) -> None:
        """Hand everything gathered so far to the sink (on the caller's thread)."""
        for stream, buffer in self._line_buffers.items():
            if buffer:
                self.emit(LogLevel.INFO, buffer.decode("utf-8", "replace"), stream)
                buffer.clear()
        records, self._records = self._records, []
        if self._dropped:
            records.append(PluginLogRecord(
                self._plugin, LogLevel.WARNING,
                f"{self._dropped} log records dropped (more than "
                f"{MAX_LOG_RECORDS_PER_CALL} in one call)", stream="controller"))
            self._dropped = 0
        for record in records:
            try:
                self._sink(record)
            except Exception:  # noqa: BLE001 - a broken log sink must not fail the call
                pass
