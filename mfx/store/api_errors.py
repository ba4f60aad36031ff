"""The mfx error for a Kubernetes ``Status`` answer: how ``ApiStore`` raises what the API said.

The API server (mfx's or Kubernetes') answers every failure with a ``metav1.Status``; its
``code`` and ``reason`` pick the class of ``mfx.errors`` a local store would have raised for
the same request, and its ``message`` is kept word for word, so a caller cannot tell the
two apart.
"""

from __future__ import annotations

from typing import Any

from mfx.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    FieldError,
    GoneError,
    MfxError,
    NotFoundError,
    StoreUnavailableError,
    UnauthorizedError,
    ValidationError,
)


def error_from_status(code: int, body: Any, *, server: str) -> MfxError:
    """The error a Status body (or any failed answer) with HTTP ``code`` stands for."""
    status = body if isinstance(body, dict) else {}
    message = status.get("message")
    if not isinstance(message, str) or not message:
        message = f"HTTP {code} from {server}"
    reason = status.get("reason") if isinstance(status.get("reason"), str) else ""
    if code == 404:
        return NotFoundError(message)
    if code == 409:
        return AlreadyExistsError(message) if reason == "AlreadyExists" else ConflictError(message)
    if code == 410:
        return GoneError(message)
    if code == 401:
        return UnauthorizedError(f"the API server {server} refused the credentials ({message}): "
                                 "check --token-file (or the user of --kubeconfig)")
    if code == 403:
        error = MfxError(f"the API server {server} forbids this ({message}): grant the agent's "
                         "credentials access to mfx's kinds, events and leases", reason="Forbidden")
        error.code = 403
        return error
    if code == 422:
        causes = (status.get("details") or {}).get("causes") or []
        errors = [FieldError(path=str(c.get("field", "")), message=str(c.get("message", "")))
                  for c in causes if isinstance(c, dict)]
        return ValidationError(errors or [FieldError(path="", message=message)])
    if code in (400, 413, 415):
        return BadRequestError(message)
    if code == 503:
        return StoreUnavailableError(f"the API server {server} is unavailable: {message}")
    error = MfxError(f"the API server {server} answered {code}: {message}", reason=reason or "InternalError")
    error.code = code
    return error
