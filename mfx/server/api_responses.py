"""JSON answers, and the Status answer for every mfx error (as the API server words them)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from mfx.api.kinds import KindInfo
from mfx.errors import MfxError
from mfx.server.server_side_apply import ApplyConflictError
from mfx.server.status import status_from_error

JSON = "application/json"


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type=JSON)


def error_response(error: MfxError, *, kind: KindInfo | None = None, name: str | None = None) -> Response:
    status = status_from_error(error, kind=kind, name=name)
    if kind is not None and error.code == 422 and "details" in status:
        # Like the API server: an Invalid Status names the kind, a NotFound one the resource.
        status["details"]["kind"] = kind.kind
    if isinstance(error, ApplyConflictError):
        status.setdefault("details", {})["causes"] = error.causes
    return json_response(status, error.code)
