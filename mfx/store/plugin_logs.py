"""Per-plugin logs: what a plugin wrote (stdout/stderr) and what the controller said about it.

One append-only JSON-lines file per plugin, ``DIR/NAME.log`` (the daemon uses
``$MFX_HOME/logs``). When a file would grow past ``max_bytes`` it is renamed to
``NAME.log.1`` (replacing the previous one) and a new file starts, so a plugin's logs take at
most about twice ``max_bytes`` on disk. A record is one JSON object per line::

    {"time": "2025-01-02T03:04:05.678Z", "level": "info", "stream": "stderr",
     "message": "listening", "fields": {...}}

``follow`` tails a plugin's log like ``tail -F``: it is woken by ``append`` through a
per-plugin event (no polling) and reads what was added, across a rotation too.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import orjson

from mfx import cpu_affinity
from mfx.errors import BadRequestError
from mfx.logs import record_extras

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
log = logging.getLogger("mfx.store.plugin_logs")
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
LogRecord = dict[str, Any]


class Stream(enum.StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"
    CONTROLLER = "controller"  # the daemon's own messages about the plugin


@dataclass
class _Channel:
    """Wakes the followers of one plugin; ``closed`` once the plugin's logs are forgotten."""

    event: anyio.Event = field(default_factory=anyio.Event)
    closed: bool = False


@dataclass(frozen=True)
class _Position:
    inode: int
    offset: int


class PluginLogStore:
    def __init__(self, directory: Path, *, max_bytes: int = 4 * 1024 * 1024) -> None:
        if max_bytes < 1024:
            raise ValueError("max_bytes must be at least 1024")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # the files: appends come from any thread (logging handlers)
        self._channel_lock = threading.Lock()  # the followers' wake-ups; never held across I/O
        # (name, path, line) appended and not yet written (``background_writes``)
        self._pending: collections.deque[tuple[str, str, bytes]] = collections.deque()
        self._writer: _Writer | None = None
        self._channels: dict[str, _Channel] = {}
        self._sizes: dict[str, int] = {}  # name -> bytes in its current log file, once appended to
        self._files: dict[str, str] = {}  # name -> its log file's path, once the name was checked
        self._loop_thread: int | None = None
        self._token: Any = None

    # --- paths ------------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise BadRequestError(
                f'invalid plugin name "{name}": expected a DNS-1123 subdomain name'
            )
        return self.directory / f"{name}.log"

    def _rotated(self, name: str) -> Path:
        return self.directory / f"{name}.log.1"

    # --- writing ----------------------------------------------------------------------------

    def append(
        self,
        name: str,
        level: str,
        message: str,
        stream: Stream | str = Stream.CONTROLLER,
        fields: dict[str, Any] | None = None,
        *,
        at: float | None = None,
    ) -> LogRecord:
        """Add one record to ``name``'s log and wake its followers. Safe from any thread.
        ``at``: when it happened (``time.time()``), if not now."""
        path = self._files.get(name)
        if path is None:
            path = self._files[name] = str(self.path(name))
        when = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
        record: LogRecord = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": str(level).lower(),
            "stream": str(Stream(stream)),
            "message": message,
        }
        if fields:
            record["fields"] = fields
        line = orjson.dumps(record, default=str) + b"\n"
        if self._writer is not None:
            # Written by the writer thread: the caller (most often the event loop) only queues.
            self._pending.append((name, path, line))
            self._writer.nudge()
            return record
        with self._lock:
            written = self._write_queued()  # lines queued before this one go first
            self._write(name, path, line)
        for other in written:
            self._wake(other)
        self._wake(name)
        return record

    @contextlib.contextmanager
    def background_writes(self) -> Iterator[None]:
        """While entered, ``append`` queues its line and returns; a thread of the store's own
        writes the lines, on any CPU the process has (``mfx.cpu_affinity.spawning``).

        A file's creation and each line's system calls are kernel work on the appending
        thread's CPU, and the daemon's event loop appends the controller's words about every
        plugin it starts: on a first start of 500 plugins the creates alone took it a few
        hundred milliseconds. ``read`` and ``follow`` write what is queued before they read,
        so a reader sees every line appended before it asked. Lines still queued when the
        block ends are written then."""
        writer = _Writer(self._drain, name=f"mfx-plugin-logs:{self.directory.name}")
        with cpu_affinity.spawning():
            writer.start()
        self._writer = writer
        try:
            yield
        finally:
            self._writer = None
            writer.stop()
            self._drain()

    def _drain(self) -> None:
        """Write every queued line, in the order appended, and wake the followers of each."""
        with self._lock:
            written = self._write_queued()
        for name in written:
            self._wake(name)

    def _write_queued(self) -> dict[str, None]:
        """Under the files' lock: write the queued lines; the names written to, in order. A
        line the file system refuses (a full disk) is dropped with a warning: a log line is not
        worth failing the read or the append that comes after it."""
        written: dict[str, None] = {}
        while self._pending:
            name, path, line = self._pending.popleft()
            try:
                self._write(name, path, line)
            except OSError as error:
                log.warning("could not write a line of plugin %s's log: %s", name, error)
                continue
            written[name] = None
        return written

    def _write(self, name: str, path: str, line: bytes) -> None:
        """Append ``line`` to ``name``'s file (under the files' lock), rotating it when full."""
        # Sizes are known after a file's first append (this store is its only writer): a line
        # costs an open, a write and a close, not a mkdir and a stat as well; plain system
        # calls, not a buffered file object made and dropped for one line.
        size = self._sizes.get(name)
        if size is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                size = 0
        if size and size + len(line) > self.max_bytes:
            os.replace(path, self._rotated(name))
            size = 0
        try:
            fd = os.open(path, _APPEND, 0o644)
        except FileNotFoundError:  # the directory went away meanwhile
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, _APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        self._sizes[name] = size + len(line)

    def forget(self, name: str) -> None:
        """Delete ``name``'s logs (the plugin was deleted); its followers end."""
        self._drain()  # nothing queued for it is written after the files are gone
        with self._lock:
            for path in (self.path(name), self._rotated(name)):
                path.unlink(missing_ok=True)
            self._sizes.pop(name, None)
            self._files.pop(name, None)
        with self._channel_lock:
            channel = self._channels.pop(name, None)
        if channel is not None:
            channel.closed = True
            self._set(channel.event)

    def _wake(self, name: str) -> None:
        with self._channel_lock:
            channel = self._channels.get(name)
            if channel is None:
                return
            event, channel.event = channel.event, anyio.Event()
        self._set(event)

    def _set(self, event: anyio.Event) -> None:
        if self._token is None or threading.get_ident() == self._loop_thread:
            event.set()
        else:  # anyio events belong to their loop: hand the wake-up over to it
            anyio.from_thread.run_sync(event.set, token=self._token)

    # --- reading ----------------------------------------------------------------------------

    def read(
        self, name: str, since_seconds: float | None = None, tail: int | None = None
    ) -> list[LogRecord]:
        """Records of ``name``, oldest first: newer than ``since_seconds`` ago, the last ``tail``."""
        records, _ = self._read_all(name)
        return _filtered(records, since_seconds, tail)

    def _read_all(self, name: str) -> tuple[list[LogRecord], _Position | None]:
        self._drain()
        with self._lock:
            data = b""
            rotated = self._rotated(name)
            if rotated.exists():
                data = rotated.read_bytes()
            position = None
            try:
                with open(self.path(name), "rb") as handle:
                    current = handle.read()
                    position = _Position(os.fstat(handle.fileno()).st_ino, len(current))
                    data += current
            except FileNotFoundError:
                pass
        return _parse(data), position

    async def follow(
        self, name: str, since_seconds: float | None = None, tail: int | None = None
    ) -> AsyncIterator[LogRecord]:
        """The records ``read`` gives, then every new one as it is appended (until cancelled,
        or until the plugin's logs are forgotten)."""
        self.path(name)  # validates the name before anything waits
        self._loop_thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()
        with self._channel_lock:
            channel = self._channels.setdefault(name, _Channel())
            event = channel.event  # taken before reading: an append during the read still wakes us
        records, position = await anyio.to_thread.run_sync(self._read_all, name)
        for record in _filtered(records, since_seconds, tail):
            yield record
        while True:
            await event.wait()
            if channel.closed:
                return
            with self._channel_lock:
                event = channel.event
            records, position = await anyio.to_thread.run_sync(self._read_after, name, position)
            for record in records:
                yield record

    def _read_after(
        self, name: str, position: _Position | None
    ) -> tuple[list[LogRecord], _Position | None]:
        """What was appended after ``position``; follows a rotation into the new file."""
        self._drain()
        with self._lock:
            data = b""
            path = self.path(name)
            try:
                handle = open(path, "rb")
            except FileNotFoundError:
                return [], position
            with handle:
                inode = os.fstat(handle.fileno()).st_ino
                offset = 0
                if position is not None and position.inode == inode:
                    offset = position.offset
                elif position is not None:
                    rotated = self._rotated(name)
                    try:
                        with open(rotated, "rb") as old:
                            if os.fstat(old.fileno()).st_ino == position.inode:
                                old.seek(position.offset)
                                data = old.read()
                    except FileNotFoundError:
                        pass
                handle.seek(offset)
                current = handle.read()
                data += current
                return _parse(data), _Position(inode, offset + len(current))


