"""The music catalogue: search, browse, playlists and lyrics, fanned out to every Ready
MusicSource at once, and which source answers for a song."""

from __future__ import annotations

import time
from typing import Any

import anyio

from mfx.api.music import Lyrics, Playlist, SearchResult, SearchType, Song
from mfx.errors import BadRequestError, MfxError, NoSourceAnsweredError, NotFoundError
from mfx.music.player_view import failure_reason
from mfx.music.plugin_lookup import MUSIC_SOURCE, ServiceLookup
from observability.metrics import Metrics

_ALL = 100_000  # "every item" for a listing the player itself needs whole (playlist names)


def _search_type(type: SearchType | str) -> SearchType:
    try:
        return SearchType(type)
    except ValueError:
        raise BadRequestError(f"type: expected one of {', '.join(t.value for t in SearchType)}, got {type!r}") from None


def _check_page(limit: int, offset: int) -> None:
    if limit < 1:
        raise BadRequestError(f"limit: expected at least 1, got {limit}")
    if offset < 0:
        raise BadRequestError(f"offset: expected 0 or more, got {offset}")


def _nobody_answered(result: SearchResult, deadline: float) -> str:
    """Why no MusicSource answered, and what to look at next."""
    parts = [f"{name} did not answer within {deadline:g}s" for name in result.timed_out]
    parts += [f"{name} failed: {why}" for name, why in result.failed.items()]
    names = result.timed_out + list(result.failed)
    hint = "; ".join(f"`mfx describe pm {name}`" for name in names)
    advice = f"see {hint} and `mfx logs pm/{names[0]}`" if names else "see `mfx get pm`"
    if result.timed_out:
        advice += "; a slow source may need a larger searchTimeout in player.yaml"
    return f"no MusicSource answered: {'; '.join(parts)}; {advice}"


