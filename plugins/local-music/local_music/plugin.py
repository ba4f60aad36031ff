"""``LocalMusic``: the library served as an mfx MusicSource (JSON in, JSON out)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from mfx.errors import PluginError
from mfx.sdk.music import JSON, MusicSource, wire
from mfx.sdk.plugin import PluginInfo

from .library import Library, LibraryConfig

log = logging.getLogger("local_music")

# How long a search that finds nothing waits for the first scan, while it runs: a fresh home's
# folder is read in moments, and "no song matches" just after the plugin turned Ready would
# only mean that it had not been read yet. A big library answers from what it has by then,
# within the player's default deadline for a source's answer (searchTimeout, 3 s).
FIRST_SCAN_WAIT_SECONDS = 2.0


class NotInitializedError(PluginError):
    reason = "NotInitialized"


class LocalMusic(MusicSource):
    info: ClassVar[PluginInfo] = PluginInfo(
        name="local-music",
        version="1.0.0",
        description="Songs, albums, artists and playlists from local folders",
        interfaces=("MusicSource",),
    )

    def __init__(self) -> None:
        super().__init__()
        self._library: Library | None = None
        self._first_scan: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------

    def initialize(self, config: Mapping[str, Any]) -> None:
        settings = LibraryConfig.from_mapping(config)
        super().initialize(config)
        self._library = Library(settings)

    def start(self) -> None:
        library = self._lib()
        if library.config.watch:
            library.start_watching()
        # The first scan of a big library takes a while: answer from the saved index
        # meanwhile (``health`` shows ``scanning``), and let ``rescan`` wait for it.
        self._first_scan = threading.Thread(target=self._scan_quietly, args=(library,), name="local-music-scan")
        self._first_scan.start()

    def health(self) -> JSON:
        return self._lib().stats()

    def update_config(self, config: Mapping[str, Any]) -> None:
        settings = LibraryConfig.from_mapping(config)
        super().update_config(config)
        with self._lock:
            old, self._library = self._library, Library(settings)
        if old is not None:
            old.close()
        if settings.watch:
            self._library.start_watching()
        self._library.scan()

    def stop(self) -> None:
        with self._lock:
            library = self._library
        if library is not None:
            library.close()
        if self._first_scan is not None:
            self._first_scan.join()

    # --- MusicSource -------------------------------------------------------------------

    def search(self, query: str, type: str = "song", limit: int = 30, offset: int = 0) -> JSON:
        found = self._lib().search(query, type, limit, offset)
        first_scan = self._first_scan
        if not (found.songs or found.albums or found.artists or found.playlists) and first_scan is not None \
                and first_scan.is_alive():
            first_scan.join(FIRST_SCAN_WAIT_SECONDS)
            found = self._lib().search(query, type, limit, offset)
        return wire(found)

    def browse(self, type: str = "song", limit: int = 100, offset: int = 0) -> JSON:
        return wire(self._lib().browse(type, limit, offset))

    def playlist_detail(self, id: str) -> JSON:
        return wire(self._lib().playlist(id))

    def song_detail(self, id: str) -> JSON:
        return wire(self._lib().song(id))

    def song_url(self, id: str, quality: str = "standard") -> str:
        path = self._lib().song(id).path
        assert path is not None  # every local song has one
        return path

    def lyrics(self, id: str) -> JSON:
        return wire(self._lib().lyrics(id))

    # --- library extras ----------------------------------------------------------------

    def playlists(self) -> JSON:
        return wire(self._lib().playlists())

    def album_songs(self, id: str) -> JSON:
        return wire(self._lib().album_songs(id))

    def artist_songs(self, id: str) -> JSON:
        return wire(self._lib().artist_songs(id))

    def rescan(self) -> JSON:
        """Scan now (incrementally) and return what changed."""
        return self._lib().scan().as_dict()

    def stats(self) -> JSON:
        return self._lib().stats()

    # --- internals ---------------------------------------------------------------------

    def _lib(self) -> Library:
        library = self._library
        if library is None:
            raise NotInitializedError("local-music is not initialized: call initialize(config) first")
        return library

    @staticmethod
    def _scan_quietly(library: Library) -> None:
        try:
            library.scan()
        except Exception:  # the plugin keeps serving the saved index; health shows no scan
            log.exception("initial scan failed")
