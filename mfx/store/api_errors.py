"""The mfx error for a Kubernetes ``Status`` answer: how ``ApiStore`` raises what the API said.

The API server (mfx's or Kubernetes') answers every failure with a ``metav1.Status``; its
``code`` and ``reason`` pick the class of ``mfx.errors`` a local store would have raised for
the same request, and its ``message`` is kept word for word, so a caller cannot tell the
two apart.
"""

from __future__ import annotations

from typing import Any

from mfx.errors import BadRequestError, MfxError, StoreUnavailableError, UnauthorizedError
from mfx.errors import error_from_status as status_error


def error_from_status(code: int, body: Any, *, server: str) -> MfxError:
    """The error a Status body (or any failed answer) with HTTP ``code`` stands for."""
    status = body if isinstance(body, dict) else {}
    message = status.get("message")
    if not isinstance(message, str) or not message:
        message = f"HTTP {code} from {server}"
    if code == 401:
        return UnauthorizedError(f"the API server {server} refused the credentials ({message}): "
                                 "check --token-file (or the user of --kubeconfig)")
    if code == 403:
        error = MfxError(f"the API server {server} forbids this ({message}): grant the agent's "
                         "credentials access to mfx's kinds, events and leases", reason="Forbidden")
        error.code = 403
        return error
    if code == 503:
        return StoreUnavailableError(f"the API server {server} is unavailable: {message}")
    if code in (413, 415):  # a body too large or of a type the server does not take: the caller's
        return BadRequestError(message)
    if code in (400, 404, 409, 410, 422):
        return status_error(code, status, message)
    return status_error(code, status, f"the API server {server} answered {code}: {message}")
