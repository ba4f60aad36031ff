"""A WebAssembly plugin's log: records gathered on its thread during a call and handed to
``LoadRequest.log`` on the caller's thread once the call has returned.

Gathering and delivering are apart because the guest logs from inside wasmtime, on the
plugin's thread, while the log sink belongs to the event loop.

The guest's stdout and stderr go to files, read after each call, and never to a Python
callback: wasmtime performs WASI output on its own (tokio) threads, and a Python callback run
there while the interpreter finalizes ends that thread with pthread_exit, which cannot unwind
through Rust frames and aborts the whole process.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import wasmtime

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


# How much of one stream is read after a call; the rest waits for the next call.
MAX_OUTPUT_BYTES_PER_CALL = 1 << 20
STREAMS = ("stdout", "stderr")


class WasiOutputFiles:
    """The files a store's WASI stdout and stderr are written to, and how far each was read.

    Each store gets files of its own (``configure``), so a store abandoned in a call can
    never write over what its successor has produced.
    """

    def __init__(self, log: CallLog) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="mfx-wasi-output-"))
        self._writers = {stream: log.writer(stream) for stream in STREAMS}
        self._paths: dict[str, Path] = {}
        self._offsets = dict.fromkeys(STREAMS, 0)
        self._stores = 0
        # A new store is configured on the plugin's thread, output collected on the caller's.
        self._lock = threading.Lock()

    def configure(self, wasi: wasmtime.WasiConfig) -> None:
        with self._lock:
            self._collect()  # what the previous store wrote up to now (a trapped call's last words)
            self._stores += 1
            for stream in STREAMS:
                self._paths[stream] = self._folder / f"{stream}-{self._stores}"
                self._offsets[stream] = 0
            wasi.stdout_file = str(self._paths["stdout"])
            wasi.stderr_file = str(self._paths["stderr"])

    def collect(self) -> None:
        """Turn what the guest wrote since the last call into log records."""
        with self._lock:
            self._collect()

    def _collect(self) -> None:
        for stream, path in self._paths.items():
            try:
                with path.open("rb") as file:
                    file.seek(self._offsets[stream])
                    data = file.read(MAX_OUTPUT_BYTES_PER_CALL)
            except FileNotFoundError:
                continue
            if data:
                self._offsets[stream] += len(data)
                self._writers[stream](data)

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)
