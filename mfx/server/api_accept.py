"""Content negotiation: what a request's Accept header allows."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mfx.server.api_responses import JSON, json_response
from mfx.server.status import status_object


def media_params(part: str) -> tuple[str, dict[str, str]]:
    media, *rest = part.split(";")
    params = {}
    for item in rest:
        key, _, value = item.partition("=")
        params[key.strip()] = value.strip()
    return media.strip().lower(), params


def wants_aggregated(request: Request) -> bool:
    for part in request.headers.get("accept", "").split(","):
        media, params = media_params(part)
        if (media == JSON and params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2"
                and params.get("as") == "APIGroupDiscoveryList"):
            return True
    return False


def accepts(request: Request, wanted: str) -> bool:
    """Whether the Accept header allows plain ``wanted`` (no header allows anything)."""
    accept = request.headers.get("accept")
    if not accept:
        return True
    for part in accept.split(","):
        media, params = media_params(part)
        if params.get("q") == "0":
            continue
        if media in ("*/*", wanted.split("/")[0] + "/*") or (media == wanted and "as" not in params):
            return True
    return False


def not_acceptable(request: Request, offered: str) -> Response:
    message = f'only {offered} is served here, not {request.headers.get("accept")!r}'
    return json_response(status_object(406, message, reason="NotAcceptable"), 406)
