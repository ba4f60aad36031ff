"""A real daemon serving the web UI, and one headless Chromium per test module.

``ui_daemon(home, ...)`` runs ``mfx serve`` in a thread with the UI listener on
``--ui-address`` (loopback unless told otherwise); ``chromium()`` launches Debian's Chromium
through Playwright. Screenshots go to build/artifacts/webui/.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mfx.server.services import controllers_service
from mfx.webui.listener import ui_listener
from tests.daemon_harness import REPO, ThreadDaemon

ARTIFACTS = REPO / "build" / "artifacts" / "webui"
CHROMIUM = "/usr/bin/chromium"


def ui_daemon(home: Path, *, address: str = "127.0.0.1:0", services: list[Any] | None = None,
              plugin_paths: list[Path] | None = None, health_interval: float = 0.25) -> ThreadDaemon:
    return ThreadDaemon(home, services=services if services is not None else [controllers_service],
                        plugin_paths=plugin_paths or [],
                        extra_listeners=[ui_listener(address, health_interval=health_interval)])


def ui_url(home: Path) -> str:
    return f"http://{(home / 'ui-address').read_text().strip()}/"


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, url: str) -> Any:
    """A page at ``url`` that records what the browser console reports as errors (a CSP
    violation is one)."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    page.goto(url)
    return page


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
