"""The wire protocol between the mfx daemon and an RPC plugin process (both sides use it).

Start-up (after hashicorp/go-plugin):

1. The daemon starts the plugin with ``MFX_PLUGIN_MAGIC_COOKIE`` set to ``COOKIE_VALUE`` and
   ``MFX_PLUGIN_SOCKET_DIR`` naming a private directory. The cookie is not a secret; it tells
   a plugin that it was started by mfx, so one run by hand explains itself instead of waiting.
2. The plugin binds ``<socket dir>/plugin.sock``, listens, and prints exactly one line on
   stdout: ``CORE_PROTOCOL|APP_PROTOCOL|unix|SOCKET_PATH|jsonrpc``.
3. The daemon connects; from then on they speak JSON-RPC 2.0 over the socket.

Framing: one JSON document per line (orjson never emits a raw newline inside a document).
Both sides refuse a message larger than the agreed maximum (``MFX_PLUGIN_MAX_MESSAGE_BYTES``):
the receiver stops reading at the limit instead of buffering without bound.

Calls from the daemon are requests with an integer ``id``; the plugin may answer them in any
order. ``$/cancel`` (a notification, ``params: {"id": N}``) tells the plugin that the daemon
has given up on request N. Errors raised by plugin code come back as ``PLUGIN_ERROR`` with
``data: {"type", "message", "traceback"}``.

This module is imported by every plugin process: it must stay cheap to import.
"""

from __future__ import annotations

import enum
from typing import Any

import orjson

COOKIE_ENV = "MFX_PLUGIN_MAGIC_COOKIE"
COOKIE_VALUE = "7f9c2ba4e88f827d616045507605853e"
SOCKET_DIR_ENV = "MFX_PLUGIN_SOCKET_DIR"
MAX_MESSAGE_ENV = "MFX_PLUGIN_MAX_MESSAGE_BYTES"
PLUGIN_NAME_ENV = "MFX_PLUGIN_NAME"
LOG_LEVEL_ENV = "MFX_PLUGIN_LOG_LEVEL"

CORE_PROTOCOL_VERSION = 1
NETWORK = "unix"
PROTOCOL = "jsonrpc"
SOCKET_NAME = "plugin.sock"
# sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107
MAX_HANDSHAKE_LINE_BYTES = 4096
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

CANCEL_METHOD = "$/cancel"
JSONRPC = "2.0"


class ErrorCode(enum.IntEnum):
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    PLUGIN_ERROR = -32000  # the plugin's own code raised; data carries type/message/traceback
    CANCELLED = -32001  # the daemon cancelled the request
    MESSAGE_TOO_LARGE = -32002  # the answer would exceed the agreed maximum size


class FramingError(Exception):
    """A message on the wire is malformed or too large (the connection is unusable)."""


class MessageTooLargeError(FramingError):
    pass


class MalformedMessageError(FramingError):
    pass


class HandshakeFormatError(ValueError):
    """The handshake line is not ``CORE|APP|unix|PATH|jsonrpc``; the text says what is wrong."""


class Handshake:
    """The one line a plugin prints on stdout once it listens."""

    __slots__ = ("core_version", "app_version", "network", "address", "protocol")

    def __init__(
        self,
        core_version: int,
        app_version: int,
        address: str,
        network: str = NETWORK,
        protocol: str = PROTOCOL,
    ) -> None:
        self.core_version = core_version
        self.app_version = app_version
        self.network = network
        self.address = address
        self.protocol = protocol

    def line(self) -> str:
        return (
            f"{self.core_version}|{self.app_version}|{self.network}|{self.address}|{self.protocol}\n"
        )

    @classmethod
    def parse(cls, raw: bytes | str) -> Handshake:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        text = text.rstrip("\r\n")
        parts = text.split("|")
        if len(parts) != 5:
            raise HandshakeFormatError(
                f"expected 'CORE|APP|unix|SOCKET_PATH|jsonrpc' (5 fields), got {_shorten(text)!r}"
            )
        core, app, network, address, protocol = parts
        if not core.isdigit() or not app.isdigit():
            raise HandshakeFormatError(
                f"protocol versions must be integers, got core={core!r} app={app!r}"
            )
        if network != NETWORK:
            raise HandshakeFormatError(f"network must be {NETWORK!r}, got {network!r}")
        if protocol != PROTOCOL:
            raise HandshakeFormatError(f"protocol must be {PROTOCOL!r}, got {protocol!r}")
        if not address.startswith("/"):
            raise HandshakeFormatError(f"socket path must be absolute, got {address!r}")
        if len(address.encode()) > MAX_SOCKET_PATH_BYTES:
            raise HandshakeFormatError(
                f"socket path is {len(address.encode())} bytes, at most {MAX_SOCKET_PATH_BYTES} fit"
            )
        return cls(int(core), int(app), address, network, protocol)

    def __repr__(self) -> str:
        return f"Handshake({self.line().strip()!r})"


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --- messages ---------------------------------------------------------------------------


