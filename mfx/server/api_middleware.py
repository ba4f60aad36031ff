"""Around every request: the bearer token check, request metrics, and a Status for a bug."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mfx.server.api_responses import json_response
from mfx.server.auth import token_matches
from mfx.server.status import status_object
from observability.metrics import Metrics

log = logging.getLogger("mfx.server")


class BearerAuth(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path in ("/healthz", "/livez", "/readyz"):
            return await call_next(request)
        if not token_matches(request.headers.get("authorization"), self.token):
            return json_response(status_object(401, "Unauthorized: a valid bearer token is required "
                                                    "(see 'mfx config kubeconfig')"), 401)
        return await call_next(request)


class InternalErrors:
    """An exception no handler expected is a bug: log it with its traceback, and answer a
    Status a client can show rather than a bare "Internal Server Error" page.

    Plain ASGI rather than ``BaseHTTPMiddleware``, so streamed responses (watches, log
    follows) pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            log.exception("internal error answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # too late for a Status: the server ends the response
            message = f"internal error: {type(error).__name__}: {error} (the daemon log has the traceback)"
            await json_response(status_object(500, message), 500)(scope, receive, send)


class RequestMetrics(BaseHTTPMiddleware):
    def __init__(self, app: Any, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        verb = "WATCH" if request.query_params.get("watch") in ("true", "1") else request.method
        self.metrics.api_requests_total.labels(verb, str(response.status_code)).inc()
        self.metrics.api_request_duration_seconds.labels(verb).observe(time.perf_counter() - started)
        return response
