"""How objects are stored: as JSON text, decoded into fresh dicts on every read."""

from __future__ import annotations

from typing import Any

import orjson

from mfx.api.objects import Obj
from mfx.errors import BadRequestError


def dumps(obj: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError as error:
        raise BadRequestError(f"the object is not JSON-serialisable: {error}") from error


def loads(body: str) -> Obj:
    return orjson.loads(body)  # type: ignore[no-any-return]


def deep_copy(obj: Obj) -> Obj:
    """A copy that shares nothing with ``obj``; refuses what JSON cannot hold, as storing would."""
    return loads(dumps(obj))
