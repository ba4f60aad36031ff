"""The web UI's player and sinks pages in a real Chromium, against a real daemon playing
into an ALSA file tap: clicking play in the page changes what ``mfx now`` prints, and a
UIExtension's keys pressed on the page change the player as they do in ``mfx tui``."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.api.music import PlayerStatus
from mfx.webui.listener import ui_listener
from tests.audio_env import TapDevice
from tests.music_fixtures import TRACKS, build_library, write_song
from tests.player_env import PlayerRig, start_rig, tap_env  # noqa: F401 (fixture)
from tests.webui_env import chromium, new_page, screenshot, ui_url

pytestmark = pytest.mark.slow
TIMEOUT = 30_000  # ms; a guard against a hang, not a speed target

KEYS_PANEL = '''
    from mfx.sdk.music import UIExtension
    from mfx.sdk.plugin import PluginInfo


    class Keys(UIExtension):
        info = PluginInfo(name="keys-panel", version="0.1.0", description="Volume keys.",
                          interfaces=("UIExtension",))

        def render(self, state):
            return f"volume {state.get('volume')} at {int(state.get('positionSeconds') or 0)}s"

        def layout(self):
            return {"regions": [{"name": "top", "rows": 1, "title": "Volume keys"}]}

        def keys(self):
            return ["equals_sign", "minus", "x"]

        def handle_input(self, key):
            return {"equals_sign": "volume:+5", "minus": "volume:-5"}.get(key)
    '''


@pytest.fixture
def rig(tmp_path: Path, tap_env: TapDevice) -> Iterator[PlayerRig]:  # noqa: F811
    library = build_library(tmp_path / "music")
    # Long enough to be playing while the page is looked at; paced by the clock like a card.
    write_song(library.root, dataclasses.replace(TRACKS[0], seconds=20.0))
    plugins = tmp_path / "ui-plugins"
    (plugins / "keys-panel" / "keys_panel").mkdir(parents=True)
    (plugins / "keys-panel" / "keys_panel" / "__init__.py").write_text("")
    (plugins / "keys-panel" / "keys_panel" / "plugin.py").write_text(textwrap.dedent(KEYS_PANEL))
    panel = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "keys-panel"},
             "spec": {"version": "0.1.0", "type": "dynamic_library", "entryPoint": "python:keys_panel.plugin:Keys",
                      "interfaces": ["UIExtension"]}}
    yield from start_rig(tmp_path, tap_env, library=library, pacing="auto", plugin_paths=[plugins],
                         extra_manifests=[panel], extra_listeners=[ui_listener("127.0.0.1:0")])


def test_clicking_play_in_the_page_changes_what_mfx_now_prints(rig: PlayerRig) -> None:
    before = rig.cli("now").output
    assert "Café Del Mar" not in before
    with chromium() as browser:
        page = new_page(browser, ui_url(rig.home) + "#player")
        page.fill("#search-box", "Café Del Mar")
        page.click("#search-form button[type=submit]")
        song = page.locator("#search-results li", has_text="Café Del Mar").first
        song.locator(".play-song").click()

        page.wait_for_selector("#now-status:text('playing')", timeout=TIMEOUT)
        assert page.text_content("#now-title") == "Café Del Mar"
        now = rig.cli("now").output
        assert "Café Del Mar - Energy 52" in now, now
        assert rig.player.state().status is PlayerStatus.PLAYING
        # Karaoke: the line sung now is highlighted, and it moves on with the clock.
        page.wait_for_selector(".lyric.current:text('First line')", timeout=TIMEOUT)
        # A panel that shows the position is rendered again as the song plays on, with no
        # change of the player's state to prompt it.
        version = rig.player.state().version
        page.wait_for_selector('[data-panel="keys-panel"] .panel-text:text("at 2s")', timeout=TIMEOUT)
        assert rig.player.state().version == version
        assert "Café Del Mar" in page.text_content("#queue")
        screenshot(page, "player")

        page.click("#btn-play")  # playing: the button pauses
        page.wait_for_selector("#now-status:text('paused')", timeout=TIMEOUT)
        rig.wait(lambda view: view.status is PlayerStatus.PAUSED)
        assert "paused" in rig.cli("now").output.lower()

        page.goto(ui_url(rig.home) + "#sinks")
        page.wait_for_selector('#sink-rows tr[data-sink="tap"]', timeout=TIMEOUT)
        assert "True" in page.text_content('#sink-rows tr[data-sink="tap"]')
        screenshot(page, "sinks")
        assert page.console_errors == []
        page.click("a[data-page=player]")
        page.click("#btn-stop")
        rig.wait(lambda view: view.status is PlayerStatus.STOPPED)


def test_an_extensions_keys_pressed_on_the_page_act_on_the_player_but_not_while_typing(rig: PlayerRig) -> None:
    with chromium() as browser:
        page = new_page(browser, ui_url(rig.home) + "#player")
        panel = '#panels-top [data-panel="keys-panel"]'  # its layout() asks for the top region
        page.wait_for_selector(f"{panel} .panel-text", timeout=TIMEOUT)
        assert page.is_hidden("#panels-right") and page.is_hidden("#panels-bottom")
        before = rig.player.state().volume
        assert before >= 5
        page.focus("#search-box")
        page.keyboard.press("Minus")  # typed into the search box: not a key for the panel
        assert page.input_value("#search-box") == "-"
        page.click("#now-title")  # out of the box: the same key now goes to the extension
        page.keyboard.press("Minus")
        rig.wait(lambda view: view.volume == before - 5)
        page.wait_for_function("() => document.body.dataset.lastKey === 'keys-panel minus volume:-5'", timeout=TIMEOUT)
        page.keyboard.press("x")  # bound, but handle_input answers None: nothing happens
        page.wait_for_function("() => document.body.dataset.lastKey === 'keys-panel x none'", timeout=TIMEOUT)
        page.keyboard.press("Equal")
        rig.wait(lambda view: view.volume == before)
        page.wait_for_selector(f"{panel} .panel-text:text('volume {before}')", timeout=TIMEOUT)
        screenshot(page, "panel-keys")
        assert page.console_errors == []
