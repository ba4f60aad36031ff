"""``POST .../pluginmanifests/NAME/call``: call a running plugin's method by hand.

Plugin authors use it (through ``mfx call``) to try a method and see the error a crash or a
bad answer produces, exactly as the player would: the call goes through the plugin's
circuit breaker, under its call deadline, and is measured like every service call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.errors import BadRequestError, CircuitOpenError, MfxError, NotFoundError, PluginError
from mfx.server.bodies import read_body
from mfx.server.status import status_from_error


class CallTarget(Protocol):
    async def call(self, method: str, params: Any = None) -> Any: ...


def _response(data: Any, code: int = 200) -> Response:
    return Response(orjson.dumps(data, default=str), status_code=code, media_type="application/json")


def plugin_call_routes(lookup: Callable[[str], CallTarget | None]) -> list[Route]:
    """``lookup(name)`` gives the plugin's service handle, or None when there is no such plugin."""

    async def call(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            body = await read_body(request, default={})
            method = body.get("method") if isinstance(body, dict) else None
            if not isinstance(method, str) or not method:
                raise BadRequestError('the body must be {"method": NAME, "params": ...}')
            target = lookup(name)
            if target is None:
                raise NotFoundError(f'pluginmanifests "{name}" not found or never started')
            result = await target.call(method, body.get("params"))
        except MfxError as error:
            if isinstance(error, PluginError) and error.code == 500:
                # The plugin failed, not the daemon: 503 while its breaker is open, else 502.
                error.code = 503 if isinstance(error, CircuitOpenError) else 502
            return _response(status_from_error(error, kind=PLUGIN_MANIFEST, name=name), error.code)
        return _response({"result": result})

    return [Route(f"{PLUGIN_MANIFEST.resource_path}/{{name}}/call", call, methods=["POST"])]
