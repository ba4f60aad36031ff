"""Around every request: the bearer token check, request metrics, and a Status for a bug."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import ClientDisconnect, Request
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
        except ClientDisconnect:
            # The client went away before its body ended (a streamed apply it aborted, say):
            # nothing was done with a body never read to its end, and nobody waits for an answer.
            log.info("%s %s: the client disconnected before the end of its body", scope.get("method"),
                     scope.get("path"))
        except Exception as error:
            log.exception("internal error answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # too late for a Status: the server ends the response
            message = f"internal error: {type(error).__name__}: {error} (the daemon log has the traceback)"
            await json_response(status_object(500, message), 500)(scope, receive, send)


class RequestMetrics:
    """Requests by verb and code, and their latency up to the answer's start (a watch's stream
    then runs for as long as it is watched).

    Plain ASGI rather than ``BaseHTTPMiddleware``, which runs every request in a task of its
    own and passes its body through a stream: the answer to a small GET costs less than that."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def measured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                verb = "WATCH" if _watching(scope) else scope["method"]
                self.metrics.api_requests_total.labels(verb, str(message["status"])).inc()
                self.metrics.api_request_duration_seconds.labels(verb).observe(time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, measured_send)


def _watching(scope: Scope) -> bool:
    """Whether the request is a watch (``?watch=true``; the last value counts, as Starlette reads it)."""
    query = scope.get("query_string", b"")
    if b"watch" not in query:
        return False
    values = [value for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if key == "watch"]
    return bool(values) and values[-1] in ("true", "1")
