"""metav1.Status objects: how every API error is answered, as kubectl expects them."""

from __future__ import annotations

from typing import Any

from mfx.api.kinds import KindInfo
from mfx.errors import MfxError, ValidationError

# Kubernetes' StatusReason for each HTTP code mfx answers with.
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def status_object(
    code: int,
    message: str,
    *,
    reason: str | None = None,
    kind: KindInfo | None = None,
    name: str | None = None,
    causes: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if kind is not None:
        details["group"] = kind.group
        details["kind"] = kind.plural
    if causes:
        details["causes"] = causes
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        status["details"] = details
    return status


def status_from_error(error: MfxError, *, kind: KindInfo | None = None, name: str | None = None) -> dict[str, Any]:
    """Translate an mfx error into the Status a Kubernetes client understands."""
    reason = _REASONS.get(error.code, error.reason)
    if error.code == 409 and error.reason == "AlreadyExists":
        reason = "AlreadyExists"
    if isinstance(error, ValidationError):
        causes = [
            {"reason": "FieldValueInvalid", "message": e.message, "field": e.path}
            for e in error.errors
        ]
        what = f'{kind.kind} "{name}"' if kind is not None and name else "object"
        summary = "; ".join(f"{e.path}: {e.message}" if e.path else e.message for e in error.errors)
        return status_object(422, f"{what} is invalid: {summary}", reason="Invalid", kind=kind,
                             name=name, causes=causes)
    return status_object(error.code, error.message, reason=reason, kind=kind, name=name)
