"""Case- and accent-insensitive ranked search over names.

Each item has named fields (a song: title, artists, album). A query matches a field value
as exact > prefix > word (starts at a word boundary) > substring, and, for several words,
as all words somewhere in the item; the kind of match ranks first, the field second
(title above artist above album), and ties keep the catalogue order (album, disc, track).

All values of all fields live in one array of code points, so finding a query is a few
vectorised numpy passes and the per-query cost hardly depends on how many items match
(a one-letter query matches most of a library).
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Sequence

import numpy as np

_SEPARATOR = "\x00"  # between values; removed from values and queries by fold()
_ASCII_WORD = np.array([chr(c).isalnum() for c in range(128)], dtype=bool)


def fold(text: str) -> str:
    """Lower-case, accent-free, width-normalised form used for matching: "Café" -> "cafe"."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(text.replace(_SEPARATOR, " ").casefold().split())


class MatchKind(enum.IntEnum):
    NONE = 0
    ALL_WORDS = 1
    SUBSTRING = 2
    WORD = 3
    PREFIX = 4
    EXACT = 5


class FieldRank(enum.IntEnum):
    ANY = 0  # all-words matches span fields
    SECONDARY = 1  # album of a song
    ARTIST = 2
    NAME = 3  # a song's title, an album's, artist's or playlist's name


_RANKS = 4  # score = kind * _RANKS + field rank


def classify(value: str, query: str) -> MatchKind:
    """How ``query`` (folded) matches ``value`` (folded); the scalar form of the index."""
    if value == query:
        return MatchKind.EXACT
    position = value.find(query)
    if position < 0:
        return MatchKind.NONE
    if position == 0:
        return MatchKind.PREFIX
    while position >= 0:
        if not value[position - 1].isalnum():
            return MatchKind.WORD
        position = value.find(query, position + 1)
    return MatchKind.SUBSTRING


class SearchIndex:
    """Items are referred to by their position in the sequences given to the constructor;
    that position is also the tie-breaking order. Values must already be folded."""

    def __init__(self, fields: Sequence[tuple[FieldRank, Sequence[tuple[str, ...]]]]) -> None:
        self.size = len(fields[0][1]) if fields else 0
        parts: list[str] = []
        starts: list[int] = []
        items: list[int] = []
        ranks: list[int] = []
        offset = 1  # the text starts with a separator, so every value has one before it
        for rank, values in fields:
            for item, item_values in enumerate(values):
                for value in item_values:
                    if not value:
                        continue
                    parts.append(value)
                    starts.append(offset)
                    items.append(item)
                    ranks.append(int(rank))
                    offset += len(value) + 1
        text = _SEPARATOR + _SEPARATOR.join(parts) + _SEPARATOR
        self._codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        self._starts = np.array(starts, dtype=np.int64)
        self._ends = np.array(starts, dtype=np.int64) + np.array([len(p) for p in parts], dtype=np.int64)
        self._items = np.array(items, dtype=np.int64)
        self._ranks = np.array(ranks, dtype=np.int16)
        word = np.ones(len(self._codes), dtype=bool)  # non-ASCII letters count as word characters
        ascii_ = self._codes < 128
        word[ascii_] = _ASCII_WORD[self._codes[ascii_]]
        self._word = word
        # Positions of every pair of adjacent code points, grouped by pair: a query is
        # looked up by its rarest pair and checked only where that pair occurs.
        pairs = (self._codes[:-1].astype(np.uint64) << np.uint64(21)) | self._codes[1:]
        self._pair_positions = np.argsort(pairs, kind="stable")
        self._pair_keys = pairs[self._pair_positions]

    def _occurrences(self, query: str) -> np.ndarray:
        """Start positions of ``query`` in the text (queries never contain the separator)."""
        codes = np.frombuffer(query.encode("utf-32-le"), dtype=np.uint32)
        limit = len(self._codes) - len(codes) + 1
        if limit <= 0:
            return np.empty(0, dtype=np.int64)
        if len(codes) == 1:
            return np.flatnonzero(self._codes[:limit] == codes[0])
        keys = (codes[:-1].astype(np.uint64) << np.uint64(21)) | codes[1:]
        lows = np.searchsorted(self._pair_keys, keys, side="left")
        highs = np.searchsorted(self._pair_keys, keys, side="right")
        rarest = int(np.argmin(highs - lows))
        positions = self._pair_positions[lows[rarest] : highs[rarest]] - rarest
        positions = positions[(positions >= 0) & (positions < limit)]
        for k in range(len(codes)):
            if k not in (rarest, rarest + 1):
                positions = positions[self._codes[positions + k] == codes[k]]
        return positions

    def _slots(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._starts, positions, side="right") - 1

    def search(self, query: str, *, limit: int, offset: int = 0) -> tuple[list[int], int]:
        """Item positions, best first, and the number of matches before paging."""
        folded = fold(query)
        if not folded or self.size == 0:
            return [], 0
        positions = self._occurrences(folded)
        slots = self._slots(positions)
        starts = self._starts[slots]
        at_start = positions == starts
        exact = at_start & (positions + len(folded) == self._ends[slots])
        word = ~self._word[positions - 1]  # the character before is a separator or not a letter
        kind = np.full(len(positions), int(MatchKind.SUBSTRING), dtype=np.int16)
        kind[word] = int(MatchKind.WORD)
        kind[at_start] = int(MatchKind.PREFIX)
        kind[exact] = int(MatchKind.EXACT)
        score = kind * _RANKS + self._ranks[slots]
        best = np.zeros(self.size, dtype=np.int16)
        np.maximum.at(best, self._items[slots], score)

        words = folded.split()
        if len(words) > 1:
            everywhere = np.ones(self.size, dtype=bool)
            for token in words:
                hit = np.zeros(self.size, dtype=bool)
                hit[self._items[self._slots(self._occurrences(token))]] = True
                everywhere &= hit
            fallback = everywhere & (best == 0)
            best[fallback] = int(MatchKind.ALL_WORDS) * _RANKS + int(FieldRank.ANY)

        matched = np.flatnonzero(best)
        total = len(matched)
        wanted = offset + limit
        if wanted <= 0 or offset >= total:
            return [], total
        scores = best[matched]
        if wanted < total:
            # Only the best ``wanted`` need sorting: everything scoring above the cut-off,
            # plus enough of those at the cut-off (earliest items first).
            cut = np.partition(-scores, wanted - 1)[wanted - 1]
            keep = -scores <= cut
            matched, scores = matched[keep], scores[keep]
        order = np.lexsort((matched, -scores))[:wanted]
        return [int(i) for i in matched[order][offset:]], total
