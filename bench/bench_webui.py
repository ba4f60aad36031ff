"""The web UI in a real Chromium: how soon a change shows, and the first load of a big graph.

1. Object change -> the page showing it: a PluginManifest's spec is patched over the API (50,
   then 500 plugins in the graph) and the time until the page has drawn that resourceVersion
   (``window.mfx.renderedAt``, the browser's clock) is measured from the patch, p50/p99 over
   100 changes; the baseline is the same change reaching a plain API client's watch (the unix
   socket, one JSON line per event), measured from the same patch. Target: ratio <= 2.
2. First page load with 500 plugins: navigation -> graph drawn (listed, laid out by dagre,
   drawn by cytoscape), against a plain API client listing the same 500 plugins; and the
   part of it the layout takes.

The daemon runs without controllers: only the API, the store and the UI server, so every
change measured is the patch itself.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import Figure, percentile

CHANGES = 100  # p99 of 40 would be the single slowest change
SMALL = 50
LARGE = 500
PLUGINS = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"


def _manifests(count: int) -> str:
    import yaml

    docs = []
    for i in range(count):
        spec: dict[str, Any] = {"version": "1.0.0", "type": "dynamic_library", "entryPoint": "python:bench.none:Plugin"}
        if i:
            spec["dependencies"] = [{"name": f"p{(i - 1) // 3:03d}"}]  # a tree, three children each
        docs.append({"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
                     "metadata": {"name": f"p{i:03d}"}, "spec": spec})
    return yaml.safe_dump_all(docs)


class Watcher:
    """A plain API client's watch: when each resourceVersion arrived."""

    def __init__(self, socket: Path, since: str) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = threading.Condition()
        self._client = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), base_url="http://mfx",
                                    timeout=httpx.Timeout(30, read=None))
        self._since = since
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        params = {"watch": "true", "resourceVersion": self._since}
        try:
            with self._client.stream("GET", PLUGINS, params=params) as response:
                for line in response.iter_lines():
                    if not line:
                        continue
                    now = time.time()
                    event = orjson.loads(line)
                    rv = str(event.get("object", {}).get("metadata", {}).get("resourceVersion"))
                    with self.changed:
                        self.arrived[rv] = now
                        self.changed.notify_all()
        except httpx.HTTPError:
            return  # the daemon stopped

    def wait(self, rv: str, timeout: float = 30.0) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: rv in self.arrived, timeout):
                raise TimeoutError(f"the watch never delivered resourceVersion {rv}")
            return self.arrived[rv]

    def close(self) -> None:
        self._client.close()


def _daemon(home: Path) -> Any:
    from mfx.webui.listener import ui_listener
    from tests.daemon_harness import ThreadDaemon

    return ThreadDaemon(home, services=[], extra_listeners=[ui_listener("127.0.0.1:0", health_interval=5.0)])


def _apply(home: Path, count: int) -> None:
    from tests.daemon_harness import run_cli

    result = run_cli(home, "apply", "-f", "-", input=_manifests(count))
    assert result.exit_code == 0, result.output


def _change_latency(browser: Any, root: Path, size: int) -> list[Figure]:
    from tests.webui_env import ui_url

    daemon = _daemon(root / f"changes-{size}")
    with daemon.running():
        home = daemon.config.home
        _apply(home, size)
        api = httpx.Client(transport=httpx.HTTPTransport(uds=str(daemon.socket)), base_url="http://mfx", timeout=30)
        listed = api.get(PLUGINS).json()
        watcher = Watcher(daemon.socket, listed["metadata"]["resourceVersion"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(ui_url(home))
        page.wait_for_function("() => document.body.dataset.graphDrawn !== undefined", timeout=60_000)
        page_ms: list[float] = []
        client_ms: list[float] = []
        for i in range(CHANGES):
            name = f"p{(i * 7) % size:03d}"
            started = time.time()
            answer = api.patch(f"{PLUGINS}/{name}", content=orjson.dumps({"spec": {"version": f"1.1.{i}"}}),
                               headers={"Content-Type": "application/merge-patch+json"})
            answer.raise_for_status()
            rv = str(answer.json()["metadata"]["resourceVersion"])
            client_ms.append(1000 * (watcher.wait(rv) - started))
            page.wait_for_function("([n, rv]) => (window.mfx.renderedAt[n] || {}).rv === rv", arg=[name, rv],
                                   timeout=30_000, polling="raf")
            shown = page.evaluate("(n) => window.mfx.renderedAt[n].t", name) / 1000
            page_ms.append(1000 * (shown - started))
        page.close()
        watcher.close()
        api.close()
    return [
        Figure(f"change -> page shows it, p50 ({size} plugins)", percentile(page_ms, 50), "ms",
               "the watch event reaching a plain API client, p50", percentile(client_ms, 50), "ratio <= 2"),
        Figure(f"change -> page shows it, p99 ({size} plugins)", percentile(page_ms, 99), "ms",
               "the watch event reaching a plain API client, p99", percentile(client_ms, 99), "ratio <= 2"),
    ]


def _first_load(browser: Any, root: Path) -> list[Figure]:
    from tests.webui_env import ui_url

    daemon = _daemon(root / "large")
    with daemon.running():
        home = daemon.config.home
        _apply(home, LARGE)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(daemon.socket)), base_url="http://mfx") as api:
            started = time.perf_counter()
            items = api.get(PLUGINS).json()["items"]
            list_ms = 1000 * (time.perf_counter() - started)
        assert len(items) == LARGE
        loads: list[float] = []
        layouts: list[float] = []
        for _ in range(3):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(ui_url(home))  # the clock in the page starts at this navigation
            page.wait_for_function("() => document.body.dataset.graphDrawn !== undefined", timeout=120_000)
            assert page.evaluate("() => window.mfx.cy.nodes().length") == LARGE
            loads.append(float(page.evaluate("() => Number(document.body.dataset.graphDrawn)")))
            # Where the time goes: the page measures its dagre layout (performance.measure).
            layouts.append(float(page.evaluate("() => performance.getEntriesByName('mfx:layout')[0].duration")))
            page.close()
    return [Figure(f"first page load -> graph drawn ({LARGE} plugins), median of 3", sorted(loads)[1], "ms",
                   f"a plain API client listing the {LARGE} plugins", list_ms),
            Figure(f"  of which the graph's layout (dagre, {LARGE} plugins), median of 3", sorted(layouts)[1], "ms")]


def run() -> list[Figure]:
    from tests.webui_env import chromium

    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        root = Path(tmp)
        return [*_change_latency(browser, root, SMALL), *_change_latency(browser, root, LARGE),
                *_first_load(browser, root)]
