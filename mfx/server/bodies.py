"""Request bodies: every JSON or YAML body the API accepts is read here, under one set of limits.

The bytes are read up to ``MAX_BODY_BYTES`` (a larger body is refused with 413 before it is
parsed, and before all of it is held in memory), then parsed by the same hardened loader as
``mfx apply`` (``mfx.api.yaml_loader.load_body``): duplicate keys, non-finite numbers,
integers beyond 64 bits, deep nesting and YAML alias bombs are refused with a 4xx Status
that names the field, so no handler ever sees them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from mfx.api.json_values import json_type_phrase
from mfx.api.yaml_loader import load_body
from mfx.errors import BadRequestError, RequestEntityTooLargeError

# As the Kubernetes API server: objects are bounded by what etcd takes (about 3 MiB).
MAX_BODY_BYTES = 3 * 1024 * 1024


async def read_bytes(request: Request, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refused with 413 as soon as it is known to be over ``limit``."""
    return b"".join([chunk async for chunk in _limited(request, limit)])


async def read_lines(request: Request, *, limit: int = MAX_BODY_BYTES) -> AsyncIterator[list[bytes]]:
    """The body's lines as they arrive (a streamed body: one JSON text per line), a list of
    the lines each received piece completed; under the same limit as a body read whole."""
    pending = b""
    async for chunk in _limited(request, limit):
        *complete, pending = (pending + chunk).split(b"\n")
        if complete:
            yield complete
    if pending:
        yield [pending]


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, f"it declares {int(declared)} bytes")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, f"{size} bytes were sent before it was cut off")
        yield chunk


async def read_body(request: Request, *, yaml_allowed: bool = False, default: Any = None,
                    limit: int = MAX_BODY_BYTES) -> Any:
    """The JSON (or, with ``yaml_allowed``, YAML) value of the body; ``default`` when there is none.

    ``default`` None means a body is required; ``limit`` may be lower for small documents.
    """
    return body_value(await read_bytes(request, limit=limit), yaml_allowed=yaml_allowed, default=default)


def body_value(data: bytes, *, yaml_allowed: bool = False, default: Any = None) -> Any:
    """``read_body`` of a body already read."""
    if not data.strip():
        if default is not None:
            return default
        raise BadRequestError("the request body is empty: send a JSON object")
    return load_body(data, yaml_allowed=yaml_allowed)


async def read_object(request: Request, *, what: str = "the request body", yaml_allowed: bool = False,
                      default: dict[str, Any] | None = None, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """As ``read_body``, for endpoints that take a JSON object and nothing else."""
    return body_object(await read_bytes(request, limit=limit), what=what, yaml_allowed=yaml_allowed, default=default)


def body_object(data: bytes, *, what: str = "the request body", yaml_allowed: bool = False,
                default: dict[str, Any] | None = None) -> dict[str, Any]:
    """``read_object`` of a body already read."""
    value = body_value(data, yaml_allowed=yaml_allowed, default=default)
    if not isinstance(value, dict):
        raise BadRequestError(f"{what} must be a JSON object, not {json_type_phrase(value)}")
    return value


def _too_large(limit: int, seen: str) -> RequestEntityTooLargeError:
    return RequestEntityTooLargeError(
        f"the request body is larger than {limit} bytes, the limit for this request ({seen}): split it up")
