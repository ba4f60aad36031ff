"""``mfx tui`` outlives its daemon: when the daemon stops the status line says it cannot
reach it and is retrying; when a daemon is back on the same socket the TUI reconnects, says so, and shows
the new daemon's state. While it shuts down, the answers its watches still bring in are
dropped, not shown on screens already gone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from textual.pilot import Pilot

from mfx.server.player_api import make_player_service
from mfx.server.services import controllers_service
from mfx.tui.app import MfxTui
from mfx.tui.client import Connection
from tests.daemon_harness import ThreadDaemon

pytestmark = pytest.mark.anyio
WAIT = 30.0  # seconds; a safety net, never reached when things work


async def until(pilot: Pilot[Any], what: str, check: Callable[[], Any]) -> Any:
    with anyio.fail_after(WAIT, reason=what):
        while not (value := check()):
            await pilot.pause(0.02)
    return value


def daemon(home: Path) -> ThreadDaemon:
    return ThreadDaemon(home, services=[controllers_service, make_player_service()])


async def test_the_tui_reconnects_after_a_daemon_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    first = daemon(home)
    running = first.running()
    running.__enter__()
    try:
        app = MfxTui(Connection(socket=home / "mfx.sock"))
        async with app.run_test(size=(120, 40)) as pilot:
            def status() -> str:
                return str(app.query_one("#status").render())

            await until(pilot, "first state", lambda: "volume" in app.clock.state)
            for volume in range(30, 41):  # many changes: the first daemon's state version runs ahead
                first.call(first.context.player.set_volume, volume)  # type: ignore[union-attr]
            await until(pilot, "volume 40", lambda: app.clock.state.get("volume") == 40)

            running.__exit__(None, None, None)
            running = None
            await until(pilot, "retrying in the status line",
                        lambda: "cannot reach the mfx daemon" in status() and "retrying" in status())

            second = daemon(home)
            with second.running():
                await until(pilot, "reconnected in the status line", lambda: "reconnected to" in status())
                # A new daemon's player counts its versions from the start: the screen follows it.
                second.call(second.context.player.set_volume, 70)  # type: ignore[union-attr]
                await until(pilot, "the new daemon's state",
                            lambda: "vol 70" in str(app.query_one("#nowline").render()))
    finally:
        if running is not None:
            running.__exit__(None, None, None)


async def test_answers_that_arrive_while_the_tui_shuts_down_are_dropped(tmp_path: Path) -> None:
    # No daemon: the watches only retry, so no read is in flight when textual cancels them
    # (such a read can meet anyio's own race on unix sockets, not what this test is about).
    app = MfxTui(Connection(socket=tmp_path / "nobody" / "mfx.sock"))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, "retrying in the status line", lambda: "retrying" in str(app.query_one("#status").render()))
    # The screens went first; a watch still running then brings in its last answers (a
    # refused request, a state, a plugin change) before it is cancelled. Each is dropped:
    # none may end the TUI with "No nodes match '#status'".
    assert app.closing
    app._link("player")(False, "cannot reach the mfx daemon")
    app._link("player")(True, "")
    app.on_state({"status": "playing", "version": 7, "volume": 40, "positionSeconds": 1.0})
    app.on_plugins()
    app.say("lyrics: the daemon went away")
    app.tick()
