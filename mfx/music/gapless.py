"""Gapless look-ahead: which song follows the current one, opened by the audio engine and
enqueued there before the current one ends, so the engine runs straight into it.

The following song is worked out on a copy of the queue with a copy of its random
generator, so shuffle predicts exactly. When the queue is edited before the enqueued song
starts, the engine drops it and the new one is enqueued; if it started meanwhile, its start
event commits it. When it starts, the same queue steps are replayed on the real queue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mfx.api.music import Song
from mfx.engine.api import AudioEngine
from mfx.errors import MfxError
from mfx.music.queue import PlayQueue
from mfx.music.track_opener import OpenedTrack, TrackOpener


@dataclass
class NextPlan:
    """What follows the current song: the queue steps that reach it and its opened track
    (None: nothing follows, the queue ends there)."""

    steps: list[bool]  # the ``skip`` argument of each queue.next() call
    song: Song | None
    index: int | None
    failures: list[tuple[Song, MfxError]]
    track: OpenedTrack | None = None

    @property
    def label(self) -> str | None:
        return self.track.label if self.track is not None else None


class Lookahead:
    """The plan for the song enqueued to follow the current one, if any."""

    def __init__(self, opener: TrackOpener) -> None:
        self._opener = opener
        self.pending: NextPlan | None = None

    async def refresh(self, engine: AudioEngine, queue: PlayQueue, rng: random.Random) -> None:
        """Work out the song that follows the current one; open and enqueue it unless it is
        the one already enqueued."""
        clone = PlayQueue.from_dict(queue.to_dict(), rng=copy_rng(rng))
        target = clone.next()
        pending = self.pending
        if (pending is not None and pending.song is not None and target is not None
                and pending.song.id == target.id and pending.index == clone.current_index and not pending.failures):
            return
        playable = await self._opener.open_playable(clone, target)
        plan = NextPlan([False, *playable.steps], playable.song,
                        clone.current_index if playable.song is not None else None, playable.failures,
                        playable.track)
        if pending is not None and pending.label is not None:
            dropped = await engine.drop_queued()
            if pending.label not in dropped:
                return  # it started meanwhile: its start event commits it
        self.pending = plan
        if plan.track is not None:
            await engine.enqueue(plan.track.label)

    def take(self, label: str) -> NextPlan | None:
        """The plan whose track just started (``label``), no longer pending; None for another label."""
        pending = self.pending
        if pending is None or pending.label is None or label != pending.label:
            return None
        self.pending = None
        return pending

    def take_end(self) -> NextPlan | None:
        """The plan that says the queue ends after the current song, if that is the plan."""
        pending = self.pending
        if pending is None or pending.track is not None:
            return None
        self.pending = None
        return pending

    async def drop(self, engine: AudioEngine) -> None:
        """Forget the plan and take its track out of the engine's queue."""
        pending, self.pending = self.pending, None
        if pending is not None and pending.track is not None:
            await engine.drop_queued()

    def forget(self) -> None:
        """Forget the plan (the engine dropped its queue already: a play or a stop)."""
        self.pending = None


def copy_rng(rng: random.Random) -> random.Random:
    copy = random.Random()
    copy.setstate(rng.getstate())
    return copy