def request(id: int, method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": JSONRPC, "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": JSONRPC, "method": method}
    if params is not None:
        message["params"] = params
    return message


def result(id: int | str | None, value: Any) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC, "id": id, "result": value}


def error(
    id: int | str | None, code: int, message: str, data: Any = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": int(code), "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": JSONRPC, "id": id, "error": body}


def encode(message: dict[str, Any], max_bytes: int) -> bytes:
    """One frame: the JSON document and a newline. Raises ``MessageTooLargeError``."""
    data = orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE)
    if len(data) > max_bytes:
        raise MessageTooLargeError(
            f"message is {len(data)} bytes, the maximum is {max_bytes} bytes"
        )
    return data


def decode(frame: bytes) -> dict[str, Any]:
    """Parse one frame (without its newline). Raises ``MalformedMessageError``."""
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessageError(f"not valid JSON ({exc}): {_shorten_bytes(frame)}") from None
    if not isinstance(message, dict) or message.get("jsonrpc") != JSONRPC:
        raise MalformedMessageError(
            f"not a JSON-RPC 2.0 message (an object with \"jsonrpc\": \"2.0\"): {_shorten_bytes(frame)}"
        )
    return message


def _shorten_bytes(frame: bytes, limit: int = 120) -> str:
    text = frame[:limit].decode("utf-8", "replace")
    return repr(text + ("..." if len(frame) > limit else ""))


class FrameSplitter:
    """Cuts a byte stream into newline-terminated frames, refusing any over ``max_bytes``."""

    __slots__ = ("_parts", "_size", "_max")

    def __init__(self, max_bytes: int) -> None:
        self._parts: list[bytes] = []  # a frame still arriving; joined once, when it ends
        self._size = 0
        self._max = max_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        if not self._parts and chunk.endswith(b"\n") and chunk.count(b"\n") == 1:
            # One whole frame, the usual case for a request or an answer.
            if len(chunk) > self._max:
                raise MessageTooLargeError(f"message is {len(chunk)} bytes, the maximum is {self._max} bytes")
            frame = chunk[:-1]
            return [frame] if frame.strip() else []
        if b"\n" not in chunk:
            self._parts.append(chunk)
            self._size += len(chunk)
            if self._size >= self._max:
                seen = self._size
                self._parts, self._size = [], 0
                raise MessageTooLargeError(
                    f"message exceeds the maximum of {self._max} bytes (no end after {seen} bytes)"
                )
            return []
        if self._parts:
            self._parts.append(chunk)
            data = b"".join(self._parts)
        else:
            data = chunk
        frames = data.split(b"\n")
        tail = frames.pop()
        self._parts, self._size = ([tail], len(tail)) if tail else ([], 0)
        for frame in frames:
            if len(frame) + 1 > self._max:
                raise MessageTooLargeError(
                    f"message is {len(frame) + 1} bytes, the maximum is {self._max} bytes"
                )
        if self._size >= self._max:
            raise MessageTooLargeError(f"message exceeds the maximum of {self._max} bytes")
        return [frame for frame in frames if frame.strip()]

    @property
    def pending(self) -> int:
        return self._size
