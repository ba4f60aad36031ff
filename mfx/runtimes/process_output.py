"""Reading what a plugin process prints: lines from its pipes, and the log level of each
stderr line."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson

from mfx.runtimes.base import LogLevel


class LineReader:
    """Lines from a pipe; an over-long line is cut into pieces instead of buffered whole."""

    def __init__(self, reader: asyncio.StreamReader, max_line: int = 64 * 1024) -> None:
        self._reader = reader
        self._max = max_line
        self._buffer = b""
        self._eof = False

    async def readline(self) -> bytes | None:
        """The next line without its newline; None at end-of-file."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
                return line
            if len(self._buffer) >= self._max:
                line, self._buffer = self._buffer[: self._max], self._buffer[self._max :]
                return line
            if self._eof:
                if self._buffer:
                    line, self._buffer = self._buffer, b""
                    return line
                return None
            chunk = await self._reader.read(65536)
            if not chunk:
                self._eof = True
            self._buffer += chunk


_LEVEL_WORDS: dict[str, LogLevel] = {
    "trace": LogLevel.DEBUG,
    "debug": LogLevel.DEBUG,
    "info": LogLevel.INFO,
    "notice": LogLevel.INFO,
    "warn": LogLevel.WARNING,
    "warning": LogLevel.WARNING,
    "err": LogLevel.ERROR,
    "error": LogLevel.ERROR,
    "critical": LogLevel.ERROR,
    "fatal": LogLevel.ERROR,
    "panic": LogLevel.ERROR,
}
_PREFIX = re.compile(r"^\s*(?:\[(?P<bracket>[A-Za-z]+)\]:?|(?P<word>[A-Za-z]+):?)(?:\s+|$)(?P<rest>.*)$", re.S)


class StderrParser:
    """Turns a plugin's stderr lines into (level, message, fields).

    Understood: ``LEVEL message`` (what the SDK's logging writes), ``LEVEL: message``,
    ``[level] message``, and JSON objects with a ``level``/``severity``/``levelname`` field.
    A Python traceback is an error from its first line to its exception line. Anything else
    is INFO.
    """

    def __init__(self) -> None:
        self._in_traceback = False

    def parse(self, line: str) -> tuple[LogLevel, str, dict[str, Any]]:
        if self._in_traceback:
            if not line[:1].isspace() and line.strip():
                self._in_traceback = False  # the "ValueError: ..." line ends it
            return LogLevel.ERROR, line, {}
        if line.startswith("Traceback (most recent call last):"):
            self._in_traceback = True
            return LogLevel.ERROR, line, {}
        stripped = line.lstrip()
        if stripped.startswith("{"):
            parsed = _parse_json_line(stripped)
            if parsed is not None:
                return parsed
        match = _PREFIX.match(line)
        if match:
            word = (match.group("bracket") or match.group("word") or "").lower()
            level = _LEVEL_WORDS.get(word)
            if level is not None:
                return level, match.group("rest"), {}
        return LogLevel.INFO, line, {}


def _parse_json_line(text: str) -> tuple[LogLevel, str, dict[str, Any]] | None:
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    fields = dict(record)
    raw_level = next(
        (fields.pop(k) for k in ("level", "severity", "levelname", "lvl") if k in fields), "info"
    )
    level = _LEVEL_WORDS.get(str(raw_level).lower(), LogLevel.INFO)
    message = next((fields.pop(k) for k in ("message", "msg", "event") if k in fields), "")
    return level, str(message), fields
