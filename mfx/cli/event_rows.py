"""Events as ``mfx events`` and ``mfx describe`` list them: oldest first, with kubectl's age column."""

from __future__ import annotations

from mfx.api.kinds import KindInfo, resolve_kind
from mfx.api.objects import Obj, human_age


def event_kind() -> KindInfo:
    return resolve_kind("events")


def event_order(event: Obj) -> tuple[str, int]:
    """Oldest first; within one second of timestamps, in the order they were written."""
    version = str(event.get("metadata", {}).get("resourceVersion") or "")
    return str(event.get("lastTimestamp") or ""), int(version) if version.isdigit() else 0


def event_age(event: Obj) -> str:
    age = human_age(event.get("lastTimestamp"))
    count = int(event.get("count") or 1)
    if count > 1:
        return f"{age} (x{count} over {human_age(event.get('firstTimestamp'))})"
    return age
