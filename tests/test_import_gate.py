"""Python plugins are imported one at a time (mfx.runtimes.import_gate), and one whose import
blocks holds the others for the gate's patience only; a module path that is not a regular
file is not a module (and is not waited on)."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mfx.errors import EntryPointNotFoundError
from mfx.runtimes.base import LoadRequest, PluginType
from mfx.runtimes.import_gate import ImportGate
from mfx.runtimes.python_import import LoadedModule, PluginFinder, PythonEntryPoint, import_plugin

BLOCKS = """
import gate_probe
gate_probe.seen.append("blocker begins")
gate_probe.release.wait(30)
gate_probe.seen.append("blocker ends")


class P:
    pass
"""
QUICK = """
import gate_probe
gate_probe.seen.append("quick")


class P:
    pass
"""


def request(plugin_dir: Path, name: str) -> LoadRequest:
    return LoadRequest(name=name, version="1.0.0", type=PluginType.DYNAMIC_LIBRARY,
                       entry_point=f"python:{name}.plugin:P", plugin_dir=plugin_dir, state_dir=plugin_dir)


def package(root: Path, name: str, source: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (root / name / "plugin.py").write_text(textwrap.dedent(source))


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    shared = types.SimpleNamespace(seen=[], release=threading.Event())
    monkeypatch.setitem(sys.modules, "gate_probe", shared)
    return shared


@contextmanager
def finder_with(gate: ImportGate) -> Iterator[PluginFinder]:
    finder = PluginFinder(gate=gate)
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)


def load_in_thread(root: Path, name: str, finder: PluginFinder, loaded: list[LoadedModule]) -> threading.Thread:
    def load() -> None:
        loaded.append(import_plugin(request(root, name), PythonEntryPoint.parse(f"python:{name}.plugin:P"), finder))

    thread = threading.Thread(target=load, name=f"load-{name}")
    thread.start()
    return thread


def waiting_at_the_gate(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "passage":
            return True
        frame = frame.f_back
    return False


@contextmanager
def blocker_then_quick(root: Path, patience: float,
                       probe: types.SimpleNamespace) -> Iterator[tuple[threading.Thread, threading.Thread]]:
    """The blocker's import begun (and blocked until ``probe.release``), then the quick one's
    started: their threads. On the way out both are done and unloaded."""
    package(root, "blocker", BLOCKS)
    package(root, "quick", QUICK)
    loaded: list[LoadedModule] = []
    with finder_with(ImportGate(patience=patience)) as finder:
        first = load_in_thread(root, "blocker", finder, loaded)
        while "blocker begins" not in probe.seen:
            threading.Event().wait(0.001)
        second = load_in_thread(root, "quick", finder, loaded)
        try:
            yield first, second
        finally:
            probe.release.set()
            first.join(30)
            second.join(30)
    assert len(loaded) == 2
    for one in loaded:
        one.unload()


def test_a_second_import_waits_for_the_one_going_through(tmp_path: Path, probe: types.SimpleNamespace) -> None:
    with blocker_then_quick(tmp_path, 60.0, probe) as (_, second):
        # The second import is either held at the gate or (without one) already running.
        while not waiting_at_the_gate(second) and "quick" not in probe.seen:
            threading.Event().wait(0.001)
        assert "quick" not in probe.seen
    assert probe.seen == ["blocker begins", "blocker ends", "quick"]


def test_an_import_that_blocks_holds_the_next_one_for_the_patience_only(
        tmp_path: Path, probe: types.SimpleNamespace) -> None:
    with blocker_then_quick(tmp_path, 0.05, probe) as (_, second):
        second.join(30)
        assert probe.seen == ["blocker begins", "quick"], "loaded beside the blocked import"


def test_a_fifo_where_the_module_should_be_is_a_missing_entry_point(tmp_path: Path) -> None:
    (tmp_path / "piped").mkdir()
    (tmp_path / "piped" / "__init__.py").write_text("")
    os.mkfifo(tmp_path / "piped" / "plugin.py")  # opening it to read would wait for a writer
    with finder_with(ImportGate()) as finder:
        with pytest.raises(EntryPointNotFoundError) as caught:
            import_plugin(request(tmp_path, "piped"), PythonEntryPoint.parse("python:piped.plugin:P"), finder)
    assert str(tmp_path / "piped" / "plugin.py") in str(caught.value)


def test_a_package_without_the_entry_module_is_a_missing_entry_point(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "__init__.py").write_text("")
    with finder_with(ImportGate()) as finder:
        with pytest.raises(EntryPointNotFoundError, match=r"no module 'half\.plugin'") as caught:
            import_plugin(request(tmp_path, "half"), PythonEntryPoint.parse("python:half.plugin:P"), finder)
    assert "check spec.entryPoint" in str(caught.value)
