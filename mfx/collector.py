"""The cyclic garbage collector, tuned for work that makes many objects reference counting frees.

``collection_paused``: around work that builds thousands of objects at once. A bulk apply
holds every item it read (parsed, copied, defaulted, planned) until its one transaction
commits. None of it is cyclic: reference counting frees all of it. Yet each collection the
allocations trigger walks what is alive, and so much alive at once gets promoted to the
oldest generation and sets off full collections, each a walk of everything the process
holds (the daemon's caches of every object). Measured on an apply of 1000 manifests, those
walks were about a tenth of the time. Paused, the work allocates without them; the objects
that outlive it are collected as usual afterwards.

``young_collections_every``: for a daemon that owns its process. Python starts a young
collection after 700 more container objects were made than freed. A daemon makes that many
in a fraction of one reconcile (the object read, the status patched, the event, the watch
event each write fans out to), almost all of them freed again by reference counting, so
most young collections find nothing and cost the interpreter lock each time: ``bench
convergence`` measured about 7 % of the daemon's CPU in them while 500 plugins started.
At 20 000 the collector runs about thirty times less often and each young pass takes about
half a millisecond; reference cycles live a little longer, a few megabytes at most.
"""

from __future__ import annotations

import gc

YOUNG_COLLECTION_THRESHOLD = 20_000


class collection_paused:  # noqa: N801 - used as a function: ``with collection_paused():``
    """No automatic collection inside the block; turned back on after, unless it was off
    before (another pause that began first, or the program's own choice, is left as it is).

    A class, not ``contextlib.contextmanager``: ``mfx apply`` uses it, and contextlib (with
    the collections package) would cost each of its starts a millisecond."""

    def __enter__(self) -> None:
        self._resume = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc_info: object) -> None:
        if self._resume:
            gc.enable()


class young_collections_every:  # noqa: N801 - used as a function, as collection_paused
    """The collector's first threshold set to ``allocations`` while entered, put back as it
    was on exit (None: left alone). The older generations keep their thresholds."""

    def __init__(self, allocations: int | None) -> None:
        if allocations is not None and allocations < 1:
            raise ValueError(f"the young collection threshold must be 1 or more, got {allocations}")
        self._allocations = allocations
        self._before: tuple[int, int, int] | None = None

    def __enter__(self) -> None:
        if self._allocations is not None:
            self._before = gc.get_threshold()
            gc.set_threshold(self._allocations, *self._before[1:])

    def __exit__(self, *exc_info: object) -> None:
        if self._before is not None:
            gc.set_threshold(*self._before)
