"""An immutable view of the library built from the file index: lookups and search.

A scan builds a new ``Catalog`` and swaps it in, so readers never see half a scan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mfx.api.music import Album, Artist, Playlist, SearchResult, SearchType, Song

from .index import FileRecord
from .playlists import PlaylistFile
from .search import FieldRank, SearchIndex, fold
from .tags import SOURCE, digest


def playlist_id(path: str) -> str:
    return f"{SOURCE}:playlist:{digest(path)}"


@dataclass(frozen=True)
class Catalog:
    songs: dict[str, Song]  # id -> song, in catalogue order (album, disc, track)
    by_path: dict[str, str]  # path -> song id
    albums: dict[str, Album]
    album_songs: dict[str, list[str]]
    artists: dict[str, Artist]
    artist_songs: dict[str, list[str]]
    playlists: dict[str, Playlist]
    song_list: tuple[Song, ...]  # the same items as positions for the search indexes
    album_list: tuple[Album, ...]
    artist_list: tuple[Artist, ...]
    playlist_list: tuple[Playlist, ...]
    song_search: SearchIndex
    album_search: SearchIndex
    artist_search: SearchIndex
    playlist_search: SearchIndex

    @classmethod
    def build(cls, records: Iterable[FileRecord], playlist_files: Iterable[PlaylistFile]) -> Catalog:
        memo: dict[str, str] = {}

        def folded(text: str) -> str:
            # Artist and album names repeat across songs: fold each once.
            value = memo.get(text)
            if value is None:
                value = memo[text] = fold(text)
            return value

        songs = sorted(
            (r.song for r in records if r.song is not None), key=lambda song: _track_order(song, folded)
        )
        by_id = {song.id: song for song in songs}
        by_path = {song.path: song.id for song in songs if song.path}

        albums: dict[str, Album] = {}
        album_songs: dict[str, list[str]] = {}
        artists: dict[str, Artist] = {}
        artist_songs: dict[str, list[str]] = {}
        for song in songs:
            if song.album is not None:
                album_songs.setdefault(song.album.id, []).append(song.id)
                known = albums.get(song.album.id)
                if known is None:
                    albums[song.album.id] = song.album.model_copy()
                elif song.album.has_cover and not known.has_cover:
                    known.has_cover = True
            for artist in song.artists:
                artists.setdefault(artist.id, artist)
                artist_songs.setdefault(artist.id, []).append(song.id)
        for album_key, ids in album_songs.items():
            albums[album_key].song_count = len(ids)

        playlists: dict[str, Playlist] = {}
        for file in sorted(playlist_files, key=lambda f: (folded(f.name), f.path)):
            ids = [by_path[e.path] for e in file.entries if e.path in by_path]
            missing = len(file.entries) - len(ids) + file.skipped
            playlists[playlist_id(file.path)] = Playlist(
                id=playlist_id(file.path),
                name=file.name,
                source=SOURCE,
                description=f"{missing} entries not in the library" if missing else "",
                song_ids=ids,
                path=file.path,
            )

        album_list = sorted(albums.values(), key=lambda a: (folded(a.name), a.id))
        artist_list = sorted(artists.values(), key=lambda a: (folded(a.name), a.id))
        return cls(
            songs=by_id,
            by_path=by_path,
            albums={a.id: a for a in album_list},
            album_songs=album_songs,
            artists={a.id: a for a in artist_list},
            artist_songs=artist_songs,
            playlists=playlists,
            song_list=tuple(songs),
            album_list=tuple(album_list),
            artist_list=tuple(artist_list),
            playlist_list=tuple(playlists.values()),
            song_search=SearchIndex(
                [
                    (FieldRank.NAME, [(folded(s.title),) for s in songs]),
                    (FieldRank.ARTIST, [tuple(folded(n) for n in s.artist_names) for s in songs]),
                    (FieldRank.SECONDARY, [(folded(s.album.name) if s.album else "",) for s in songs]),
                ]
            ),
            album_search=SearchIndex(
                [
                    (FieldRank.NAME, [(folded(a.name),) for a in album_list]),
                    (FieldRank.ARTIST, [tuple(folded(x.name) for x in a.artists) for a in album_list]),
                ]
            ),
            artist_search=SearchIndex([(FieldRank.NAME, [(folded(a.name),) for a in artist_list])]),
            playlist_search=SearchIndex(
                [(FieldRank.NAME, [(folded(p.name),) for p in playlists.values()])]
            ),
        )

    @classmethod
    def empty(cls) -> Catalog:
        return cls.build([], [])

    def search(self, query: str, type: SearchType, limit: int, offset: int) -> SearchResult:
        result = SearchResult(answered=[SOURCE])
        match type:
            case SearchType.SONG:
                hits, total = self.song_search.search(query, limit=limit, offset=offset)
                result.songs = [self.song_list[i] for i in hits]
            case SearchType.ALBUM:
                hits, total = self.album_search.search(query, limit=limit, offset=offset)
                result.albums = [self.album_list[i] for i in hits]
            case SearchType.ARTIST:
                hits, total = self.artist_search.search(query, limit=limit, offset=offset)
                result.artists = [self.artist_list[i] for i in hits]
            case SearchType.PLAYLIST:
                hits, total = self.playlist_search.search(query, limit=limit, offset=offset)
                result.playlists = [self.playlist_list[i] for i in hits]
        result.total = total
        return result


    def browse(self, type: SearchType, limit: int, offset: int) -> SearchResult:
        """Every item of ``type`` in catalogue order (songs: album, disc, track), paged."""
        result = SearchResult(answered=[SOURCE])
        match type:
            case SearchType.SONG:
                result.songs, result.total = list(self.song_list[offset:offset + limit]), len(self.song_list)
            case SearchType.ALBUM:
                result.albums, result.total = list(self.album_list[offset:offset + limit]), len(self.album_list)
            case SearchType.ARTIST:
                result.artists, result.total = list(self.artist_list[offset:offset + limit]), len(self.artist_list)
            case SearchType.PLAYLIST:
                result.playlists = list(self.playlist_list[offset:offset + limit])
                result.total = len(self.playlist_list)
        return result


def _track_order(song: Song, folded: Callable[[str], str]) -> tuple[str, str, int, int, str, str]:
    album = song.album
    return (
        folded(album.name) if album else "\uffff",  # songs without an album go last
        album.id if album else "",
        song.disc_number or 0,
        song.track_number or 0,
        folded(song.title),
        song.path or song.id,
    )
