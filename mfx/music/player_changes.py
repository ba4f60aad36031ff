"""How the player tells others that it changed: a version and a wake-up for watchers
(``wait_for``), a dirty flag for the autosave, and events on the bus topic ``player``."""

from __future__ import annotations

from typing import Any

import anyio

from reconciler.eventbus import EventBus

PLAYER_TOPIC = "player"


class PlayerChanges:
    def __init__(self, bus: EventBus | None = None) -> None:
        self._bus = bus
        self.version = 0  # increases on every change
        self._changed = anyio.Event()
        self._dirty = anyio.Event()

    def changed(self) -> None:
        """Something watchers see changed: wake them, and have the state saved."""
        self.version += 1
        self._changed.set()
        self._changed = anyio.Event()
        self._dirty.set()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def mark_dirty(self) -> None:
        """Have the state saved without waking watchers (the position moved on)."""
        self._dirty.set()

    async def wait_dirty(self) -> None:
        await self._dirty.wait()

    def clear_dirty(self) -> None:
        self._dirty = anyio.Event()

    def publish(self, type: str, payload: dict[str, Any]) -> None:
        if self._bus is not None:
            self._bus.publish(PLAYER_TOPIC, {"type": type, **payload})
