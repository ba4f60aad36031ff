"""The Library and Playlists menus and the type-ahead search, fed by the player's API.

Search asks every Ready MusicSource on its own, in parallel, and shows each answer as it
lands; a source still silent after ``SLOW_SECONDS`` is marked slow."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from mfx.errors import MfxError
from mfx.tui.client import PLAYER
from mfx.tui.text import album, condition
from mfx.tui.views import SONG_COLUMNS, Level, Navigator, SearchView, SourceAnswer, song_cells

if TYPE_CHECKING:
    from mfx.tui.app import MfxTui

SLOW_SECONDS = 1.0
LIBRARY_LIMIT = "500"


class LibraryMenus:
    def __init__(self, app: MfxTui) -> None:
        self.app = app

    def start(self) -> None:
        library = self.app.query_one("#library", Navigator)
        library.reset(Level("Library", ("",), [("Artists",), ("Albums",), ("Songs",)],
                            on_enter=self._open_library))
        playlists = self.app.query_one("#playlists", Navigator)
        playlists.reset(Level("Playlists", ("",), [("loading…",)], on_enter=self._load_playlists))
        self.reload_playlists()

    def reload_playlists(self) -> None:
        self.app.run_worker(partial(self._load_playlists, 0), group="playlists",  # type: ignore[arg-type]
                            exclusive=True)

    async def _get(self, path: str, **params: str) -> Any:
        """The answer, or None after saying why (or when the app closed meanwhile: nothing to show it in)."""
        try:
            answer = await self.app.client.get(f"{PLAYER}/{path}", **params)
        except MfxError as error:
            self.app.say(f"{path}: {error}")
            return None
        return None if self.app.closing else answer

    def _songs_level(self, title: str, songs: list[dict[str, Any]]) -> Level:
        async def play(index: int) -> None:
            await self.app.play({"songs": songs[index:]})
        return Level(title, SONG_COLUMNS, [song_cells(song) for song in songs], songs, play)

    async def _open_library(self, index: int) -> None:
        navigator = self.app.query_one("#library", Navigator)
        songs_answer = await self._get("library", type="song", limit=LIBRARY_LIMIT)
        if songs_answer is None:
            return
        songs = songs_answer.get("songs") or []
        if index == 2:
            navigator.push(self._songs_level("Songs", songs))
            return
        kind = "artist" if index == 0 else "album"
        answer = await self._get("library", type=kind, limit=LIBRARY_LIMIT)
        if answer is None:
            return
        items = answer.get(f"{kind}s") or []
        names = [str(item.get("name", "")) for item in items]

        async def open_one(row: int) -> None:
            name = names[row]
            if kind == "artist":
                chosen = [s for s in songs if name in [a.get("name") for a in s.get("artists") or []]]
            else:
                chosen = [s for s in songs if album(s) == name]
            navigator.push(self._songs_level(name, chosen))

        rows = [(name, str(item.get("source", ""))) for name, item in zip(names, items, strict=True)]
        navigator.push(Level("Artists" if kind == "artist" else "Albums", ("Name", "Source"), rows, items, open_one))

    async def _load_playlists(self, _index: int) -> None:
        navigator = self.app.query_one("#playlists", Navigator)
        try:
            playlists = list(await self.app.client.get(f"{PLAYER}/playlists") or [])
            if self.app.closing:
                return
        except MfxError as error:  # said in the view (also loaded at start, when no one asked)
            navigator.reset(Level("Playlists", ("",), [(str(error),), ("(Enter to try again)",)],
                                  on_enter=self._load_playlists))
            return

        async def open_one(row: int) -> None:
            chosen = playlists[row]
            # By name alone: a playlist's "source" is the songs' source id, not the plugin's name.
            answer = await self._get(f"playlists/{chosen.get('name', '')}")
            if answer is not None:
                navigator.push(self._songs_level(str(chosen.get("name", "")), answer.get("songs") or []))

        rows = [(str(p.get("name", "")), str(p.get("source", ""))) for p in playlists]
        navigator.reset(Level("Playlists", ("Name", "Source"), rows, playlists, open_one))

    def music_sources(self) -> list[str]:
        return sorted(name for name, obj in self.app.plugins.objects.items()
                      if "MusicSource" in ((obj.get("spec") or {}).get("interfaces") or [])
                      and condition(obj, "Ready").get("status") == "True")

    async def search(self, query: str, view: SearchView) -> list[dict[str, Any]]:
        """Ask every Ready MusicSource for ``query``; the songs shown when the last one answered."""
        if not query.strip():
            return view.show({})
        answers = {name: SourceAnswer() for name in self.music_sources() or [""]}
        shown = view.show(answers)

        async def ask(name: str) -> None:
            nonlocal shown
            params = {"q": query, "limit": "50"} | ({"source": name} if name else {})
            try:
                result = await self.app.client.get(f"{PLAYER}/search", **params)
                answers[name].songs = result.get("songs") or []
            except MfxError as error:
                answers[name].error = str(error)
            answers[name].done = True
            if self.app.closing:
                return
            shown = view.show(answers)
            self.app.search_songs = shown

        async def mark_slow() -> None:
            await anyio.sleep(SLOW_SECONDS)
            if self.app.closing:
                return
            for answer in answers.values():
                answer.slow = not answer.done
            view.show(answers)

        async with anyio.create_task_group() as outer:
            outer.start_soon(mark_slow)
            async with anyio.create_task_group() as group:
                for name in answers:
                    group.start_soon(ask, name)
            outer.cancel_scope.cancel()
        return shown