def _parse(data: bytes) -> list[LogRecord]:
    records = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line cut by a crash mid-write: skip it, keep the rest
        if isinstance(record, dict):
            records.append(record)
    return records


def _filtered(
    records: list[LogRecord], since_seconds: float | None, tail: int | None
) -> list[LogRecord]:
    if since_seconds is not None:
        cutoff = datetime.now(UTC).timestamp() - since_seconds
        records = [r for r in records if _timestamp(r) >= cutoff]
    if tail is not None:
        records = records[-tail:] if tail > 0 else []
    return records


def _timestamp(record: LogRecord) -> float:
    try:
        return datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return 0.0


class _Writer:
    """The thread that writes a store's queued lines: woken by ``nudge``, it writes all that
    is queued at once, so under load one wake-up carries many lines."""

    def __init__(self, drain: Callable[[], None], *, name: str) -> None:
        self._drain = drain
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def nudge(self) -> None:
        if not self._wanted.is_set():  # most appends under load find it set: no wake-up call
            self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping:
            self._wanted.wait()
            self._wanted.clear()
            self._drain()


class PluginLogHandler(logging.Handler):
    """Routes the daemon's log records about a plugin into its log (stream ``controller``).

    A record is about a plugin when it carries ``plugin`` (``log.info(..., extra={"plugin": name})``
    or a ``LoggerAdapter``); the other ``extra`` fields are kept as the record's ``fields``.
    """

    def __init__(self, store: PluginLogStore, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.store = store

    def emit(self, record: logging.LogRecord) -> None:
        name = getattr(record, "plugin", None)
        if not isinstance(name, str) or not name:
            return
        try:
            fields = record_extras(record)
            fields.pop("plugin", None)  # the log it goes to
            fields["logger"] = record.name
            self.store.append(
                name, record.levelname, record.getMessage(), Stream.CONTROLLER, fields, at=record.created
            )
        except Exception:  # a log handler must never break the code that logs
            self.handleError(record)
