"""The web UI's plugin page in a real Chromium: the dependency graph drawn live from the
API's watch, a node's details, the health sparklines, and UIExtension panels that follow a
hot reload; and the stream resuming from its resourceVersion."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import add_plugin_dir, apply, manifest, plugin_root, wait_ready
from tests.webui_env import chromium, new_page, screenshot, ui_daemon, ui_url

pytestmark = pytest.mark.slow
TIMEOUT = 20_000  # ms; a guard against a hang, not a speed target
FAST_HEALTH = {"interval": "100ms", "timeout": "1s", "failureThreshold": 3}

PANEL = '''
    from mfx.sdk.music import UIExtension
    from mfx.sdk.plugin import PluginInfo


    class Panel(UIExtension):
        info = PluginInfo(name="web-panel", version="0.1.0", description="A test panel.",
                          interfaces=("UIExtension",))

        def render(self, state):
            return "{word} " + str(state.get("status", "no player"))

        def handle_input(self, key):
            return None

        def layout(self):
            return {{"regions": [{{"name": "{region}", "rows": 30, "title": "Web panel"}}]}}

        def themes(self):
            return ["paper"]

        def theme(self, name):
            return {{"primary": "#aa2200", "background": "#fdf6e3", "foreground": "#222222",
                    "surface": "#eee8d5", "panel": "#e0dac8", "dark": False}}
    '''


def write_panel(directory: Path, word: str, region: str = "right") -> None:
    package = directory / "web_panel"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    temp = package / ".plugin.py.swp"  # saved the way an editor does: a rename over the file
    temp.write_text(textwrap.dedent(PANEL).format(word=word, region=region))
    os.replace(temp, package / "plugin.py")


def panel_manifest() -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "web-panel"},
            "spec": {"version": "0.1.0", "type": "hot_reload", "entryPoint": "python:web_panel.plugin:Panel",
                     "interfaces": ["UIExtension"], "config": {}}}


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadDaemon, Path]]:
    base = tmp_path_factory.mktemp("webui")
    root = plugin_root(base, "db", "api", "frontend", "cache", "late")
    write_panel(add_plugin_dir(root, "web-panel"), "first")
    daemon = ui_daemon(base / "home", plugin_paths=[root])
    with daemon.running():
        home = daemon.config.home
        apply(home, manifest("db", healthCheck=FAST_HEALTH), manifest("api", deps=["db"], healthCheck=FAST_HEALTH),
              manifest("frontend", deps=["api"]), manifest("cache", deps=["db"]), panel_manifest())
        wait_ready(home, "db", "api", "frontend", "cache", "web-panel")
        yield daemon, root


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def state_of(page: Any, name: str) -> str | None:
    return page.get_attribute(f'[data-plugin="{name}"]', "data-state")  # type: ignore[no-any-return]


def wait_state(page: Any, name: str, state: str) -> None:
    page.wait_for_selector(f'#plugin-list [data-plugin="{name}"][data-state="{state}"]', state="attached", timeout=TIMEOUT)
    page.wait_for_function("([n, s]) => window.mfx.cy.getElementById(n).data('state') === s", arg=[name, state],
                           timeout=TIMEOUT)


def test_the_graph_shows_every_plugin_and_follows_changes_without_a_reload(ui: tuple[ThreadDaemon, Path], browser: Any) -> None:
    daemon, _ = ui
    home = daemon.config.home
    page = new_page(browser, ui_url(home))
    for name in ("db", "api", "frontend", "cache", "web-panel"):
        wait_state(page, name, "Ready")
    assert page.evaluate("window.mfx.cy.edges().map(e => e.id()).sort()") == [
        "api->db", "cache->db", "frontend->api"]
    # The highlighted chain is the one 'mfx analyze critical-chain' prints.
    printed = run_cli(home, "analyze", "critical-chain").output
    expected = [line.split("pm/")[1].split()[0] for line in printed.splitlines() if "pm/" in line]
    page.wait_for_function("(want) => JSON.stringify(window.mfx.chain()) === JSON.stringify(want)", arg=expected,
                           timeout=TIMEOUT)
    assert sorted(page.evaluate("window.mfx.cy.nodes('.chain').map(n => n.id())")) == sorted(expected)
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    # A change that adds or removes no dependency restyles its node and moves nothing.
    where = "() => JSON.stringify(window.mfx.cy.nodes().map(n => [n.id(), n.position()]))"
    before = page.evaluate(where)
    apply(home, manifest("frontend", deps=["api"], version="1.0.1"))
    page.wait_for_function("() => window.mfx.plugins.get('frontend').spec.version === '1.0.1'", timeout=TIMEOUT)
    wait_state(page, "frontend", "Ready")
    assert page.evaluate(where) == before

    apply(home, manifest("late", deps=["cache"]))
    page.wait_for_function("() => window.mfx.cy.getElementById('late').nonempty()", timeout=TIMEOUT)
    wait_state(page, "late", "Ready")
    assert page.evaluate("window.mfx.cy.getElementById('late->cache').nonempty()")

    result = run_cli(home, "delete", "pm", "cache")
    assert result.exit_code == 0, result.output
    wait_state(page, "late", "NotReady")
    page.wait_for_function("() => window.mfx.cy.getElementById('cache').data('state') === 'Missing'", timeout=TIMEOUT)
    assert page.evaluate("window.loadedOnce") is True
    screenshot(page, "graph")
    assert page.console_errors == []  # no CSP violation, no script error
    apply(home, manifest("cache", deps=["db"]))
    wait_state(page, "late", "Ready")
    page.close()


def test_clicking_a_node_shows_its_conditions_events_and_live_log(ui: tuple[ThreadDaemon, Path], browser: Any) -> None:
    daemon, root = ui
    page = new_page(browser, ui_url(daemon.config.home))
    wait_state(page, "web-panel", "Ready")
    box = page.locator("#graph").bounding_box()
    at = page.evaluate("window.mfx.cy.getElementById('web-panel').renderedPosition()")
    page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])  # a real click on the canvas
    page.wait_for_selector("#detail-conditions tr[data-condition='Ready']", timeout=TIMEOUT)
    assert page.text_content("#detail-title") == "web-panel"
    assert "True" in page.text_content("#detail-conditions tr[data-condition='Ready']")
    page.wait_for_selector("#detail-events li", timeout=TIMEOUT)
    write_panel(root / "web-panel", "clicked")  # a reload: its runtime writes a line to the log
    page.wait_for_function("() => document.getElementById('detail-log').textContent.includes('reloaded')",
                           timeout=TIMEOUT)
    screenshot(page, "graph-detail")
    page.close()


def test_health_sparklines_come_from_the_scraped_metrics(ui: tuple[ThreadDaemon, Path], browser: Any) -> None:
    daemon, _ = ui
    page = new_page(browser, ui_url(daemon.config.home) + "#health")
    card = '.spark[data-plugin="api"] .spark-value'
    page.wait_for_function(f"() => (document.querySelector('{card}') || {{}}).textContent?.includes(' ms')", timeout=TIMEOUT)
    page.wait_for_function("() => document.querySelectorAll('.spark[data-plugin=\"api\"] canvas').length > 0", timeout=TIMEOUT)
    screenshot(page, "health")
    page.close()


def test_an_extension_panel_sits_where_its_layout_says_follows_its_hot_reload_and_offers_its_themes(ui: tuple[ThreadDaemon, Path], browser: Any) -> None:
    daemon, root = ui
    page = new_page(browser, ui_url(daemon.config.home))
    panel = '[data-panel="web-panel"]'
    page.wait_for_selector(f"#panels-right {panel} .panel-text", timeout=TIMEOUT)  # where its layout() says
    assert page.text_content(f"{panel} h3") == "Web panel"
    before = page.text_content(f"{panel} .panel-text")
    assert before.split()[0] in ("first", "clicked")
    page.evaluate("window.loadedOnce = true")

    write_panel(root / "web-panel", "second", region="top")  # the hot_reload runtime swaps it in
    page.wait_for_function(f"() => document.querySelector('{panel} .panel-text').textContent.startsWith('second ')",
                           timeout=TIMEOUT)
    page.wait_for_selector(f"#panels-top {panel}", timeout=TIMEOUT)  # the new layout() moved it
    assert page.is_hidden("#panels-right")
    assert page.evaluate("window.loadedOnce") is True

    page.select_option("#theme-select", "web-panel/paper")
    page.wait_for_function("() => getComputedStyle(document.documentElement).getPropertyValue('--background').trim() === '#fdf6e3'",
                           timeout=TIMEOUT)
    screenshot(page, "panel-theme")
    page.evaluate("localStorage.clear()")
    page.close()


def test_a_lost_stream_resumes_from_its_resource_version(ui: tuple[ThreadDaemon, Path]) -> None:
    daemon, _ = ui
    home = daemon.config.home
    url = ui_url(home) + "ui/stream?topics=plugins"
    with httpx.Client(timeout=30) as client:
        with client.stream("GET", url) as response:
            lines = response.iter_lines()
            ident = next(line for line in lines if line.startswith("id: "))[4:]
        assert ident.startswith("plugins=")
        apply(home, manifest("db", version="1.0.1", healthCheck=FAST_HEALTH))
        with client.stream("GET", url, headers={"Last-Event-ID": ident}) as response:
            seen = []
            for line in response.iter_lines():
                seen.append(line)
                if line.startswith("data: ") and '"db"' in line and "1.0.1" in line:
                    break
    events = [line for line in seen if line.startswith("event: ")]
    assert "event: plugins.list" not in events  # resumed, not listed again
    assert events[-1] == "event: plugins.change"
