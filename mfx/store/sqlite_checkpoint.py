"""Checkpoints of the SQLite store's write-ahead log, on a connection and thread of their own.

A checkpoint copies the pages the WAL holds into the database file and fsyncs it. Left to
SQLite, one runs inside the commit that makes the WAL reach ``wal_autocheckpoint`` pages:
that commit, and every write queued behind it (API requests, controllers' status), waits for
the copy. With 32 MiB of WAL that is ~50 ms here, once every few bulk applies; on an SD card,
where many players run, far longer.

While a daemon serves the store (``SQLiteStore.maintain``), a ``Checkpointer`` does it
instead: once ``CHECKPOINT_BYTES`` of the WAL are not yet copied, a PASSIVE checkpoint runs on
its own connection and thread. In WAL mode a checkpoint and a writer run side by side, so no commit
waits for it; the first write after a complete checkpoint starts the WAL over, and the
writer's ``journal_size_limit`` of 0 truncates the file then, so its size is what the WAL
holds (``wal_bytes``).

The writer keeps its own autocheckpoint, at a higher mark, for a store used without a daemon
(tools, tests). Under writes that never pause, every checkpoint has writes after its end, so
the WAL cannot start over and grows to that mark; the commit that reaches it then checkpoints
in place, but by then the checkpointer has copied all but the last moments' pages, so that
commit waits ~20 ms rather than ~55 (``python -m bench store``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from mfx.thread_calls import ThreadCalls

log = logging.getLogger(__name__)

# SQLite's own default mark (1000 pages of 4 KiB): the WAL stays small, and a checkpoint's
# copy takes milliseconds; it no longer holds up a commit.
CHECKPOINT_BYTES = 4 * 1024 * 1024
# After looking at the WAL, the checkpointer waits this long before it looks again: a busy
# store commits hundreds of times a second, and one look per commit would cost the event loop
# more than the checkpoints do. The WAL grows past the mark by at most this long's writes.
LOOK_INTERVAL = 0.1
# The WAL file's layout (sqlite.org/fileformat2.html#walformat): a header, then frames of a
# header and a page each.
WAL_HEADER = 32
WAL_FRAME_HEADER = 24


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint: the WAL's pages, how many were copied into the file, how long it took."""

    pages: int
    copied: int
    seconds: float


class Checkpointer:
    """PASSIVE checkpoints of ``path``'s WAL on a connection of its own, one at a time."""

    def __init__(self, path: Path, threshold_bytes: int = CHECKPOINT_BYTES) -> None:
        self.path = path
        self.wal = path.with_name(path.name + "-wal")
        self.threshold_bytes = threshold_bytes
        self._calls = ThreadCalls(f"store-checkpoint:{path.name}", max_threads=1)
        self._conn: sqlite3.Connection | None = None
        self._frame_bytes = WAL_FRAME_HEADER + 4096
        # The WAL's bytes the last checkpoint copied. Writes made while a checkpoint runs keep
        # the WAL from starting over (its end is no longer all copied) until one runs in a
        # quiet moment; meanwhile only what came after the copied part is due.
        self._copied_bytes = 0

    def wal_bytes(self) -> int:
        """The WAL file's size (0 when there is none): what it holds, see the module's docstring."""
        try:
            return self.wal.stat().st_size
        except FileNotFoundError:
            return 0

    def due_bytes(self) -> int:
        """The WAL's bytes no checkpoint has copied yet."""
        size = self.wal_bytes()
        # A WAL shorter than what was copied has started over: all of it is new.
        return size - self._copied_bytes if size >= self._copied_bytes else size

    async def run_when_due(self) -> Checkpoint | None:
        """A checkpoint if ``threshold_bytes`` or more of the WAL are not copied yet (None if
        none ran, or it failed).

        Shielded: a checkpoint left running would race the connection's close."""
        if self.due_bytes() < self.threshold_bytes:
            return None
        with anyio.CancelScope(shield=True):
            done = await self._calls.run(self._checkpoint)
        return done

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._calls.run(self._close)
        self._calls.close()

    # --- on the checkpointer's thread ---

    def _checkpoint(self) -> Checkpoint | None:
        began = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._conn.execute("PRAGMA busy_timeout = 5000")
                self._frame_bytes = WAL_FRAME_HEADER + int(self._conn.execute("PRAGMA page_size").fetchone()[0])
            busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:
            # The writer's own autocheckpoint still bounds the WAL: this is worth a warning,
            # not the daemon.
            log.warning("checkpointing the store's write-ahead log %s failed (%s); the next "
                        "commits will checkpoint it themselves. Check the disk and its space.",
                        self.wal, error)
            return None
        if frames < 0:  # the writer's own checkpoint holds the WAL meanwhile: it copies it
            return None
        done = Checkpoint(frames, copied, time.perf_counter() - began)
        self._copied_bytes = WAL_HEADER + copied * self._frame_bytes
        log.debug("checkpointed %d of %d pages of %s in %.1f ms%s", copied, frames, self.wal,
                  done.seconds * 1000, " (a reader held the rest)" if busy else "")
        return done

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
