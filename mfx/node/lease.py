"""Lease objects as coordination.k8s.io/v1 has them: who holds a lock, and until when.

A lease has expired once ``renewTime + leaseDurationSeconds`` is in the past; a released
lease (no holder) is free at once. Times are RFC 3339 with microseconds (Kubernetes'
MicroTime): renewals come a few times a second in tests, and seconds would blur them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mfx.api.kinds import LEASE
from mfx.api.objects import Obj, now, parse_time

LEASE_KIND = LEASE.kind


def micro_time(when: datetime) -> str:
    """RFC 3339 with microseconds and a Z suffix, like Kubernetes' MicroTime."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class LeaseRecord:
    """The spec of a Lease, typed."""

    holder: str
    duration_seconds: int
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int

    @classmethod
    def of(cls, obj: Obj) -> LeaseRecord:
        spec = obj.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        transitions = spec.get("leaseTransitions")
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration_seconds=duration if isinstance(duration, int) and duration > 0 else 0,
            acquire_time=_time(spec.get("acquireTime")),
            renew_time=_time(spec.get("renewTime")),
            transitions=transitions if isinstance(transitions, int) and transitions >= 0 else 0,
        )

    def expires_at(self) -> datetime | None:
        """When the lease stops holding; None when it holds nothing (no holder or no renewal)."""
        if not self.holder or self.renew_time is None:
            return None
        return self.renew_time + timedelta(seconds=self.duration_seconds)

    def is_free(self, at: datetime | None = None) -> bool:
        """Released, never renewed, or expired: a candidate may take it."""
        expires = self.expires_at()
        return expires is None or expires < (at or now())

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"holderIdentity": self.holder, "leaseDurationSeconds": self.duration_seconds,
                                "leaseTransitions": self.transitions}
        if self.acquire_time is not None:
            spec["acquireTime"] = micro_time(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = micro_time(self.renew_time)
        return spec


def new_lease(name: str, record: LeaseRecord, labels: dict[str, str] | None = None) -> Obj:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": LEASE.api_version, "kind": LEASE_KIND, "metadata": metadata, "spec": record.spec()}


def with_record(obj: Obj, record: LeaseRecord) -> Obj:
    """A copy of the Lease ``obj`` (its resourceVersion kept, for an optimistic update) holding ``record``."""
    return {**obj, "metadata": dict(obj.get("metadata") or {}), "spec": record.spec()}
