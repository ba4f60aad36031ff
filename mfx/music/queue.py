"""The play queue: what plays next under each ``PlayMode``, and what has played.

Pure and synchronous: no I/O, no clock, randomness only from the injected
``random.Random`` (seed it in tests). The player owns one ``PlayQueue`` and calls
``next()`` when a song ends, ``next(skip=True)`` when the user skips, ``previous()`` when
the user goes back.

Modes:
- in-order: ``next()`` returns None after the last song (the player stops).
- loop-all: wraps around to the first song.
- loop-one: ``next()`` repeats the current song; ``next(skip=True)`` moves on as loop-all.
- shuffle: a cycle plays every song exactly once in random order, then a new cycle is
  drawn; a new cycle never starts with the song that ended the previous one. Songs added
  during a cycle land at a random place among the songs not yet played in it;
  ``insert_next`` plays next in every mode.

The queue may hold the same song more than once; positions are list indices.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mfx.api.music import PlayMode, Song
from mfx.errors import BadRequestError

DEFAULT_HISTORY_LIMIT = 200


@dataclass(frozen=True)
class _Entry:
    key: int  # stable identity of this queue slot, survives moves
    song: Song


class PlayQueue:
    def __init__(
        self,
        songs: Iterable[Song] = (),
        *,
        mode: PlayMode = PlayMode.IN_ORDER,
        rng: random.Random | None = None,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
    ) -> None:
        if history_limit < 0:
            raise BadRequestError(f"history_limit must be >= 0, got {history_limit}")
        self._rng = rng if rng is not None else random.Random()
        self._entries: list[_Entry] = []
        self._next_key = 0
        self._current: int | None = None  # key of the playing entry
        # Where the cursor is when nothing is current (after a removal of the current
        # song, or before the first next()): next() plays entries[_cursor].
        self._cursor = 0
        self._mode = PlayMode.IN_ORDER
        self._order: list[int] = []  # shuffle: keys of this cycle, in play order
        self._order_pos = -1  # shuffle: index in _order of the current (or last) song
        self._history: deque[Song] = deque(maxlen=history_limit)
        self.extend(songs)
        self.set_mode(mode)

    # --- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def songs(self) -> list[Song]:
        return [entry.song for entry in self._entries]

    @property
    def mode(self) -> PlayMode:
        return self._mode

    @property
    def current(self) -> Song | None:
        index = self.current_index
        return None if index is None else self._entries[index].song

    @property
    def current_index(self) -> int | None:
        if self._current is None:
            return None
        return self._index_of(self._current)

    @property
    def history(self) -> list[Song]:
        """Songs that were current, oldest first, at most ``history_limit`` of them."""
        return list(self._history)

    @property
    def history_limit(self) -> int:
        return self._history.maxlen or 0

    # --- editing -----------------------------------------------------------------------

    def add(self, song: Song) -> int:
        """Append ``song``; returns its index."""
        self._insert(len(self._entries), song, shuffle_next=False)
        return len(self._entries) - 1

    def extend(self, songs: Iterable[Song]) -> None:
        for song in songs:
            self.add(song)

    def insert_next(self, song: Song) -> int:
        """Queue ``song`` to play right after the current one; returns its index."""
        index = self._after_current_index()
        self._insert(index, song, shuffle_next=True)
        return index

    def remove(self, index: int) -> Song:
        """Remove the song at ``index``. Removing the current song keeps the cursor there:
        the next ``next()`` plays the song that followed it."""
        self._check_index(index)
        entry = self._entries.pop(index)
        if entry.key in self._order:
            position = self._order.index(entry.key)
            self._order.pop(position)
            if position <= self._order_pos:
                self._order_pos -= 1
        if entry.key == self._current:
            self._history.append(entry.song)
            self._current = None
            self._cursor = index
        elif self._current is None and index < self._cursor:
            self._cursor -= 1
        return entry.song

    def move(self, source: int, target: int) -> None:
        """Move the song at ``source`` to ``target`` (indices as before the move)."""
        self._check_index(source)
        self._check_index(target)
        if self._current is None:
            cursor_key = self._entries[self._cursor].key if self._cursor < len(self._entries) else None
        entry = self._entries.pop(source)
        self._entries.insert(target, entry)
        if self._current is None:
            self._cursor = len(self._entries) if cursor_key is None else self._index_of(cursor_key)

    def clear(self) -> None:
        self._leave_current()
        self._entries.clear()
        self._order.clear()
        self._order_pos = -1
        self._cursor = 0

    # --- moving ------------------------------------------------------------------------

    def play(self, index: int) -> Song:
        """Make the song at ``index`` current (the user picked it)."""
        self._check_index(index)
        key = self._entries[index].key
        if self._mode is PlayMode.SHUFFLE:
            self._order_pos = self._order.index(key)
        self._set_current(key)
        return self._entries[index].song

    def next(self, *, skip: bool = False) -> Song | None:
        """Advance to the next song and return it; None when there is nothing to play.

        ``skip`` marks a user's skip: in loop-one mode it moves on instead of repeating.
        """
        if not self._entries:
            return None
        if self._mode is PlayMode.SHUFFLE:
            return self._next_shuffled()
        if self._mode is PlayMode.LOOP_ONE and not skip and self._current is not None:
            # The same song again: the history shows it was played once more.
            self._set_current(self._current, repeat=True)
            return self.current
        index = self._after_current_index()
        if index >= len(self._entries):
            if self._mode is PlayMode.IN_ORDER:
                return None
            index = 0
        return self._set_current(self._entries[index].key)

    def previous(self) -> Song | None:
        """Go back one song in play order; None at the start (in-order and shuffle)."""
        if not self._entries:
            return None
        if self._mode is PlayMode.SHUFFLE:
            position = self._order_pos - 1 if self._current is not None else self._order_pos
            if position < 0:
                return None
            self._order_pos = position
            return self._set_current(self._order[position])
        current = self.current_index
        index = (current if current is not None else self._cursor) - 1
        if index < 0:
            if self._mode is PlayMode.IN_ORDER:
                return None
            index = len(self._entries) - 1
        return self._set_current(self._entries[index].key)

    def set_mode(self, mode: PlayMode) -> None:
        mode = PlayMode(mode)
        if mode is PlayMode.SHUFFLE and self._mode is not PlayMode.SHUFFLE:
            self._start_cycle(first=self._current)
        elif mode is not PlayMode.SHUFFLE:
            self._order = []
            self._order_pos = -1
        self._mode = mode

    # --- persistence -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot; the random generator's state is not part of it."""
        index_of = {entry.key: index for index, entry in enumerate(self._entries)}
        return {
            "songs": [entry.song.wire() for entry in self._entries],
            "current": self.current_index,
            "cursor": self._cursor,
            "mode": self._mode.value,
            "shuffleOrder": [index_of[key] for key in self._order],
            "shufflePosition": self._order_pos,
            "history": [song.wire() for song in self._history],
            "historyLimit": self.history_limit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, rng: random.Random | None = None) -> PlayQueue:
        """Rebuild a queue from ``to_dict()`` output; raises BadRequestError naming the field."""
        try:
            songs = [Song.from_wire(item) for item in data.get("songs", [])]
            history = [Song.from_wire(item) for item in data.get("history", [])]
            mode = PlayMode(data.get("mode", PlayMode.IN_ORDER))
            history_limit = int(data.get("historyLimit", DEFAULT_HISTORY_LIMIT))
            cursor = int(data.get("cursor", 0))
            order_pos = int(data.get("shufflePosition", -1))
        except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise BadRequestError(f"saved play queue is invalid: {exc}") from exc
        queue = cls(songs, rng=rng, history_limit=history_limit)
        queue._history.extend(history)
        current = data.get("current")
        if current is not None:
            queue._check_index(current, field="current")
            queue._current = queue._entries[current].key
        queue._cursor = min(max(cursor, 0), len(songs))
        queue._mode = mode
        if mode is PlayMode.SHUFFLE:
            order = data.get("shuffleOrder", [])
            valid = isinstance(order, list) and all(type(i) is int for i in order)
            if not valid or sorted(order) != list(range(len(songs))):
                raise BadRequestError(
                    "saved play queue is invalid: shuffleOrder must list every song index "
                    f"0..{len(songs) - 1} exactly once"
                )
            queue._order = [queue._entries[i].key for i in order]
            queue._order_pos = min(max(order_pos, -1), len(order) - 1)
        return queue

    # --- internals ---------------------------------------------------------------------

    def _index_of(self, key: int) -> int:
        for index, entry in enumerate(self._entries):
            if entry.key == key:
                return index
        raise LookupError(f"queue entry {key} is gone")  # internal invariant broken

    def _check_index(self, index: int, *, field: str = "index") -> None:
        if not isinstance(index, int) or not 0 <= index < len(self._entries):
            raise BadRequestError(
                f"{field} {index!r} is out of range: the queue holds {len(self._entries)} songs"
                + (f" (0..{len(self._entries) - 1})" if self._entries else "")
            )

    def _after_current_index(self) -> int:
        if self._current is None:
            return self._cursor
        return self._index_of(self._current) + 1

    def _insert(self, index: int, song: Song, *, shuffle_next: bool) -> None:
        entry = _Entry(self._next_key, song)
        self._next_key += 1
        self._entries.insert(index, entry)
        if self._current is None and index < self._cursor:
            self._cursor += 1
        if self._mode is PlayMode.SHUFFLE:
            # Only songs still ahead in this cycle: the cycle stays "each song once".
            if shuffle_next:
                position = self._order_pos + 1
            else:
                position = self._rng.randint(self._order_pos + 1, len(self._order))
            self._order.insert(position, entry.key)

    def _set_current(self, key: int, *, repeat: bool = False) -> Song:
        if self._current is not None and (repeat or key != self._current):
            self._history.append(self._entries[self._index_of(self._current)].song)
        self._current = key
        return self._entries[self._index_of(key)].song

    def _leave_current(self) -> None:
        if self._current is not None:
            self._history.append(self._entries[self._index_of(self._current)].song)
            self._current = None

    def _start_cycle(self, *, first: int | None, avoid: int | None = None) -> None:
        keys = [entry.key for entry in self._entries]
        self._rng.shuffle(keys)
        if first is not None:
            keys.remove(first)
            keys.insert(0, first)
            self._order_pos = 0
        else:
            if avoid is not None and len(keys) > 1 and keys[0] == avoid:
                swap = self._rng.randrange(1, len(keys))
                keys[0], keys[swap] = keys[swap], keys[0]
            self._order_pos = -1
        self._order = keys

    def _next_shuffled(self) -> Song:
        if self._order_pos + 1 >= len(self._order):
            last = self._current if self._current is not None else (
                self._order[-1] if self._order else None
            )
            self._start_cycle(first=None, avoid=last)
        self._order_pos += 1
        return self._set_current(self._order[self._order_pos])