class Catalogue:
    """Asks the Ready MusicSources; each gets ``search_timeout`` seconds to answer."""

    def __init__(self, services: ServiceLookup, metrics: Metrics, *, search_timeout: float) -> None:
        self._services = services
        self._metrics = metrics
        self._search_timeout = search_timeout
        self._source_of: dict[str, str] = {}  # Song.source -> the provider that answered for it
        self._lyrics: dict[str, Lyrics | None] = {}

    def sources(self) -> list[Any]:
        return list(self._services.lookup(MUSIC_SOURCE))

    async def search(self, query: str, type: SearchType | str = SearchType.SONG, *, limit: int = 30,
                     offset: int = 0, source: str | None = None) -> SearchResult:
        """Ask every Ready MusicSource at once; each gets ``searchTimeout`` seconds. Raises
        ``NoSourceAnsweredError`` when none answered: an empty answer then would claim that
        nothing matches when nothing was searched."""
        kind = _search_type(type)
        if not query.strip():  # every source answers an empty query with nothing at all
            raise BadRequestError("q: the query is empty; to list everything a source holds, use the "
                                  "library (`mfx library`, `mfx playlists`)")
        _check_page(limit, offset)
        params = {"query": query, "type": kind.value, "limit": limit, "offset": offset}
        started = time.perf_counter()
        result = await self._ask_sources("search", params, source)
        self._metrics.player_search_duration_seconds.observe(time.perf_counter() - started)
        return result

    async def library(self, type: SearchType | str = SearchType.SONG, *, limit: int = 100, offset: int = 0,
                      source: str | None = None) -> SearchResult:
        """Every item of one type that the Ready MusicSources hold (their ``browse``), in
        each source's own order; sources are asked at once, as for a search."""
        kind = _search_type(type)
        _check_page(limit, offset)
        return await self._ask_sources("browse", {"type": kind.value, "limit": limit, "offset": offset}, source)

    async def _ask_sources(self, method: str, params: dict[str, Any], source: str | None) -> SearchResult:
        """Call ``method`` on every Ready MusicSource (or only ``source``) concurrently and merge
        the answers; a source that fails or misses the deadline is reported, never raised."""
        providers = self.sources()
        if source is not None:
            providers = [p for p in providers if p.name == source]
            if not providers:
                names = ", ".join(p.name for p in self.sources()) or "none"
                raise NotFoundError(f"no Ready MusicSource named {source!r} (Ready: {names})")
        if not providers:
            raise NoSourceAnsweredError(
                "no MusicSource is Ready, so there is nothing to ask: apply one (e.g. "
                "`mfx apply -f plugins/local-music/plugin.yaml`), wait for it with "
                "`mfx wait --for=condition=Ready pm --all`; `mfx get pm` shows what is not Ready")
        results: dict[str, SearchResult] = {}
        deadline = self._search_timeout

        async def ask(provider: Any) -> None:
            name = provider.name
            with anyio.move_on_after(deadline) as scope:
                try:
                    answer = await provider.instance.call(method, params)
                    result = SearchResult.from_wire(answer)
                except Exception as exc:  # one source's failure is reported, never raised
                    results[name] = SearchResult(failed={name: f"{failure_reason(exc)}: {exc}"})
                    return
                for song in result.songs:
                    self._source_of.setdefault(song.source, name)
                for playlist in result.playlists:
                    self._source_of.setdefault(playlist.source, name)
                result.answered, result.timed_out, result.failed = [name], [], {}
                results[name] = result
            if scope.cancelled_caught:
                self._metrics.player_source_timeouts_total.labels(name).inc()
                results[name] = SearchResult(timed_out=[name])

        async with anyio.create_task_group() as group:
            for provider in providers:
                group.start_soon(ask, provider)
        merged = SearchResult.merge(results[p.name] for p in providers)
        if not merged.answered:
            raise NoSourceAnsweredError(_nobody_answered(merged, deadline))
        return merged

    async def playlists(self, source: str | None = None) -> list[Playlist]:
        """The playlists of every Ready MusicSource (or of ``source``)."""
        return (await self.library(SearchType.PLAYLIST, limit=_ALL, source=source)).playlists

    async def playlist(self, name: str, source: str | None = None) -> Playlist:
        """The playlist called ``name`` (or with that id), with its songs resolved."""
        wanted = name.casefold()
        known = await self.playlists(source)
        for playlist in known:
            if playlist.id == name or playlist.name.casefold() == wanted:
                handle = self.handle_for_source(playlist.source)
                detail = Playlist.from_wire(await handle.call("playlist_detail", {"id": playlist.id}))
                for song in detail.songs or []:
                    self._source_of.setdefault(song.source, getattr(handle, "name", ""))
                return detail
        where = f" in {source}" if source else ""
        if not known:
            raise NotFoundError(f"no playlist named {name!r}: there are no playlists{where} "
                                "(`mfx library` lists what there is)")
        names = ", ".join(repr(p.name) for p in known)
        raise NotFoundError(f"no playlist named {name!r}; playlists{where}: {names} (`mfx playlists` lists them)")

    async def lyrics(self, song: Song) -> Lyrics | None:
        if song.id not in self._lyrics:
            handle = await self.handle_for_song(song)
            answer = await handle.call("lyrics", {"id": song.id})
            self._lyrics[song.id] = Lyrics.from_wire(answer) if answer else None
        return self._lyrics[song.id]

    async def handle_for_song(self, song: Song) -> Any:
        providers = self.sources()
        if not providers:
            raise NotFoundError("no Ready MusicSource: apply one (e.g. plugins/local-music) and wait for Ready",
                                reason="NoProvider")
        wanted = self._source_of.get(song.source, song.source)
        for provider in providers:
            if provider.name == wanted:
                return provider.instance
        # Not learned yet (e.g. a queue restored after a restart): whoever knows the song.
        for provider in providers:
            try:
                with anyio.fail_after(self._search_timeout):
                    await provider.instance.call("song_detail", {"id": song.id})
            except (MfxError, TimeoutError):
                continue
            self._source_of[song.source] = provider.name
            return provider.instance
        raise NotFoundError(f"no Ready MusicSource knows song {song.id} ({song.title})")

    def handle_for_source(self, source: str) -> Any:
        wanted = self._source_of.get(source, source)
        providers = self.sources()
        for provider in providers:
            if provider.name == wanted:
                return provider.instance
        if providers:
            return providers[0].instance
        raise NotFoundError("no Ready MusicSource", reason="NoProvider")
