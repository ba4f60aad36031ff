"""The objects of one kind as an API client has seen them: a list, then watch events.

What the web UI's streams and the terminal UI keep of the daemon's objects, by name. A
watch resumed after a reconnection may replay a change the list taken then already held,
so an event older than the object held is ignored.
"""

from __future__ import annotations

from typing import Any


def resource_version(obj: dict[str, Any]) -> int:
    """``metadata.resourceVersion`` as a number (0 when missing or not a number)."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class ObjectMirror:
    """Objects by name, kept by ``reset`` (a list) and ``apply`` (each watch event)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def reset(self, items: list[dict[str, Any]]) -> None:
        self.objects = {o["metadata"]["name"]: o for o in items}

    def apply(self, kind: str, obj: dict[str, Any]) -> bool:
        """Apply one watch event (``ADDED``, ``MODIFIED``, ``DELETED``); False when it changes
        nothing: an object without a name, or older than the one held."""
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            return False
        held = self.objects.get(name)
        if held is not None and resource_version(held) > resource_version(obj):
            return False
        if kind == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj
        return True
