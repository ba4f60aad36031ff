"""The opaque ``continue`` token of a paged list: where the next page starts (by name)."""

from __future__ import annotations

import base64
import binascii

import orjson

from mfx.errors import BadRequestError


def encode_continue(name: str, resource_version: int) -> str:
    raw = orjson.dumps({"v": 1, "rv": resource_version, "start": name})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> str:
    """The name the next page starts after; ``BadRequestError`` for a token not made here."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        start = data["start"]
        if data.get("v") != 1 or not isinstance(start, str):
            raise ValueError("unknown token version")
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise BadRequestError(
            'invalid continue token; use the "continue" value of the previous list, or list again without it'
        ) from None
    return start
