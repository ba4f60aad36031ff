"""What a handler can tell the engine: return a ``Result`` (or None), or raise.

- ``None`` / ``Result()``: converged; the key's backoff is reset.
- ``Result(requeue_after=s)``: converged for now, look again in ``s`` seconds (polling).
- ``Result(requeue=True)``: look again after the rate limiter's backoff.
- ``TemporaryError``: not converged; retry with backoff, or after ``delay`` if given.
- ``PermanentError``: cannot converge as specified; ``Stalled=True`` with its reason and no
  retry until the object's generation changes (or ``reset``).
- Any other exception: treated as transient (backoff), logged with its traceback. An
  ``MfxError`` whose ``retryable`` is False (e.g. ``ChecksumMismatchError``) counts as permanent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mfx.api.objects import ObjectKey
from mfx.errors import MfxError


@dataclass(frozen=True)
class Result:
    requeue_after: float | None = None
    requeue: bool = False

    def __post_init__(self) -> None:
        if self.requeue_after is not None and self.requeue_after < 0:
            raise ValueError(f"requeue_after must be >= 0 seconds, got {self.requeue_after}")


class TemporaryError(MfxError, reason="ReconcileRetrying", retryable=True):
    """The handler could not converge yet; the engine retries."""

    def __init__(self, message: str, delay: float | None = None, *, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        if delay is not None and delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay}")
        self.delay = delay


class PermanentError(MfxError, reason="ReconcileFailed", retryable=False):
    """The object cannot converge as specified; retrying without a spec change is pointless."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=str(reason))


class ReconcileResult(enum.StrEnum):
    """The ``result`` label of ``mfx_reconcile_total``."""

    SUCCESS = "success"
    REQUEUE_AFTER = "requeue_after"
    REQUEUE = "requeue"
    RETRY = "retry"  # TemporaryError
    ERROR = "error"  # an unexpected exception
    STALLED = "stalled"  # PermanentError
    # Published on the bus but not counted in mfx_reconcile_total: no handler ran.
    SKIPPED = "skipped"  # stalled for this generation
    GONE = "gone"  # the object no longer exists; its state was dropped


RECONCILE_TOPIC = "reconcile"


@dataclass(frozen=True)
class ReconcileOutcome:
    """Published on the event bus (topic ``RECONCILE_TOPIC``) after each key is processed."""

    key: ObjectKey
    result: ReconcileResult
    generation: int = 0
    delay: float | None = None  # when the key comes back (requeue, backoff), in seconds
    reason: str = ""
    message: str = ""
