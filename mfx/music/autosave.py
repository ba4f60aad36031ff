"""Keeping ``player.json`` current: a save a moment after each burst of changes, and one
every ``positionSaveInterval`` while a song plays, so a crash loses little of the position."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from mfx.music.player_changes import PlayerChanges
from mfx.music.player_state import PlayerStateFile, SavedPlayer

log = logging.getLogger("mfx.player")


@dataclass
class AutoSave:
    state_file: PlayerStateFile | None  # None: the state is not kept
    changes: PlayerChanges
    snapshot: Callable[[], SavedPlayer]
    playing: Callable[[], bool]
    debounce: float  # seconds between a change and its save
    interval: float  # seconds between saves of the position while playing

    def load(self) -> SavedPlayer | None:
        return self.state_file.load() if self.state_file is not None else None

    async def run(self) -> None:
        """Save on changes until cancelled."""
        if self.state_file is None:
            return
        async with anyio.create_task_group() as group:
            group.start_soon(self._save_changes)
            group.start_soon(self._tick_position)

    async def save_now(self) -> None:
        if self.state_file is None:
            return
        saved = self.snapshot()
        try:
            await anyio.to_thread.run_sync(self.state_file.save, saved)
        except OSError as exc:
            log.error("cannot save the player state to %s: %s", self.state_file.path, exc)

    async def _save_changes(self) -> None:
        while True:
            await self.changes.wait_dirty()
            await anyio.sleep(self.debounce)  # debounce bursts of changes into one write
            self.changes.clear_dirty()
            await self.save_now()

    async def _tick_position(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            if self.playing():
                self.changes.mark_dirty()
