"""A hot_reload UIExtension in ``mfx tui``: its panel, keys and themes; an edit of its file
changes the panel while the TUI runs; a broken edit keeps the old panel and the status line
says ``ReloadFailed`` and why. A real daemon, the real hello-hot plugin copied to a temporary
plugin path, textual's pilot."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from textual.pilot import Pilot

from mfx.server.player_api import make_player_service
from mfx.server.services import controllers_service
from mfx.tui.app import MfxTui
from mfx.tui.client import Connection
from tests.daemon_harness import REPO, ThreadDaemon, run_cli

pytestmark = pytest.mark.anyio
WAIT = 30.0  # seconds; a safety net, never reached when things work
RENDER_LINE = 'line = f"{symbol} {what}  {times}  {volume}"'


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    home = tmp_path / "home"
    home.mkdir()
    plugin_path = tmp_path / "plugin-path"
    shutil.copytree(REPO / "plugins" / "hello-hot", plugin_path / "hello-hot",
                    ignore=shutil.ignore_patterns("__pycache__"))
    with ThreadDaemon(home, services=[controllers_service, make_player_service()],
                      plugin_paths=[plugin_path]).running():
        result = run_cli(home, "apply", "-f", str(plugin_path / "hello-hot" / "plugin.yaml"))
        assert result.exit_code == 0, result.output
        result = run_cli(home, "wait", "--for=condition=Ready", "pm/hello-hot", "--timeout=60s")
        assert result.exit_code == 0, result.output
        yield home, plugin_path / "hello-hot" / "hello_hot" / "plugin.py"


def save_like_an_editor(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.swp")
    temp.write_text(text)
    os.replace(temp, path)


async def until(pilot: Pilot[Any], what: str, check: Callable[[], Any]) -> Any:
    with anyio.fail_after(WAIT, reason=what):
        while not (value := check()):
            await pilot.pause(0.02)
    return value


async def test_an_edited_panel_changes_and_a_broken_edit_keeps_the_old_one(daemon: tuple[Path, Path]) -> None:
    home, source = daemon
    assert yaml.safe_load((source.parents[1] / "plugin.yaml").read_text())["spec"]["type"] == "hot_reload"
    app = MfxTui(Connection(socket=home / "mfx.sock"))
    async with app.run_test(size=(120, 40)) as pilot:
        def panel() -> str:
            found = list(app.query("#ext-hello-hot"))
            return str(found[0].render()) if found else ""

        await until(pilot, "the hello-hot panel", lambda: "nothing playing" in panel())
        assert app.query_one("#ext-hello-hot").parent.id == "region-bottom"  # type: ignore[union-attr]
        assert app.extensions["hello-hot"].keys == ["ctrl+n", "ctrl+b", "ctrl+s"]
        await pilot.press("question_mark")  # the key map lists the plugin's keys too
        await until(pilot, "plugin keys in the key map",
                    lambda: "ctrl+n, ctrl+b, ctrl+s  (hello-hot)" in str(app.query_one("#help").render()))
        await pilot.press("escape")

        # Its keys reach the player through its handle_input: ctrl+s is "mode:shuffle".
        await pilot.press("ctrl+s")
        await until(pilot, "shuffle from the plugin's key", lambda: app.clock.state.get("mode") == "shuffle")

        # Its themes are picked with t, after textual's own two.
        await pilot.press("t", "t")
        assert app.theme == "hello-dusk"
        assert app.current_theme.primary.lower() == "#e07a5f"

        text = source.read_text()
        save_like_an_editor(source, text.replace(RENDER_LINE, 'line = f"EDITED {symbol} {what}"'))
        await until(pilot, "the edited panel", lambda: "EDITED ■ nothing playing" in panel())
        shown = run_cli(home, "get", "pm/hello-hot", "-o", "jsonpath={.status.runtime.generation}")
        assert shown.output.strip() == "2", shown.output  # the object says which version serves

        broken = text.replace("def render(self, state: Mapping[str, Any]) -> str:", "def render(self, state")
        save_like_an_editor(source, broken)
        status = await until(pilot, "ReloadFailed in the status line",
                             lambda: "ReloadFailed" in (s := str(app.query_one("#status").render())) and s)
        assert "hello-hot" in status and "SyntaxError" in status
        assert "EDITED ■ nothing playing" in panel()  # the old version still renders

        save_like_an_editor(source, text)  # fixed: the original panel, and the warning goes
        await until(pilot, "the fixed panel", lambda: "EDITED" not in panel() and "nothing playing" in panel())
        await until(pilot, "no ReloadFailed", lambda: "ReloadFailed" not in str(app.query_one("#status").render()))
