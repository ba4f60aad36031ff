"""The player's music logic: the play queue and its modes (models live in ``mfx.api.music``)."""

from mfx.music.queue import PlayQueue

__all__ = ["PlayQueue"]
