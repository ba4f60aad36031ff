"""Rescan when the music folders change: a watchdog observer plus a debouncing thread.

Copying an album produces a burst of events per file (created, modified..., closed); the
debouncer waits until the folders have been quiet for ``debounce_seconds`` and then asks
for one incremental rescan, which reads only the files whose mtime or size changed.

A folder that does not exist yet (``$MFX_HOME/music`` before the first song is copied there)
is waited for: its nearest existing parent is watched, without recursion, and when the folder
appears it is watched like the others and scanned.
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
        self._folders = list(dict.fromkeys(os.path.abspath(f) for f in folders))
        self._watched: set[str] = set()  # folders watched recursively
        self._waiting: dict[str, str] = {}  # missing folder -> the parent watched for it
        self._lock = threading.Lock()
        self._rescan = rescan
        self._debounce = debounce_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._observer = Observer()
        self._handler = _Handler(relevant, self._wake.set)
        self._appearing = _Handler(lambda _path: False, self._look_for_missing)
        self._thread = threading.Thread(target=self._run, name="local-music-debounce", daemon=True)

    def start(self) -> None:
        self._observer.start()
        self._look_for_missing()
        self._thread.start()

    def _look_for_missing(self) -> None:
        """Watch each folder that exists now; for one that does not, its nearest parent."""
        appeared = False
        with self._lock:
            for folder in self._folders:
                if folder in self._watched:
                    continue
                if os.path.isdir(folder):
                    self._observer.schedule(self._handler, folder, recursive=True)
                    self._watched.add(folder)
                    self._waiting.pop(folder, None)
                    appeared = True
                    continue
                parent = _nearest_existing_parent(folder)
                if parent is not None and self._waiting.get(folder) != parent:
                    self._observer.schedule(self._appearing, parent, recursive=False)
                    self._waiting[folder] = parent
        if appeared and self._thread.is_alive():
            self._wake.set()  # a folder came: scan what it holds

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


def _nearest_existing_parent(folder: str) -> str | None:
    parent = os.path.dirname(folder)
    while parent and not os.path.isdir(parent):
        if os.path.dirname(parent) == parent:
            return None
        parent = os.path.dirname(parent)
    return parent or None
