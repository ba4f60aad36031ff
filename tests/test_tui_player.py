"""``mfx tui`` driven by textual's pilot against a real daemon: local-music over a generated
tagged library (accented names, .lrc lyrics) playing in real time into an ALSA file tap, and a
MusicSource that never answers.

Each key press is checked against what the daemon's player reports afterwards; the lyrics
pane follows the position; the Plugins view follows the PluginManifest watch with no key
pressed, and ``r``/``s`` send the CLI's own patches.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from textual.pilot import Pilot

from mfx.music.player import PlayerView
from mfx.tui.app import MfxTui
from mfx.tui.client import Connection
from mfx.tui.views import Listing, LyricsPane
from tests.audio_env import TapDevice
from tests.daemon_harness import REPO
from tests.music_fixtures import TRACKS, build_library, write_song
from tests.player_env import PlayerRig, start_rig, tap_env
from tests.test_player_cli import hung_plugin

__all__ = ["tap_env"]

pytestmark = pytest.mark.anyio
WAIT = 30.0  # seconds; a safety net, never reached when things work


@pytest.fixture
def rig(tmp_path: Path, tap_env: TapDevice) -> Iterator[PlayerRig]:
    library = build_library(tmp_path / "music")
    for track in TRACKS[:2]:  # Café Del Mar (with lyrics) and the song after it: long enough to pause in
        write_song(library.root, dataclasses.replace(track, seconds=20.0))
    hello = (REPO / "plugins" / "hello-rpc" / "plugin.yaml").read_text()
    import yaml

    doc = yaml.safe_load(hello)
    doc["spec"]["restartPolicy"] = {"policy": "Never"}  # a killed plugin stays down for the view to show
    plugins = tmp_path / "extra-plugins"
    yield from start_rig(tmp_path, tap_env, library=library, pacing="auto", plugin_paths=[plugins],
                         extra_manifests=[doc, hung_plugin(plugins)], player_yaml="searchTimeout: 3\n")


async def until(pilot: Pilot[Any], what: str, check: Callable[[], Any]) -> Any:
    """Let the app run until ``check()`` is truthy; its value."""
    with anyio.fail_after(WAIT, reason=what):
        while True:
            value = check()
            if value:
                return value
            await pilot.pause(0.02)
    raise AssertionError(what)  # pragma: no cover


def player(rig: PlayerRig) -> PlayerView:
    return rig.call(rig.player.state)  # type: ignore[no-any-return]


def table_text(app: MfxTui, selector: str) -> list[list[str]]:
    table = app.query_one(selector, Listing)
    return [[str(cell) for cell in table.get_row_at(row)] for row in range(table.row_count)]


async def test_search_play_pause_next_volume_and_lyrics_follow_the_player(rig: PlayerRig) -> None:
    app = MfxTui(Connection(socket=rig.home / "mfx.sock"))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, "local-music in the plugin list", lambda: "local-music" in app.plugins.objects)
        await pilot.press("slash", *"cafe")  # no accent: "Café Del Mar" must still match
        rows = await until(pilot, "search results", lambda: [r for r in table_text(app, "#search-results")
                                                              if r[0] == "Café Del Mar"] and
                           table_text(app, "#search-results"))
        # local-music's answer is shown while the source that never answers is marked slow.
        await until(pilot, "the hung source marked slow", lambda: "hung-source: slow…" in str(
            app.query_one("#search-sources").render()) and table_text(app, "#search-results"))
        await pilot.press("down")  # from the input to the results (Enter does it too)
        row = [r[0] for r in rows].index("Café Del Mar")
        await pilot.press(*["j"] * row, "l")  # vim keys: down to the song, open (play) it
        view = await until(pilot, "Café Del Mar playing", lambda: (v := player(rig)).status == "playing"
                           and v.current is not None and v.current.title == "Café Del Mar" and v)
        first_id = view.current.id  # type: ignore[union-attr]

        await pilot.press("space")
        await until(pilot, "paused by space", lambda: player(rig).status == "paused")

        # The lyric line whose timestamp is current is the one highlighted, with its translation.
        pane = app.query_one("#lyrics", LyricsPane)
        for seconds, line in ((1.6, "First line"), (3.2, "Chorus"), (0.2, "Intro")):
            rig.call(rig.player.seek, seconds)
            await until(pilot, f"{line} highlighted", lambda line=line: pane.current_text() == line)
            current = [w for w in pane.query(".lyric") if w.has_class("current")]
            assert len(current) == 1 and line in str(current[0].render())
        assert "第一行" in str(list(pane.query(".lyric"))[1].render())

        await pilot.press("space")
        await until(pilot, "playing again", lambda: player(rig).status == "playing")

        await pilot.press("right_square_bracket")
        await until(pilot, "next song", lambda: (v := player(rig)).current is not None and v.current.id != first_id)

        # The queue view, with the mouse: a click selects the first song, a second plays it.
        await pilot.press("4")
        await until(pilot, "the queue shown", lambda: len(table_text(app, "#queue-list")) >= 2)
        await pilot.click("#queue-list", offset=(4, 1))
        await pilot.click("#queue-list", offset=(4, 1))
        await until(pilot, "back to the first song", lambda: (v := player(rig)).current is not None
                    and v.current.id == first_id and v.status == "playing")
        # Remove the second song with d, then move the (new) second one up with K.
        queue = [song.id for song in player(rig).queue]
        assert len(queue) >= 3, queue
        await pilot.press("j", "d")
        await until(pilot, "second song removed", lambda: [s.id for s in player(rig).queue] == queue[:1] + queue[2:])
        await until(pilot, "the list follows", lambda: len(table_text(app, "#queue-list")) == len(queue) - 1)
        await pilot.press("K")
        await until(pilot, "moved up", lambda: [s.id for s in player(rig).queue][:2] == [queue[2], queue[0]])

        rig.call(rig.player.set_volume, 50)
        await until(pilot, "volume 50 on screen", lambda: app.clock.state.get("volume") == 50)
        await pilot.press("equals_sign")
        await until(pilot, "volume up by 5", lambda: player(rig).volume == 55)
        await until(pilot, "the now line shows it", lambda: "vol 55" in str(app.query_one("#nowline").render()))

        # Library: Artists, then one artist's songs.
        await pilot.press("1", "enter")
        artists = await until(pilot, "the artists", lambda: "Beyoncé" in (
            n := [r[0] for r in table_text(app, "#library Listing")]) and n)
        await pilot.press(*["j"] * artists.index("Beyoncé"), "enter")
        await until(pilot, "Beyoncé's songs", lambda: sorted(r[0] for r in table_text(app, "#library Listing"))
                    == ["Crazy in Love", "Naughty Girl"])

        # Playlists: the list, Enter opens one, Esc comes back.
        await pilot.press("2")
        names = await until(pilot, "the playlists", lambda: "Mañana Mix" in (
            n := [r[0] for r in table_text(app, "#playlists Listing")]) and n)
        await pilot.press(*["j"] * names.index("Mañana Mix"), "enter")
        await until(pilot, "its songs",
                    lambda: [r[0] for r in table_text(app, "#playlists Listing")] == ["Mar", "Marbles"])
        await pilot.press("escape")
        await until(pilot, "back to the list",
                    lambda: "Mañana Mix" in [r[0] for r in table_text(app, "#playlists Listing")])


async def test_the_plugins_view_follows_the_watch_and_sends_the_cli_patches(rig: PlayerRig) -> None:
    app = MfxTui(Connection(socket=rig.home / "mfx.sock"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")

        def hello_row() -> list[str] | None:
            return next((r for r in table_text(app, "#plugin-list") if r[0] == "hello-rpc"), None)

        await until(pilot, "hello-rpc Ready", lambda: (r := hello_row()) and r[2] == "True")
        pid = app.plugins.objects["hello-rpc"]["status"]["runtime"]["pid"]
        os.kill(pid, signal.SIGKILL)
        row = await until(pilot, "hello-rpc not Ready, no key pressed",
                          lambda: (r := hello_row()) and r[2] != "True" and r)
        assert row[2].startswith("False")

        names = [r[0] for r in table_text(app, "#plugin-list")]
        app.query_one("#plugin-list", Listing).move_cursor(row=names.index("hello-rpc"))
        await pilot.press("enter")
        await until(pilot, "conditions shown", lambda: "Ready" in str(app.query_one("#plugin-conditions").render()))
        await until(pilot, "the crash among the recent events",
                    lambda: "Warning" in str(app.query_one("#plugin-events").render()))
        await pilot.press("r")
        await until(pilot, "restart stamp on the object", lambda: "mfx.musicfox.io/restartedAt" in (
            app.plugins.objects["hello-rpc"]["metadata"].get("annotations") or {}))
        await pilot.press("s")
        await until(pilot, "suspended", lambda: app.plugins.objects["hello-rpc"]["spec"].get("suspend") is True)
        await until(pilot, "the row says so", lambda: (r := hello_row()) and r[5] == "yes")
