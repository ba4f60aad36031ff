"""Who may use the web UI: anyone on a loopback address; elsewhere, whoever knows the token.

On a non-loopback address the page asks for the API token once (a login form); the answer
is a session cookie (HttpOnly, SameSite=Strict) holding a value derived from the token, so
neither the token nor anything a script could read travels back to the page. Every answer
carries a Content-Security-Policy that allows scripts and styles from the UI's own files
only (no inline script).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

COOKIE = "mfx_ui_session"
# cytoscape adds one <style> element for its container; its hash lets exactly that through.
CYTOSCAPE_STYLE = "'sha256-pgvDUBa4IjFA2yuSJ2cqcyxmNYJMborsd0ORcRv9vw8='"
CSP = (f"default-src 'self'; script-src 'self'; style-src 'self' {CYTOSCAPE_STYLE}; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make a form post say "Origin: null"
    (b"x-frame-options", b"DENY"),
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def session_value(token: str) -> str:
    """What the cookie holds: an HMAC of the token, never the token itself."""
    return hmac.new(token.encode(), b"mfx web UI session v1", hashlib.sha256).hexdigest()


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mfx: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/app.css"></head>
<body class="login"><form class="card login-form" method="post" action="/login">
<h1>mfx</h1>
<p>This web UI is served on a network address: enter the API token to continue.
It is in <code>$MFX_HOME/token</code> on the machine that runs <code>mfx serve</code>.</p>
{problem}
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
<button type="submit">Sign in</button>
</form></body></html>
"""


def login_page(problem: str = "") -> bytes:
    text = f'<p class="problem" role="alert">{problem}</p>' if problem else ""
    return LOGIN_PAGE.format(problem=text).encode()


class Guard:
    """ASGI middleware: security headers on every answer; the login form and the session
    check when ``token`` is set (a non-loopback address)."""

    def __init__(self, app: ASGIApp, *, token: str | None, secure_cookie: bool = False) -> None:
        self.app = app
        self.token = token
        self.session = session_value(token) if token else None
        self.secure_cookie = secure_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        refusal = self._foreign(scope)
        if refusal:
            await _html(send_with_headers, 403, refusal.encode())
            return
        path = scope["path"]
        if self.session is None or path == "/static/app.css" or self._signed_in(scope):
            await self.app(scope, receive, send_with_headers)
        elif path == "/login" and scope["method"] == "POST":
            await self._login(receive, send_with_headers)
        else:
            await _html(send_with_headers, 401, login_page())

    def _foreign(self, scope: Scope) -> str | None:
        """Why a request that another site made the browser send is refused, or None.

        Without sign-in (loopback) any web page the user visits could reach this server
        through the browser: a page on another site names its own host (DNS rebinding), and
        a cross-site form or fetch that changes something carries a foreign Origin."""
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", [])}
        host = _hostname(headers.get("host", ""))
        if self.session is None and not is_loopback(host):
            return f"This web UI answers only on a loopback address, not as {host!r}: open it with 'mfx ui'."
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD") and origin is not None:
            if origin == "null" or _hostname(origin.split("://", 1)[-1]) != host:
                return "Refused: this request came from another site (its Origin is not this server)."
        return None

    def _signed_in(self, scope: Scope) -> bool:
        assert self.session is not None
        cookie = SimpleCookie()
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                try:
                    cookie.load(value.decode("latin-1"))
                except Exception:  # a malformed cookie header is just not a session
                    return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value, self.session)

    async def _login(self, receive: Receive, send: Send) -> None:
        assert self.token is not None and self.session is not None
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > 4096:
                await _html(send, 413, login_page("That form was too large: enter only the token."))
                return
            if not message.get("more_body"):
                break
        given = (parse_qs(body.decode(errors="replace")).get("token") or [""])[0].strip()
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await _html(send, 401, login_page("That is not the API token: copy it from $MFX_HOME/token and try again."))
            return
        flags = "; Secure" if self.secure_cookie else ""
        cookie = f"{COOKIE}={self.session}; Path=/; HttpOnly; SameSite=Strict{flags}"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", b"/"), (b"set-cookie", cookie.encode()),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def _hostname(authority: str) -> str:
    """``host:port`` or ``[v6]:port`` -> the host alone."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


async def _html(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
