"""The local-music plugin: scanning, tags, incremental rescans, search, playlists, lyrics,
watching folders, and serving it all as a MusicSource (in process and over RPC)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mfx.api.music import Lyrics, Playlist, Quality, SearchResult, SearchType, Song
from mfx.errors import BadRequestError, InvalidConfigError, NotFoundError, PluginError
from tests.music_fixtures import LibraryLayout, Track, build_library, write_song

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "local-music"
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))

from local_music.index import INDEX_FILE  # noqa: E402
from local_music.library import Library, LibraryConfig  # noqa: E402
from local_music.plugin import LocalMusic  # noqa: E402
from local_music.search import fold  # noqa: E402


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> LibraryLayout:
    """One library for the read-only tests (writing audio is the slow part)."""
    return build_library(tmp_path_factory.mktemp("music"))


@pytest.fixture
def library(layout: LibraryLayout, tmp_path: Path) -> Iterator[Library]:
    lib = Library(LibraryConfig.from_mapping({"folders": [str(layout.root)], "stateDir": str(tmp_path)}))
    lib.scan()
    yield lib
    lib.close()


@pytest.fixture
def own_layout(tmp_path: Path) -> LibraryLayout:
    """A private copy for tests that change files."""
    return build_library(tmp_path / "music")


def by_title(lib: Library) -> dict[str, Song]:
    return {song.title: song for song in lib.songs()}


def titles(result: SearchResult) -> list[str]:
    return [song.title for song in result.songs]


# --- scanning and tags -----------------------------------------------------------------


def test_a_scan_indexes_every_readable_file_with_its_tags(library: Library, layout: LibraryLayout) -> None:
    stats = library.stats()
    assert stats["songs"] == 8 and stats["files"] == 9 and stats["playlists"] == 2
    songs = by_title(library)
    cafe = songs["Café Del Mar"]
    assert cafe.artist_names == ["Energy 52"]
    assert cafe.album is not None and cafe.album.name == "Café Del Mar" and cafe.album.has_cover
    assert cafe.track_number == 1 and cafe.format == "flac" and cafe.qualities == [Quality.LOSSLESS]
    assert cafe.duration_seconds == pytest.approx(0.1, abs=0.01)
    assert cafe.path == layout.path("Energy 52/Café Del Mar/01 Café Del Mar.flac")
    assert cafe.id.startswith("local:") and len(cafe.id) == len("local:") + 40
    crazy = songs["Crazy in Love"]  # MP3 with ID3 tags and an APIC picture
    assert crazy.artist_names == ["Beyoncé", "Jay-Z"] and crazy.has_cover and crazy.format == "mp3"
    assert songs["Marbles"].has_cover  # Ogg METADATA_BLOCK_PICTURE
    assert not songs["Mar"].has_cover and songs["Mar"].track_number == 3
    untagged = songs["untagged"]  # no tags: the file name is the title
    assert untagged.artists == [] and untagged.album is None
    albums = {album.name: album for album in library.catalog.albums.values()}
    assert albums["Dangerously in Love"].song_count == 2
    assert [s.title for s in library.album_songs(albums["Olas"].id)] == ["Marbles", "Yellow Submarine", "Mar"]


def test_a_corrupt_file_is_skipped_counted_and_logged(
    layout: LibraryLayout, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lib = Library(LibraryConfig.from_mapping({"folders": [str(layout.root)], "stateDir": str(tmp_path)}))
    with caplog.at_level(logging.WARNING, logger="local_music"):
        report = lib.scan()
    assert report.failed == 1 and report.added == 9
    stats = lib.stats()
    assert stats["failed"] == 1 and stats["failedFiles"] == [str(layout.corrupt[0])]
    assert any("corrupt.flac" in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)
    assert all(song.path != str(layout.corrupt[0]) for song in lib.songs())


def test_a_rescan_reads_only_new_and_changed_files(own_layout: LibraryLayout, tmp_path: Path) -> None:
    config = LibraryConfig.from_mapping({"folders": [str(own_layout.root)], "stateDir": str(tmp_path / "state")})
    lib = Library(config)
    assert lib.scan().tag_reads == 9
    assert lib.scan().tag_reads == 0  # nothing changed: nothing read, not even the corrupt file

    changed = own_layout.root / "Various/Mar.ogg"
    write_song(own_layout.root, Track("Various/Mar.ogg", "Mar (Remix)", ("Orquesta Marítima",), "Olas", 3, seconds=0.2))
    write_song(own_layout.root, Track("New/Fresh.flac", "Fresh", ("Nobody",), "New", 1))
    os.remove(own_layout.root / "Various/Submarine.ogg")
    before = lib.reader.reads
    report = lib.scan()
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 1, 1, 7)
    assert report.tag_reads == 2 and lib.reader.reads - before == 2
    songs = by_title(lib)
    assert "Mar (Remix)" in songs and "Fresh" in songs and "Yellow Submarine" not in songs
    assert songs["Mar (Remix)"].path == str(changed)

    # A restarted plugin loads the saved index and reads nothing it already knows.
    restarted = Library(config)
    assert restarted.stats()["songs"] == 8
    assert restarted.scan().tag_reads == 0
    assert by_title(restarted).keys() == songs.keys()


# --- search ----------------------------------------------------------------------------


def test_search_ranks_exact_then_prefix_then_word_then_substring(library: Library) -> None:
    # "mar": exact title, prefix title, word in title (album order), substring in title.
    assert titles(library.search("mar")) == ["Mar", "Marbles", "Café Del Mar", "Del Mar Dub", "Yellow Submarine"]
    # A prefix of the title beats a word inside another title.
    assert titles(library.search("del mar")) == ["Del Mar Dub", "Café Del Mar"]


def test_title_matches_rank_above_artist_and_album_matches(library: Library) -> None:
    # "cafe": title prefix > album prefix > artist word ("The Cafe Band").
    assert titles(library.search("cafe")) == ["Café Del Mar", "Del Mar Dub", "Marbles"]
    # Same kind of match (word): the title beats the artist.
    result = library.search("love")
    assert titles(result)[:1] == ["Crazy in Love"]


def test_search_ignores_case_and_accents(library: Library) -> None:
    assert titles(library.search("BEYONCE")) == titles(library.search("beyoncé")) == ["Crazy in Love", "Naughty Girl"]
    assert titles(library.search("maritima")) == ["Mar"]
    assert fold("Ｃａｆé  Del\tMAR") == "cafe del mar"


def test_several_words_match_across_fields(library: Library) -> None:
    assert titles(library.search("crazy beyonce")) == ["Crazy in Love"]
    assert library.search("crazy nobody").songs == []


def test_search_over_albums_artists_and_playlists_with_paging(library: Library) -> None:
    assert [a.name for a in library.search("dangerously", SearchType.ALBUM).albums] == ["Dangerously in Love"]
    assert [a.name for a in library.search("beyonce", "artist").artists] == ["Beyoncé"]
    assert [p.name for p in library.search("manana", "playlist").playlists] == ["Mañana Mix"]
    page = library.search("mar", limit=2, offset=1)
    assert titles(page) == ["Marbles", "Café Del Mar"] and page.total == 5
    with pytest.raises(BadRequestError, match="unknown search type 'genre'"):
        library.search("x", "genre")


# --- playlists, lyrics, lookups --------------------------------------------------------


def test_m3u_playlists_resolve_relative_windows_and_absolute_entries(library: Library) -> None:
    playlists = {p.name: p for p in library.playlists()}
    assert set(playlists) == {"Evening", "Mañana Mix"}
    evening = library.playlist(playlists["Evening"].id)
    assert [s.title for s in evening.songs or []] == ["Café Del Mar", "Naughty Girl"]
    assert evening.description == "2 entries not in the library"  # a URL and a missing file
    mix = library.playlist(playlists["Mañana Mix"].id)
    assert [s.title for s in mix.songs or []] == ["Mar", "Marbles"]


def test_sidecar_lrc_lyrics_give_the_line_at_a_position(library: Library) -> None:
    cafe = by_title(library)["Café Del Mar"]
    lyrics = library.lyrics(cafe.id)
    assert lyrics is not None
    line = lyrics.line_at(2.0)
    assert line is not None and (line.text, line.translation) == ("First line", "第一行")
    assert lyrics.line_at(5.5).text == "Chorus"  # type: ignore[union-attr]
    assert library.lyrics(by_title(library)["Marbles"].id) is None


def test_unknown_ids_raise_not_found(library: Library) -> None:
    with pytest.raises(NotFoundError, match="no song 'local:nope'"):
        library.song("local:nope")
    with pytest.raises(NotFoundError):
        library.playlist("local:playlist:nope")


def test_bad_config_names_the_field() -> None:
    with pytest.raises(InvalidConfigError, match="config.folders"):
        LibraryConfig.from_mapping({})
    with pytest.raises(InvalidConfigError, match="config.extensions"):
        LibraryConfig.from_mapping({"folders": ["/music"], "extensions": "flac"})
    with pytest.raises(InvalidConfigError, match="config.debounceSeconds"):
        LibraryConfig.from_mapping({"folders": ["/music"], "debounceSeconds": -1})


# --- watching --------------------------------------------------------------------------


def test_a_file_dropped_into_a_watched_folder_is_indexed(own_layout: LibraryLayout, tmp_path: Path) -> None:
    lib = Library(
        LibraryConfig.from_mapping(
            {"folders": [str(own_layout.root)], "stateDir": str(tmp_path / "state"), "debounceSeconds": 0.05}
        )
    )
    lib.scan()
    lib.start_watching()
    try:
        # Written elsewhere and moved in, as a download or an atomic copy would do.
        staging = tmp_path / "staging"
        source = write_song(staging, Track("Arrival.flac", "Arrival", ("Watcher",), "Live", 1))
        target = own_layout.root / "Live" / "Arrival.flac"
        target.parent.mkdir()
        os.replace(source, target)
        assert lib.wait_for(lambda lb: any(s.title == "Arrival" for s in lb.songs()), timeout=30)
        shutil.rmtree(target.parent)
        assert lib.wait_for(lambda lb: all(s.title != "Arrival" for s in lb.songs()), timeout=30)
        assert lib.stats()["watching"] is True
    finally:
        lib.close()
    assert lib.stats()["watching"] is False


# --- as a MusicSource ------------------------------------------------------------------


def test_the_plugin_serves_the_library_as_json(layout: LibraryLayout, tmp_path: Path) -> None:
    plugin = LocalMusic()
    plugin.initialize({"folders": [str(layout.root)], "stateDir": str(tmp_path), "watch": False})
    plugin.start()
    try:
        report = plugin.rescan()  # waits for the first scan, then finds nothing new
        assert report["tag_reads"] == 0
        result = SearchResult.from_wire(plugin.search("beyonce"))
        assert [s.title for s in result.songs] == ["Crazy in Love", "Naughty Girl"]
        assert result.answered == ["local"]
        song = Song.from_wire(plugin.song_detail(result.songs[0].id))
        assert plugin.song_url(song.id, "lossless") == song.path
        playlist = Playlist.from_wire(plugin.playlist_detail(SearchResult.from_wire(plugin.search("evening", "playlist")).playlists[0].id))
        assert len(playlist.songs or []) == 2
        cafe = SearchResult.from_wire(plugin.search("cafe del mar")).songs[0]
        assert Lyrics.from_wire(plugin.lyrics(cafe.id)).line_at(1.6).translation == "第一行"  # type: ignore[union-attr]
        health = plugin.health()
        assert health["songs"] == 8 and health["failed"] == 1
    finally:
        plugin.stop()


def test_a_search_that_finds_nothing_during_the_first_scan_waits_for_it(
        layout: LibraryLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The first scan is held until the search has looked once and found nothing (the catalogue
    # is still empty): a search that answered then would say "no song matches" to a user who
    # asked just after the plugin turned Ready.
    first_look, scan_may_go = threading.Event(), threading.Event()
    scan, search = Library.scan, Library.search

    def held_scan(self: Library) -> Any:
        scan_may_go.wait()
        return scan(self)

    def watched_search(self: Library, *args: Any, **kwargs: Any) -> SearchResult:
        result = search(self, *args, **kwargs)
        first_look.set()
        return result

    monkeypatch.setattr(Library, "scan", held_scan)
    monkeypatch.setattr(Library, "search", watched_search)
    releaser = threading.Thread(target=lambda: first_look.wait() and scan_may_go.set())
    releaser.start()
    plugin = LocalMusic()
    plugin.initialize({"folders": [str(layout.root)], "stateDir": str(tmp_path), "watch": False})
    plugin.start()
    try:
        assert [s.title for s in SearchResult.from_wire(plugin.search("beyonce")).songs] == [
            "Crazy in Love", "Naughty Girl"]
        assert SearchResult.from_wire(plugin.search("no such song")).songs == []  # the scan is over: no wait
    finally:
        scan_may_go.set()
        releaser.join()
        plugin.stop()


@pytest.mark.anyio
async def test_the_plugin_answers_over_json_rpc_from_its_own_process(layout: LibraryLayout, tmp_path: Path) -> None:
    from mfx.runtimes.base import Limits, LoadRequest, PluginLogRecord, PluginType
    from mfx.runtimes.rpc import RpcRuntime

    logs: list[PluginLogRecord] = []
    state = tmp_path / "state"
    request = LoadRequest(
        name="local-music",
        version="1.0.0",
        type=PluginType.RPC,
        entry_point="python -m local_music",
        plugin_dir=PLUGIN_DIR,
        state_dir=state,
        limits=Limits(timeout_seconds=60),
        log=logs.append,
    )
    async with RpcRuntime() as runtime:
        instance = await runtime.load(request)
        try:
            await instance.initialize({"folders": [str(layout.root)], "watch": False})
            await instance.start()
            await instance.call("rescan")  # returns once the first scan is done
            await instance.health()
            stats = await instance.call("stats")
            assert (stats["songs"], stats["failed"]) == (8, 1)
            result = SearchResult.from_wire(await instance.call("search", {"query": "BEYONCE"}))
            assert [s.title for s in result.songs] == ["Crazy in Love", "Naughty Girl"]
            first = result.songs[0]
            assert await instance.call("song_url", [first.id, "lossless"]) == first.path
            assert Song.from_wire(await instance.call("song_detail", {"id": first.id})) == first
            with pytest.raises(PluginError, match="no song 'local:nope'"):
                await instance.call("song_detail", {"id": "local:nope"})
            with pytest.raises(PluginError, match="not supported"):
                await instance.call("login", {"credentials": {"user": "me"}})
        finally:
            await instance.stop()
    # The index lives in the plugin's state directory (its working directory).
    assert (state / INDEX_FILE).is_file()
    assert any("corrupt.flac" in record.message for record in logs)  # stderr logging forwarded


def test_a_folder_made_after_the_start_is_watched_once_it_appears(tmp_path: Path) -> None:
    music = tmp_path / "home" / "music"  # neither exists yet, as in a new MFX_HOME
    lib = Library(LibraryConfig.from_mapping(
        {"folders": [str(music)], "stateDir": str(tmp_path / "state"), "debounceSeconds": 0.05}))
    lib.scan()
    lib.start_watching()
    try:
        (tmp_path / "home").mkdir()
        staging = tmp_path / "staging"
        source = write_song(staging, Track("Arrival.flac", "Arrival", ("Watcher",), "Live", 1))
        music.mkdir()
        os.replace(source, music / "Arrival.flac")
        assert lib.wait_for(lambda lb: any(s.title == "Arrival" for s in lb.songs()), timeout=30)
    finally:
        lib.close()
