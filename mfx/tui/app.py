"""``mfx tui``: the full-screen terminal player, a client of the daemon's API like the CLI.

Two watches feed it (the player's state, the PluginManifests); a key press is one API call,
and its answer is shown at once (the watch line that follows confirms it). Between state
lines the position runs on a local clock, which moves the progress bar and the lyrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

import anyio
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, Static

from mfx.api.object_mirror import ObjectMirror
from mfx.errors import MfxError
from mfx.tui.actions import perform
from mfx.tui.client import PLAYER, ApiClient, Connection
from mfx.tui.extensions import Extension, describe, live_extensions, reload_problems
from mfx.tui.keys import bindings, keymap_text
from mfx.tui.library import LibraryMenus
from mfx.tui.plugin_panel import PluginPanel
from mfx.tui.text import PlayerClock, now_line
from mfx.tui.views import Listing, Navigator, NowView, PluginsView, QueueView, SearchView
from mfx.tui.watches import watch_plugins, watch_state

CSS = """
.title { color: $accent; text-style: bold; height: 1; }
#nowline { height: 1; background: $panel; color: $foreground; }
#status { height: 1; color: $warning; }
#middle { height: 1fr; }
#views { width: 1fr; }
#region-top, #region-bottom { height: auto; }
#region-left, #region-right { width: auto; }
.panel { border: round $primary; padding: 0 1; }
#search-sources { height: 1; color: $text-muted; }
#now-title { height: 3; }
#now-progress { height: 1; color: $primary; }
#now-settings { height: 1; color: $text-muted; }
#lyrics { height: 1fr; border: round $panel; }
.lyric { color: $text-muted; }
.lyric.current { color: $accent; text-style: bold; background: $boost; }
#plugin-list { height: 1fr; }
#plugin-detail { height: 2fr; }
#plugin-log { height: 1fr; border: round $panel; }
"""

VIEWS = ("library", "playlists", "search", "queue", "now", "plugins", "help")
TICK_SECONDS = 0.25  # the local clock of the progress bar and lyrics; not a request


class MfxTui(App[None]):
    """The terminal player. ``connection`` says where the daemon is."""

    CSS = CSS
    TITLE = "mfx"
    BINDINGS: ClassVar[list[BindingType]] = bindings()  # type: ignore[assignment]

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.connection = connection
        self.client = ApiClient(connection)
        self.clock = PlayerClock()
        self.plugins = ObjectMirror()
        self.extensions: dict[str, Extension] = {}
        self.links: dict[str, str] = {}
        self.message = ""
        self.lyrics_for: str | None = None
        self.search_songs: list[dict[str, Any]] = []
        self.menus = LibraryMenus(self)
        self.plugin_panel = PluginPanel(self)
        self.previous_view = "now"
        self.rendered_second = -1
        self.extensions_lock = anyio.Lock()

    # --- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Vertical(id="region-top")
        with Horizontal(id="middle"):
            yield Vertical(id="region-left")
            with ContentSwitcher(initial="now", id="views"):
                yield Navigator(id="library")
                yield Navigator(id="playlists")
                yield SearchView(id="search")
                yield QueueView(id="queue")
                yield NowView(id="now")
                yield PluginsView(id="plugins")
                yield Static(keymap_text(), id="help")
            yield Vertical(id="region-right")
        yield Vertical(id="region-bottom")
        yield Static("", id="nowline")
        yield Static(f"connecting to {self.connection.describe()}…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.run_worker(watch_state(self.client, self.on_state, self._link("player")), group="watch")
        self.run_worker(watch_plugins(self.client, self.plugins, self.on_plugins, self._link("plugins")),
                        group="watch")
        self.set_interval(TICK_SECONDS, self.tick)
        self.menus.start()

    async def on_unmount(self) -> None:
        await self.client.aclose()

    @property
    def closing(self) -> bool:
        """The app is shutting down: its screens may be gone already, while workers still bring
        in answers. Those are dropped from then on (a query would find no widget to show them)."""
        return not self.is_running

    # --- what the watches bring ------------------------------------------------------------

    def _link(self, what: str) -> Any:
        def report(up: bool, why: str) -> None:
            if up:
                self.links.pop(what, None)
                self.message = f"reconnected to {self.connection.describe()}"
            else:
                self.links[what] = why
            self.show_status()
        return report

    def on_answer(self, answer: Any) -> None:
        """The state a player call answered with: shown at once, unless the watch already
        brought a newer one (the watch's lines come in order; answers may overtake them)."""
        if isinstance(answer, dict) and "status" in answer \
                and answer.get("version", 0) >= self.clock.state.get("version", -1):
            self.on_state(answer)

    def on_state(self, state: dict[str, Any]) -> None:
        if self.closing:
            return
        self.clock.update(state)
        if not self.links:
            self.show_status()
        self.query_one(NowView).show(self.clock)
        self.query_one(QueueView).show(state)
        self.query_one("#nowline", Static).update(now_line(state, self.clock.position()))
        song_id = (state.get("current") or {}).get("id")
        if song_id != self.lyrics_for:
            self.lyrics_for = song_id
            self.load_lyrics(song_id)
        for name in self.extensions:
            self.render_extension(name)

    def tick(self) -> None:
        if self.closing or self.clock.state.get("status") != "playing":
            return
        position = self.clock.position()
        self.query_one(NowView).tick(self.clock)
        self.query_one("#nowline", Static).update(now_line(self.clock.state, position))
        if int(position) != self.rendered_second:  # panels show m:ss: a new second is a change
            self.rendered_second = int(position)
            for name in self.extensions:
                self.render_extension(name)

    def on_plugins(self) -> None:
        if self.closing:
            return
        self.plugin_panel.refresh_rows()
        self.sync_extensions()
        self.show_status()

    def show_status(self) -> None:
        if self.closing:
            return
        parts = [f"retrying: {why}" for why in sorted(set(self.links.values()))]
        parts += [f"{name}: ReloadFailed: {why}" for name, why in sorted(reload_problems(self.plugins.objects).items())
                  if name in self.extensions]
        if not parts:
            parts = [self.message or f"connected to {self.connection.describe()}"]
        self.query_one("#status", Static).update("  |  ".join(parts))

    def say(self, message: str) -> None:
        self.message = message
        self.show_status()

    @work(group="lyrics", exclusive=True)
    async def load_lyrics(self, song_id: str | None) -> None:
        lyrics: Mapping[str, Any] | None = None
        if song_id:
            try:
                lyrics = await self.client.get(f"{PLAYER}/lyrics")
            except MfxError as error:
                self.say(f"lyrics: {error}")
        if self.closing:
            return
        pane = self.query_one("#lyrics")
        pane.set_lines((lyrics or {}).get("lines") or [], (lyrics or {}).get("plain"))  # type: ignore[attr-defined]
        self.query_one(NowView).tick(self.clock)

    # --- UIExtension panels ------------------------------------------------------------------

    @work(group="extensions")
    async def sync_extensions(self) -> None:
        # One sync at a time, each to the end: a cancelled one could leave a panel half made.
        async with self.extensions_lock:
            await self._sync_extensions()

    async def _sync_extensions(self) -> None:
        live = live_extensions(self.plugins.objects)
        refused = reload_problems(self.plugins.objects)
        for name in [name for name in self.extensions if name not in live]:
            await self.drop_extension(name)
        for name, version in live.items():
            known = self.extensions.get(name)
            if known is not None and (known.version == version or name in refused):
                continue  # a refused reload: the version that answered before still does
            try:
                extension = await describe(self.client, name, version)
            except MfxError as error:
                self.say(f"{name}: {error}")
                continue
            if self.closing:
                return
            await self.drop_extension(name)
            self.extensions[name] = extension
            for theme in extension.themes.values():
                self.register_theme(theme)
            panel = Static("", id=f"ext-{name}", classes="panel")
            panel.border_title = extension.title
            if extension.region in ("top", "bottom"):
                panel.styles.height = extension.rows + 2
            else:
                panel.styles.width = extension.rows + 4
            await self.query_one(f"#region-{extension.region}").mount(panel)
            self.render_extension(name)
        if self.closing:
            return
        plugin_keys = [f"{', '.join(e.keys)}  ({e.name})" for e in self.extensions.values() if e.keys]
        self.query_one("#help", Static).update(
            keymap_text() + ("\n\nUIExtension keys:\n" + "\n".join(plugin_keys) if plugin_keys else ""))
        self.show_status()

    async def drop_extension(self, name: str) -> None:
        self.extensions.pop(name, None)
        for panel in self.query(f"#ext-{name}"):
            await panel.remove()

    def render_extension(self, name: str) -> None:
        # One render in flight per panel: a newer state cancels the older one's call.
        state = {**self.clock.state, "positionSeconds": round(self.clock.position(), 3)}

        # A function, not a coroutine: a worker cancelled before it starts leaves nothing unawaited.
        self.run_worker(partial(self._render, name, state), group=f"render-{name}", exclusive=True)  # type: ignore[arg-type]

    async def _render(self, name: str, state: dict[str, Any]) -> None:
        try:
            text = await self.client.call_plugin(name, "render", state)
        except MfxError as error:
            text = f"{name}: {error}"
        for panel in self.query(f"#ext-{name}").results(Static):
            panel.update(str(text))

    async def on_key(self, event: events.Key) -> None:
        # A UIExtension's keys: the host's bindings already had their turn.
        for extension in self.extensions.values():
            if event.key in extension.keys:
                event.stop()
                try:
                    action = await self.client.call_plugin(extension.name, "handle_input", event.key)
                except MfxError as error:
                    self.say(f"{extension.name}: {error}")
                    return
                if action:
                    await self.action_act(str(action))
                return

    # --- actions ------------------------------------------------------------------------------

    async def action_act(self, action: str) -> None:
        if action == "quit":
            self.exit()
            return
        self.send(action)

    @work(group="act")
    async def send(self, action: str) -> None:
        try:
            answer = await perform(self.client, action, self.clock.state)
        except MfxError as error:
            self.say(f"{action}: {error}")
            return
        self.on_answer(answer)

    async def play(self, body: dict[str, Any]) -> None:
        try:
            answer = await self.client.player("POST", "play", body)
        except MfxError as error:
            self.say(f"play: {error}")
            return
        self.on_answer(answer)

    async def action_queue_remove(self) -> None:
        row = self.query_one("#queue-list", Listing).cursor_row
        await self._queue_call("DELETE", f"queue/{row}", None)

    async def action_queue_move(self, step: int) -> None:
        listing = self.query_one("#queue-list", Listing)
        row = listing.cursor_row
        if 0 <= row + step < listing.row_count:
            await self._queue_call("POST", "queue/move", {"from": row, "to": row + step})
            listing.move_cursor(row=row + step)

    async def _queue_call(self, method: str, action: str, body: Any) -> None:
        try:
            await self.client.player(method, action, body)
        except MfxError as error:
            self.say(f"queue: {error}")

    async def action_plugin_restart(self) -> None:
        await self.plugin_panel.restart()

    async def action_plugin_suspend(self) -> None:
        await self.plugin_panel.toggle_suspend()

    def action_view(self, name: str) -> None:
        switcher = self.query_one(ContentSwitcher)
        if switcher.current != name:
            self.previous_view = switcher.current or "now"
        switcher.current = name
        if name == "playlists" and len(self.query_one("#playlists", Navigator).levels) <= 1:
            self.menus.reload_playlists()  # sources may have come and gone since
        if name == "search":
            self.query_one("#search-input", Input).focus()
            return
        view = self.query_one(f"#{name}")
        for listing in view.query(Listing):
            listing.focus()
            break
        else:  # nothing to focus here: keep none, so the footer shows the app's keys, not a hidden view's
            self.set_focus(None)

    def action_go_back(self) -> None:
        focused = self.focused
        current = self.query_one(ContentSwitcher).current
        if isinstance(focused, Input):
            self.query_one("#search-results", Listing).focus()
        elif current in ("library", "playlists"):
            if not self.query_one(f"#{current}", Navigator).pop():
                self.action_view(self.previous_view)
        elif current == "plugins" and self.plugin_panel.close_detail():
            pass
        elif current != "now":
            self.action_view(self.previous_view if self.previous_view != current else "now")

    def action_next_theme(self) -> None:
        names = ["textual-dark", "textual-light"] + [t for e in self.extensions.values() for t in e.themes]
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.say(f"theme {self.theme}")

    # --- lists -------------------------------------------------------------------------------

    def on_navigator_chosen(self, message: Navigator.Chosen) -> None:
        if message.level.on_enter is not None:
            self.run_worker(partial(message.level.on_enter, message.index), group="menu", exclusive=True)

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        table_id = event.data_table.id
        if table_id == "search-results" and event.cursor_row < len(self.search_songs):
            await self.play({"songs": self.search_songs[event.cursor_row:]})
        elif table_id == "queue-list":
            await self.play({"index": event.cursor_row})
        elif table_id == "plugin-list":
            self.plugin_panel.open_detail(event.cursor_row)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.search(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#search-results", Listing).focus()

    @work(group="search", exclusive=True)
    async def search(self, query: str) -> None:
        await anyio.sleep(0.15)  # type-ahead: wait for a pause in typing before asking
        if not self.closing:
            self.search_songs = await self.menus.search(query, self.query_one(SearchView))

    def on_resize(self, event: events.Resize) -> None:
        self.query_one(NowView).tick(self.clock)
