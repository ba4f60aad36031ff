"""The terminal player's views: lists you walk with h j k l, the now-playing page and its
lyrics, and the plugin list with a detail pane. They show what the app hands them; the app
talks to the daemon."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Input, RichLog, Static

from mfx.tui.text import PlayerClock, album, artists, clock, lyric_index, progress_bar


class Listing(DataTable[str]):
    """A row table with vim keys: ``j``/``k`` move, ``l`` opens (as Enter), ``g``/``G`` ends."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("l", "select_cursor", "Open", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)

    def show(self, columns: Sequence[str], rows: Sequence[Sequence[str]], keep_cursor: bool = True) -> None:
        row = self.cursor_row if keep_cursor else 0
        self.clear(columns=True)
        self.add_columns(*columns)
        for cells in rows:
            self.add_row(*cells)
        if rows:
            self.move_cursor(row=min(max(row, 0), len(rows) - 1))


def song_cells(song: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (str(song.get("title", "")), artists(song), album(song), clock(song.get("durationSeconds")))


SONG_COLUMNS = ("Title", "Artist", "Album", "Time")


@dataclass
class Level:
    """One page of a menu: its rows and what Enter on row ``i`` does."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    items: Sequence[Any] = ()
    on_enter: Callable[[int], Any] | None = None
    cursor: int = 0


class Navigator(Vertical):
    """A stack of menu pages (Library, Playlists): Enter goes in, Esc/``h`` comes back."""

    class Chosen(Message):
        def __init__(self, level: Level, index: int) -> None:
            super().__init__()
            self.level = level
            self.index = index

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.levels: list[Level] = []

    def compose(self) -> ComposeResult:
        yield Static("", classes="title")
        yield Listing()

    @property
    def listing(self) -> Listing:
        return self.query_one(Listing)

    def _show(self) -> None:
        level = self.levels[-1]
        self.query_one(".title", Static).update(" › ".join(item.title for item in self.levels))
        self.listing.show(level.columns, level.rows, keep_cursor=False)
        if level.rows:
            self.listing.move_cursor(row=min(level.cursor, len(level.rows) - 1))

    def reset(self, level: Level) -> None:
        self.levels = [level]
        self._show()

    def push(self, level: Level) -> None:
        if self.levels:
            self.levels[-1].cursor = self.listing.cursor_row
        self.levels.append(level)
        self._show()

    def pop(self) -> bool:
        if len(self.levels) <= 1:
            return False
        self.levels.pop()
        self._show()
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.levels:
            self.post_message(self.Chosen(self.levels[-1], event.cursor_row))


@dataclass
class SourceAnswer:
    songs: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    slow: bool = False
    error: str = ""


class SearchInput(Input):
    """The query; Down (like Enter) goes on to the results."""

    BINDINGS = [Binding("down", "results", "Results", show=False)]

    def action_results(self) -> None:
        self.screen.query_one("#search-results").focus()


class SearchView(Vertical):
    """Type-ahead search: one line per source says whether it answered, is slow or failed."""

    def compose(self) -> ComposeResult:
        yield SearchInput(placeholder="search songs (accents do not matter)", id="search-input")
        yield Static("", id="search-sources")
        yield Listing(id="search-results")

    def show(self, answers: Mapping[str, SourceAnswer]) -> list[dict[str, Any]]:
        """Show every answer so far; the songs in the order shown."""
        parts = []
        for name, answer in answers.items():
            name = name or "all sources"
            if answer.error:
                parts.append(f"{name}: failed ({answer.error})")
            elif answer.done:
                parts.append(f"{name}: {len(answer.songs)}")
            else:
                parts.append(f"{name}: slow…" if answer.slow else f"{name}: …")
        self.query_one("#search-sources", Static).update("  ".join(parts) or "no Ready MusicSource")
        songs = [song for answer in answers.values() for song in answer.songs]
        self.query_one(Listing).show(SONG_COLUMNS, [song_cells(song) for song in songs])
        return songs


class QueueView(Vertical):
    """The queue: Enter jumps, ``d`` removes, ``K``/``J`` move the song up or down."""

    BINDINGS = [
        Binding("d,delete", "app.queue_remove", "Remove", show=False),
        Binding("K", "app.queue_move(-1)", "Move up", show=False),
        Binding("J", "app.queue_move(1)", "Move down", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Static("Queue  (Enter play · d remove · K/J move up/down)", classes="title")
        yield Listing(id="queue-list")

    def show(self, state: Mapping[str, Any]) -> None:
        current = state.get("currentIndex")
        rows = [("▶" if index == current else "", *song_cells(song))
                for index, song in enumerate(state.get("queue") or [])]
        self.query_one(Listing).show(("", *SONG_COLUMNS), rows)


class LyricsPane(VerticalScroll):
    """Timed lyric lines; the one showing now is highlighted and kept in the middle."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines: list[dict[str, Any]] = []
        self.current: int | None = None

    def set_lines(self, lines: Sequence[dict[str, Any]], plain: str | None = None) -> None:
        self.lines = list(lines)
        self.current = None
        self.remove_children()
        if not self.lines:
            self.mount(Static(plain or "no lyrics", classes="lyric"))
            return
        for line in self.lines:
            text = str(line.get("text", ""))
            if line.get("translation"):
                text += f"\n  {line['translation']}"
            self.mount(Static(text, classes="lyric"))

    def follow(self, position: float) -> None:
        index = lyric_index(self.lines, position)
        if index == self.current:
            return
        lines = list(self.query(".lyric").results(Static))
        if self.current is not None and self.current < len(lines):
            lines[self.current].remove_class("current")
        self.current = index
        if index is not None and index < len(lines):
            lines[index].add_class("current")
            self.scroll_to_widget(lines[index], center=True, animate=False)

    def current_text(self) -> str | None:
        return None if self.current is None else str(self.lines[self.current].get("text", ""))


class NowView(Vertical):
    """Title, artist, album, the progress bar (m:ss), volume and mode, and the lyrics."""

    def compose(self) -> ComposeResult:
        yield Static("Now playing", classes="title")
        yield Static("", id="now-title")
        yield Static("", id="now-progress")
        yield Static("", id="now-settings")
        yield LyricsPane(id="lyrics")

    def show(self, clock_: PlayerClock) -> None:
        state = clock_.state
        song = clock_.song
        if song:
            text = f"[b]{song.get('title', '?')}[/b]\n{artists(song) or 'unknown artist'}\n{album(song)}"
        else:
            text = "nothing playing"
        self.query_one("#now-title", Static).update(text)
        volume = "muted" if state.get("muted") else f"{state.get('volume', 100)}"
        self.query_one("#now-settings", Static).update(
            f"{state.get('status', 'stopped')}   volume {volume}   mode {state.get('mode', '')}")
        self.tick(clock_)

    def tick(self, clock_: PlayerClock) -> None:
        width = max(self.size.width - 2, 20)
        position = clock_.position()
        self.query_one("#now-progress", Static).update(progress_bar(position, clock_.duration(), width))
        self.query_one(LyricsPane).follow(position)


class PluginsView(Vertical):
    """Every PluginManifest, live; Enter opens conditions, recent events and a log tail."""

    BINDINGS = [
        Binding("r", "app.plugin_restart", "Restart", show=False),
        Binding("s", "app.plugin_suspend", "Suspend/resume", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Static("Plugins  (Enter details · r restart · s suspend/resume · Esc back)", classes="title")
        yield Listing(id="plugin-list")
        with Vertical(id="plugin-detail"):
            yield Static("", id="plugin-conditions")
            yield Static("", id="plugin-events")
            yield RichLog(id="plugin-log", max_lines=200, wrap=True)

    def detail_open(self) -> bool:
        return bool(self.query_one("#plugin-detail").display)

    def on_mount(self) -> None:
        self.query_one("#plugin-detail").display = False
