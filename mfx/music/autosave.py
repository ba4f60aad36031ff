"""Keeping ``player.json`` current: a save a moment after each burst of changes, and one
every ``positionSaveInterval`` while a song plays, so a crash loses little of the position."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio

from mfx.music.player_changes import PlayerChanges
from mfx.music.player_state import PlayerStateFile, SavedPlayer

log = logging.getLogger("mfx.player")


class AutoSave:
    def __init__(self, state_file: PlayerStateFile | None, changes: PlayerChanges, *,
                 snapshot: Callable[[], SavedPlayer], playing: Callable[[], bool],
                 debounce: float, interval: float) -> None:
        self._state_file = state_file
        self._changes = changes
        self._snapshot = snapshot
        self._playing = playing
        self._debounce = debounce
        self._interval = interval

    def load(self) -> SavedPlayer | None:
        return self._state_file.load() if self._state_file is not None else None

    async def run(self) -> None:
        """Save on changes until cancelled."""
        if self._state_file is None:
            return
        async with anyio.create_task_group() as group:
            group.start_soon(self._save_changes)
            group.start_soon(self._tick_position)

    async def save_now(self) -> None:
        if self._state_file is None:
            return
        saved = self._snapshot()
        try:
            await anyio.to_thread.run_sync(self._state_file.save, saved)
        except OSError as exc:
            log.error("cannot save the player state to %s: %s", self._state_file.path, exc)

    async def _save_changes(self) -> None:
        while True:
            await self._changes.wait_dirty()
            await anyio.sleep(self._debounce)  # debounce bursts of changes into one write
            self._changes.clear_dirty()
            await self.save_now()

    async def _tick_position(self) -> None:
        while True:
            await anyio.sleep(self._interval)
            if self._playing():
                self._changes.mark_dirty()
