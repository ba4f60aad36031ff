"""Rescan when the music folders change: a watchdog observer plus a debouncing thread.

Copying an album produces a burst of events per file (created, modified..., closed); the
debouncer waits until the folders have been quiet for ``debounce_seconds`` and then asks
for one incremental rescan, which reads only the files whose mtime or size changed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger("local_music")


class _Handler(FileSystemEventHandler):
    def __init__(self, relevant: Callable[[str], bool], poke: Callable[[], None]) -> None:
        self._relevant = relevant
        self._poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads (ours included) change nothing
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        if event.is_directory or any(self._relevant(path) for path in paths):
            self._poke()


class FolderWatcher:
    def __init__(
        self,
        folders: Iterable[str],
        relevant: Callable[[str], bool],
        rescan: Callable[[], object],
        *,
        debounce_seconds: float,
    ) -> None:
        self._folders = [f for f in folders if os.path.isdir(f)]
        self._rescan = rescan
        self._debounce = debounce_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._observer = Observer()
        self._handler = _Handler(relevant, self._wake.set)
        self._thread = threading.Thread(target=self._run, name="local-music-debounce", daemon=True)

    def start(self) -> None:
        for folder in self._folders:
            self._observer.schedule(self._handler, folder, recursive=True)
        self._observer.start()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._observer.stop()
        self._observer.join()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stopping.is_set():
                return
            # Quiet period: every further event restarts the wait.
            self._wake.clear()
            while self._wake.wait(self._debounce):
                if self._stopping.is_set():
                    return
                self._wake.clear()
            try:
                self._rescan()
            except Exception:  # a failed rescan must not end watching; the next event retries
                log.exception("rescan after a folder change failed")
