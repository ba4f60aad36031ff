"""Gapless look-ahead: which song follows the current one, opened and enqueued in the
pipeline before the current one ends, so the pipeline runs straight into it.

The following song is worked out on a copy of the queue with a copy of its random
generator, so shuffle predicts exactly. The enqueued stream sits in a ``NextSlot``: if the
queue is edited before the slot starts, what the slot holds is swapped instead of tearing
the pipeline down. When the slot starts, the same queue steps are replayed on the real queue.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from mfx.api.music import Song
from mfx.audio.pipeline import Pipeline
from mfx.errors import MfxError
from mfx.music.decoded_streams import EmptyStream, NextSlot
from mfx.music.queue import PlayQueue
from mfx.music.track_opener import TrackOpener


@dataclass
class NextPlan:
    """What follows the current song: the queue steps that reach it and its opened stream."""

    steps: list[bool]  # the ``skip`` argument of each queue.next() call
    song: Song | None
    index: int | None
    failures: list[tuple[Song, MfxError]]
    label: str = ""
    slot: NextSlot | None = None

    def same_target(self, other: NextPlan) -> bool:
        return self.song == other.song and self.steps == other.steps and self.index == other.index


class Lookahead:
    """The plan for the song enqueued to follow the current one, if any."""

    def __init__(self, opener: TrackOpener, new_label: Callable[[], str]) -> None:
        self._opener = opener
        self._new_label = new_label
        self.pending: NextPlan | None = None

    async def refresh(self, pipeline: Pipeline, queue: PlayQueue, rng: random.Random) -> bool:
        """Work out and open the song that follows the current one; enqueue it (or update the
        slot already enqueued). True when a new slot was enqueued (the pipeline must run)."""
        clone = PlayQueue.from_dict(queue.to_dict(), rng=copy_rng(rng))
        playable = await self._opener.open_playable(clone, clone.next())
        stream = playable.stream
        plan = NextPlan([False, *playable.steps], playable.song,
                        clone.current_index if playable.song is not None else None, playable.failures)
        pending = self.pending
        if pending is not None and pending.slot is not None:
            if pending.same_target(plan):
                if stream is not None:
                    stream.close()
                return False
            old = pending.slot.replace(stream if stream is not None else EmptyStream())
            if old is None:  # it started meanwhile: its start event will commit it
                if stream is not None:
                    stream.close()
                return False
            old.close()
            plan.label, plan.slot = pending.label, pending.slot
            self.pending = plan
            return False
        if stream is None:
            return False
        plan.slot = NextSlot(stream)
        plan.label = self._new_label()
        self.pending = plan
        pipeline.enqueue(plan.slot, plan.label)
        return True

    def take(self, label: str) -> NextPlan | None:
        """The plan whose slot just started (``label``), no longer pending; None for another label."""
        pending = self.pending
        if pending is None or label != pending.label:
            return None
        self.pending = None
        return pending

    def drop(self) -> None:
        """Forget the plan; a slot already enqueued plays nothing."""
        if self.pending is not None and self.pending.slot is not None:
            self.pending.slot.replace(EmptyStream())
        self.pending = None


def copy_rng(rng: random.Random) -> random.Random:
    copy = random.Random()
    copy.setstate(rng.getstate())
    return copy
