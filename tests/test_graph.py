"""``mfx graph`` through the real CLI and daemon: valid Graphviz naming every plugin and every
dependency, states and the critical chain marked, SVG and PNG rendered by the real ``dot``, a
clear error without Graphviz, and user text that cannot break out of its DOT string."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mfx.cli.graph_dot import build, to_dot
from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon, mfx_command, run_cli
from tests.plugin_fixtures import apply, manifest, plugin_root, wait_ready, wait_reason

PLUGINS = ("core", "codec", "ui", "broken", "bad", "paused")


def parsed(dot_text: str) -> dict[str, Any]:
    """The graph as Graphviz reads it (``dot -Tjson0``), after checking ``dot -Tcanon`` takes it."""
    canon = subprocess.run(["dot", "-Tcanon"], input=dot_text.encode(), capture_output=True, check=False)
    assert canon.returncode == 0, canon.stderr.decode()
    done = subprocess.run(["dot", "-Tjson0"], input=dot_text.encode(), capture_output=True, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def nodes_by_name(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in graph.get("objects", [])}


def edges_by_names(graph: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    names = {o["_gvid"]: o["name"] for o in graph.get("objects", [])}
    return {(names[e["tail"]], names[e["head"]]): e for e in graph.get("edges", [])}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("graph")
    home = base / "home"
    home.mkdir()
    root = plugin_root(base, *PLUGINS)
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        apply(home, manifest("core", startDelay=0.2), manifest("codec", deps=[{"name": "core", "version": ">=1.0.0"}]),
              manifest("ui", deps=[{"name": "codec", "version": "^1.0"}, {"name": "extras", "optional": True}]),
              manifest("broken", deps=["ghost"]), manifest("bad", entryPoint="python:testkit.missing:Nope"),
              manifest("paused", suspend=True))
        wait_ready(home, "core", "codec", "ui")
        wait_reason(home, "bad", "Stalled", "True", "EntryPointNotFound")
        wait_reason(home, "broken", "Ready", "False", "DependencyMissing")
        wait_reason(home, "paused", "Ready", "False", "Suspended")
        yield home


def test_the_dot_is_valid_graphviz_naming_every_plugin_and_edge(home: Path) -> None:
    result = run_cli(home, "graph", "-o", "dot")
    assert result.exit_code == 0, result.output
    graph = parsed(result.stdout)
    nodes, edges = nodes_by_name(graph), edges_by_names(graph)
    assert set(PLUGINS) | {"ghost", "extras"} == set(nodes)
    assert set(edges) == {("codec", "core"), ("ui", "codec"), ("ui", "extras"), ("broken", "ghost")}
    assert edges[("codec", "core")]["label"] == ">=1.0.0" and edges[("ui", "codec")]["label"] == "^1.0"
    assert "dashed" in edges[("ui", "extras")]["style"]  # optional
    # States: colour and the words on each box.
    assert nodes["core"]["fillcolor"] == "palegreen" and "Ready" in nodes["core"]["label"]
    assert nodes["broken"]["fillcolor"] == "khaki" and "not Ready: DependencyMissing" in nodes["broken"]["label"]
    assert nodes["bad"]["fillcolor"] == "lightcoral" and "Stalled: EntryPointNotFound" in nodes["bad"]["label"]
    assert nodes["paused"]["fillcolor"] == "lightgrey" and "Suspended" in nodes["paused"]["label"]
    assert "1.0.0" in nodes["core"]["label"]
    for missing in ("ghost", "extras"):  # declared by no PluginManifest
        assert nodes[missing]["style"] == "dashed" and nodes[missing]["color"] == "red"
    # The critical chain: bold blue boxes and arrows, its time in the title.
    assert graph["label"].startswith("critical chain: ui -> codec -> core (") and graph["label"].endswith(" s)")
    for name in ("core", "codec", "ui"):
        assert nodes[name]["color"] == "blue" and nodes[name]["penwidth"] == "3"
        assert "+0." in nodes[name]["label"] or "+1." in nodes[name]["label"]
    for pair in (("ui", "codec"), ("codec", "core")):
        assert "bold" in edges[pair]["style"] and edges[pair]["color"] == "blue"
    assert edges[("broken", "ghost")]["color"] == "red" and edges[("broken", "ghost")]["style"] == "dashed"
    assert "color" not in nodes["broken"]  # not on the chain


def test_svg_and_png_are_rendered_by_graphviz(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "plugins.svg"
    result = run_cli(home, "graph", "-o", "svg", "--output-file", str(target))
    assert result.exit_code == 0, result.output
    svg = target.read_text()
    assert "<svg" in svg and "critical chain: ui &#45;&gt; codec &#45;&gt; core" in svg
    png = run_cli(home, "graph", "-o", "png")  # stdout is no terminal here: a pipe or a file
    assert png.exit_code == 0 and png.stdout_bytes.startswith(b"\x89PNG\r\n")


def test_png_to_a_terminal_is_refused(home: Path) -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.run([*mfx_command(), "--home", str(home), "graph", "-o", "png"], stdout=follower,
                              stderr=subprocess.PIPE, timeout=60, check=False)
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 1
    assert "refusing to write PNG to a terminal: use --output-file FILE" in done.stderr.decode()


def test_without_graphviz_svg_says_what_to_install(home: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    result = run_cli(home, "graph", "-o", "svg")
    assert result.exit_code == 1
    assert "apt-get install graphviz" in result.output and "Traceback" not in result.output
    assert run_cli(home, "graph").exit_code == 0  # DOT itself needs no Graphviz


def test_user_text_cannot_break_out_of_its_dot_string() -> None:
    odd = 'x" ]; evil [label="pwned"]; {\\ } \n<b>'
    items = [
        {"metadata": {"name": "a"}, "spec": {"version": odd, "dependencies": [{"name": "b", "version": odd}]},
         "status": {"conditions": [{"type": "Ready", "status": "False", "reason": odd}]}},
        {"metadata": {"name": "b"}, "spec": {"version": "1.0.0"}, "status": {}},
    ]
    graph = parsed(to_dot(build(items)))
    nodes = nodes_by_name(graph)
    assert set(nodes) == {"a", "b"}  # nothing injected
    # The whole text is one label, as written (backslash and line break in DOT's escapes).
    assert edges_by_names(graph)[("a", "b")]["label"] == 'x" ]; evil [label="pwned"]; {\\\\ } \\n<b>'
    assert "evil" in nodes["a"]["label"] and nodes["a"]["fillcolor"] == "khaki"
