"""The play queue: editing, every play mode, history, persistence."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfx.api.music import PlayMode, Song
from mfx.errors import BadRequestError
from mfx.music.queue import PlayQueue


def song(n: int) -> Song:
    return Song(id=f"test:{n}", source="test", title=f"Song {n}")


def songs(count: int) -> list[Song]:
    return [song(n) for n in range(count)]


def titles(items: list[Song | None]) -> list[str | None]:
    return [None if s is None else s.title for s in items]


def ids(queue: PlayQueue) -> list[str]:
    return [s.id for s in queue.songs]


# --- editing ---------------------------------------------------------------------------


def test_add_insert_next_remove_move_clear() -> None:
    queue = PlayQueue(songs(3))
    assert ids(queue) == ["test:0", "test:1", "test:2"]
    assert queue.current is None
    assert queue.next() == song(0)
    assert queue.insert_next(song(9)) == 1
    assert ids(queue) == ["test:0", "test:9", "test:1", "test:2"]
    assert queue.next() == song(9)
    queue.move(3, 0)
    assert ids(queue) == ["test:2", "test:0", "test:9", "test:1"]
    assert queue.current == song(9) and queue.current_index == 2
    assert queue.remove(0) == song(2)
    assert queue.current_index == 1
    assert queue.next() == song(1)
    queue.clear()
    assert len(queue) == 0 and queue.current is None and queue.next() is None


def test_removing_the_current_song_continues_with_the_one_after_it() -> None:
    queue = PlayQueue(songs(4))
    queue.play(1)
    queue.remove(1)
    assert queue.current is None
    assert queue.next() == song(2)
    assert queue.previous() == song(0)


def test_moves_while_nothing_is_current_keep_the_cursor_on_the_same_song() -> None:
    queue = PlayQueue(songs(4))
    queue.play(1)
    queue.remove(1)  # cursor now on song 2
    queue.move(1, 2)  # song 2 moves to the end
    assert queue.next() == song(2)


def test_out_of_range_positions_are_rejected_with_the_valid_range() -> None:
    queue = PlayQueue(songs(2))
    with pytest.raises(BadRequestError, match=r"index 5 is out of range.*\(0\.\.1\)"):
        queue.remove(5)
    with pytest.raises(BadRequestError):
        queue.move(0, -1)
    with pytest.raises(BadRequestError):
        queue.play(2)


# --- modes -----------------------------------------------------------------------------


def test_in_order_stops_after_the_last_song() -> None:
    queue = PlayQueue(songs(3), mode=PlayMode.IN_ORDER)
    assert titles([queue.next() for _ in range(4)]) == ["Song 0", "Song 1", "Song 2", None]
    assert queue.current == song(2)
    assert titles([queue.previous() for _ in range(3)]) == ["Song 1", "Song 0", None]


def test_loop_all_wraps_both_ways() -> None:
    queue = PlayQueue(songs(3), mode=PlayMode.LOOP_ALL)
    assert titles([queue.next() for _ in range(5)]) == ["Song 0", "Song 1", "Song 2", "Song 0", "Song 1"]
    queue.play(0)
    assert queue.previous() == song(2)


def test_loop_one_repeats_until_the_user_skips() -> None:
    queue = PlayQueue(songs(3), mode=PlayMode.LOOP_ONE)
    assert queue.next() == song(0)
    assert queue.next() == song(0)
    assert queue.next() == song(0)
    assert queue.next(skip=True) == song(1)
    queue.play(2)
    assert queue.next(skip=True) == song(0)  # a skip wraps like loop-all
    assert queue.history[-3:] == [song(0), song(1), song(2)]


def test_shuffle_plays_every_song_once_per_cycle_and_reshuffles() -> None:
    queue = PlayQueue(songs(10), mode=PlayMode.SHUFFLE, rng=random.Random(3))
    first = [queue.next() for _ in range(10)]
    second = [queue.next() for _ in range(10)]
    assert sorted(s.id for s in first) == sorted(s.id for s in songs(10))
    assert sorted(s.id for s in second) == sorted(s.id for s in songs(10))
    assert first != second
    assert second[0] != first[-1]


def test_shuffle_is_reproducible_with_a_seeded_generator() -> None:
    a = PlayQueue(songs(8), mode=PlayMode.SHUFFLE, rng=random.Random(42))
    b = PlayQueue(songs(8), mode=PlayMode.SHUFFLE, rng=random.Random(42))
    assert [a.next() for _ in range(20)] == [b.next() for _ in range(20)]


def test_switching_to_shuffle_keeps_the_current_song_and_plays_the_rest_once() -> None:
    queue = PlayQueue(songs(6), rng=random.Random(1))
    queue.play(2)
    queue.set_mode(PlayMode.SHUFFLE)
    assert queue.current == song(2)
    rest = [queue.next() for _ in range(5)]
    assert sorted(s.id for s in rest) == sorted(s.id for s in songs(6) if s != song(2))
    assert queue.previous() == rest[-2]
    queue.set_mode(PlayMode.IN_ORDER)
    assert queue.next() == songs(6)[queue.current_index]  # in order from where it is


def test_shuffle_insert_next_plays_next_and_added_songs_join_this_cycle() -> None:
    queue = PlayQueue(songs(5), mode=PlayMode.SHUFFLE, rng=random.Random(9))
    played = [queue.next(), queue.next()]
    queue.insert_next(song(50))
    assert queue.next() == song(50)
    queue.add(song(51))
    played += [song(50)] + [queue.next() for _ in range(4)]
    assert sorted(s.id for s in played) == sorted(s.id for s in songs(5) + [song(50), song(51)])


def test_shuffle_of_one_song_repeats_it() -> None:
    queue = PlayQueue([song(0)], mode=PlayMode.SHUFFLE, rng=random.Random(0))
    assert [queue.next() for _ in range(3)] == [song(0)] * 3


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=25),
    cycles=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    start=st.one_of(st.none(), st.integers(min_value=0, max_value=24)),
)
def test_shuffle_covers_every_song_exactly_once_per_cycle(size: int, cycles: int, seed: int, start: int | None) -> None:
    queue = PlayQueue(songs(size), rng=random.Random(seed))
    offset = 0
    if start is not None:
        queue.play(start % size)  # the song playing when shuffle is switched on opens cycle 1
        offset = 1
    queue.set_mode(PlayMode.SHUFFLE)
    played = ([queue.current] if offset else []) + [queue.next() for _ in range(size * cycles - offset)]
    everything = sorted(s.id for s in songs(size))
    for cycle in range(cycles):
        chunk = played[cycle * size : (cycle + 1) * size]
        assert sorted(s.id for s in chunk) == everything
        if cycle and size > 1:
            assert chunk[0] != played[cycle * size - 1]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    actions=st.lists(st.sampled_from(["next", "add", "remove", "insert_next", "move"]), max_size=40),
)
def test_shuffle_never_repeats_a_song_within_a_cycle_while_the_queue_is_edited(seed: int, actions: list[str]) -> None:
    rng = random.Random(seed)
    queue = PlayQueue(songs(6), mode=PlayMode.SHUFFLE, rng=random.Random(seed))
    fresh = iter(range(100, 1000))
    played_this_cycle: set[int] = set()
    for action in actions:
        if action == "next":
            cycle_complete = {id(s) for s in queue.songs} <= played_this_cycle
            current = queue.next()
            if current is None:
                assert len(queue) == 0
                continue
            if cycle_complete:
                played_this_cycle = set()
            assert id(current) not in played_this_cycle, "a song repeated before the cycle ended"
            played_this_cycle.add(id(current))
        elif action == "add":
            queue.add(song(next(fresh)))
        elif action == "insert_next":
            queue.insert_next(song(next(fresh)))
        elif action == "remove" and len(queue):
            removed = queue.remove(rng.randrange(len(queue)))
            played_this_cycle.discard(id(removed))
        elif action == "move" and len(queue):
            queue.move(rng.randrange(len(queue)), rng.randrange(len(queue)))


# --- history and persistence -----------------------------------------------------------


def test_history_records_songs_as_they_are_left_and_is_bounded() -> None:
    queue = PlayQueue(songs(5), mode=PlayMode.LOOP_ALL, history_limit=3)
    for _ in range(5):
        queue.next()
    assert queue.current == song(4)
    assert queue.history == [song(1), song(2), song(3)]


def test_the_queue_survives_a_round_trip_through_json() -> None:
    queue = PlayQueue(songs(7), mode=PlayMode.SHUFFLE, rng=random.Random(5), history_limit=10)
    for _ in range(3):
        queue.next()
    saved = json.loads(json.dumps(queue.to_dict()))
    restored = PlayQueue.from_dict(saved, rng=random.Random(0))
    assert restored.songs == queue.songs
    assert restored.current == queue.current
    assert restored.history == queue.history
    assert restored.mode is PlayMode.SHUFFLE
    # The rest of the cycle is the same: the order was saved, not redrawn.
    assert [restored.next() for _ in range(4)] == [queue.next() for _ in range(4)]


def test_a_corrupt_saved_queue_is_rejected_naming_the_field() -> None:
    saved = PlayQueue(songs(3), mode=PlayMode.SHUFFLE).to_dict()
    saved["shuffleOrder"] = [0, 0, 1]
    with pytest.raises(BadRequestError, match="shuffleOrder"):
        PlayQueue.from_dict(saved)
    with pytest.raises(BadRequestError, match="current"):
        PlayQueue.from_dict({"songs": [], "current": 3})
    with pytest.raises(BadRequestError, match="saved play queue is invalid"):
        PlayQueue.from_dict({"songs": [{"id": "x"}]})
