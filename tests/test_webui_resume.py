"""The web UI's live stream, cut and restored, in a real Chromium: the page catches up with
what changed while it was cut off, without a reload, resuming its watch from the
resourceVersion it had reached; and when that version is compacted away (the watch answers
410), it lists again and shows the state as it is.

The stream is cut by stopping the daemon; the changes are made meanwhile by another daemon
on the same home (through the API, as a user would); the UI then comes back on the same
address, as ``mfx serve --ui-address`` restarted would.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest

from mfx.server.daemon import DaemonConfig
from mfx.store.sqlite import SQLiteStore
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import apply, manifest
from tests.webui_env import chromium, new_page, screenshot, ui_daemon, ui_url

pytestmark = pytest.mark.slow
TIMEOUT = 20_000  # ms; a guard against a hang, not a speed target


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def wait_nodes(page: Any, names: list[str]) -> None:
    page.wait_for_function("(want) => JSON.stringify(window.mfx.cy.nodes().map(n => n.id()).sort()) === JSON.stringify(want)",
                           arg=sorted(names), timeout=TIMEOUT)


def open_page(browser: Any, home: Path) -> Any:
    page = new_page(browser, ui_url(home))
    wait_nodes(page, ["a", "b", "c"])
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    return page


def serve(home: Path, address: str) -> ThreadDaemon:
    return ui_daemon(home, address=address, services=[])  # the API and the UI, no controllers


def change_offline(home: Path) -> None:
    """What changes while the page is cut off, made through another daemon's API: c is deleted,
    d appears, a gets a new version."""
    with ThreadDaemon(home, services=[]).running():
        apply(home, manifest("d", deps=["a"]), manifest("a", version="2.0.0"))
        result = run_cli(home, "delete", "pm", "c")
        assert result.exit_code == 0, result.output


def page_cut_off(browser: Any, home: Path, address: str) -> Any:
    """A page showing a, b and c whose daemon stops: it says it is reconnecting, and the
    store changes meanwhile (``change_offline``)."""
    with serve(home, address).running():
        apply(home, manifest("a"), manifest("b"), manifest("c"))
        page = open_page(browser, home)
    page.wait_for_selector("#connection:text('reconnecting')", timeout=TIMEOUT)
    change_offline(home)
    return page


def test_a_page_cut_off_catches_up_from_its_resource_version_without_a_reload(browser: Any, tmp_path: Path) -> None:
    home, address = tmp_path / "home", free_address()
    page = page_cut_off(browser, home, address)

    with serve(home, address).running():
        wait_nodes(page, ["a", "b", "d"])
        page.wait_for_selector("#connection:text('live')", timeout=TIMEOUT)
        assert page.evaluate("window.mfx.plugins.get('a').spec.version") == "2.0.0"
        assert page.evaluate("window.mfx.cy.getElementById('d->a').nonempty()")
        assert page.evaluate("window.loadedOnce") is True
        assert page.evaluate("document.body.dataset.graphLists") == "1"  # resumed: not listed again
        screenshot(page, "graph-resumed")
        page.close()


def compact(home: Path) -> None:
    """Keep only the newest change in the store's log (one write with a history of one), so
    every older resourceVersion is gone, as after a long time cut off."""
    async def trim() -> None:
        async with SQLiteStore(DaemonConfig(home=home).database_path, history_limit=1) as store:
            await store.delete("PluginManifest", "b")

    with ThreadPoolExecutor(1) as pool:  # this thread runs Playwright's event loop
        pool.submit(anyio.run, trim).result()


def test_a_page_whose_resource_version_was_compacted_lists_again_and_shows_the_state_now(
        browser: Any, tmp_path: Path) -> None:
    home, address = tmp_path / "home", free_address()
    page = page_cut_off(browser, home, address)
    compact(home)

    with serve(home, address).running():
        # The watch from the page's resourceVersion answers 410: the UI lists again.
        page.wait_for_function("() => document.body.dataset.graphLists === '2'", timeout=TIMEOUT)
        wait_nodes(page, ["a", "d"])
        assert page.evaluate("window.mfx.plugins.get('a').spec.version") == "2.0.0"
        assert page.evaluate("document.querySelectorAll('#plugin-list li').length") == 2
        assert page.evaluate("window.loadedOnce") is True
        page.close()
