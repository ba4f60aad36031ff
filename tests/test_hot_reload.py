"""Hot reload: an edited plugin is swapped in with its state; a broken edit changes nothing."""

from __future__ import annotations

import os
import textwrap
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream
from watchdog.utils import BaseThread

from mfx.errors import PluginRuntimeError
from mfx.runtimes.base import LoadRequest, PluginType
from mfx.runtimes.hot_reload import HotReloadInstance, HotReloadRuntime, package_fingerprint

REPO = Path(__file__).resolve().parent.parent
HANG_GUARD = 30  # seconds; only against a hang, never a speed target

pytestmark = pytest.mark.anyio


PLUGIN = """
    from mfx.sdk.plugin import Plugin
    from .helper import SUFFIX

    class Counter(Plugin):
        def initialize(self, config):
            super().initialize(config)
            self.count = 0
            {init_extra}

        def health(self):
            return {healthy}

        def bump(self):
            self.count += 1
            return self.count

        def version(self):
            return "{version}" + SUFFIX

        def export_state(self):
            return {{"count": self.count}}

        def import_state(self, state):
            self.count = state["count"]
    """


def plugin_source(version: str, *, healthy: str = "True", init_extra: str = "pass") -> str:
    return textwrap.dedent(PLUGIN).format(version=version, healthy=healthy, init_extra=init_extra)


def save_like_an_editor(path: Path, text: str) -> None:
    """Write a temporary file and rename it over the original (vim, VS Code, JetBrains...)."""
    temp = path.with_name(f".{path.name}.swp")
    temp.write_text(text)
    os.replace(temp, path)


@dataclass
class Reloads:
    receive: MemoryObjectReceiveStream[tuple[str, bool, str]]

    async def next(self) -> tuple[bool, str]:
        with anyio.fail_after(HANG_GUARD):
            _, ok, message = await self.receive.receive()
        return ok, message


@pytest.fixture
async def hot(tmp_path: Path) -> AsyncIterator[tuple[HotReloadInstance, Reloads, Path]]:
    package = tmp_path / "plugin" / "counter"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text('SUFFIX = ""\n')
    (package / "plugin.py").write_text(plugin_source("v1"))
    send, receive = anyio.create_memory_object_stream[tuple[str, bool, str]](16)
    request = LoadRequest(name="counter", version="1.0.0", type=PluginType.HOT_RELOAD,
                          entry_point="python:counter.plugin:Counter", plugin_dir=tmp_path / "plugin",
                          state_dir=tmp_path)
    async with HotReloadRuntime(lambda *report: send.send_nowait(report), debounce_seconds=0.05) as runtime:
        instance = await runtime.load(request)
        await instance.initialize({})
        await instance.start()
        yield instance, Reloads(receive), package
    send.close()
    receive.close()


async def test_an_edit_is_swapped_in_with_its_state(hot: tuple[HotReloadInstance, Reloads, Path]) -> None:
    instance, reloads, package = hot
    for _ in range(3):
        await instance.call("bump")
    old_module = instance.details["module"]
    save_like_an_editor(package / "plugin.py", plugin_source("v2"))
    ok, message = await reloads.next()
    assert ok, message
    assert await instance.call("version") == "v2"
    assert await instance.call("bump") == 4  # state carried over
    assert instance.details["module"] != old_module and instance.details["generation"] == 2


async def test_every_module_of_the_package_is_reloaded(hot: tuple[HotReloadInstance, Reloads, Path]) -> None:
    instance, reloads, package = hot
    save_like_an_editor(package / "helper.py", 'SUFFIX = "-patched"\n')
    ok, message = await reloads.next()
    assert ok, message
    assert await instance.call("version") == "v1-patched"


async def test_a_broken_edit_keeps_the_old_version_until_a_fix_arrives(
        hot: tuple[HotReloadInstance, Reloads, Path]) -> None:
    instance, reloads, package = hot
    await instance.call("bump")
    save_like_an_editor(package / "plugin.py", plugin_source("v2").replace("def bump(self):", "def bump(self)"))
    ok, message = await reloads.next()
    assert not ok and "SyntaxError" in message and "generation 1" in message
    assert await instance.call("version") == "v1"  # the old one still answers
    await instance.health()
    assert "SyntaxError" in instance.details["lastReloadError"]

    save_like_an_editor(package / "plugin.py", plugin_source("v3"))
    ok, message = await reloads.next()
    assert ok, message
    assert await instance.call("version") == "v3"
    assert await instance.call("bump") == 2
    assert instance.details["lastReloadError"] is None


@pytest.mark.parametrize(("change", "reason"), [
    ({"healthy": "False"}, "unhealthy"),
    ({"init_extra": 'raise RuntimeError("no database")'}, "no database"),
])
async def test_a_version_that_fails_its_checks_is_not_swapped_in(
        hot: tuple[HotReloadInstance, Reloads, Path], change: dict[str, str], reason: str) -> None:
    instance, reloads, package = hot
    save_like_an_editor(package / "plugin.py", plugin_source("v2", **change))
    ok, message = await reloads.next()
    assert not ok and reason in message
    assert await instance.call("version") == "v1"
    assert instance.details["generation"] == 1


async def test_hello_hot_renders_a_status_line_and_unloads_cleanly(tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())
    request = LoadRequest(name="hello-hot", version="0.1.0", type=PluginType.HOT_RELOAD,
                          entry_point="python:hello_hot.plugin:StatusLine",
                          plugin_dir=REPO / "plugins" / "hello-hot", state_dir=tmp_path)
    async with HotReloadRuntime() as runtime:
        instance = await runtime.load(request)
        await instance.initialize({"width": 60})
        await instance.start()
        state = {"status": "playing", "positionSeconds": 83.0, "volume": 80,
                 "current": {"title": "Song", "artists": [{"name": "Band"}], "durationSeconds": 296}}
        assert await instance.call("render", [state]) == "▶ Band - Song  1:23/4:56  vol 80"
        assert await instance.call("handle_input", ["ctrl+n"]) == "next"
        assert await instance.call("layout") == {"regions": [{"name": "bottom", "rows": 1, "title": "hello-hot"}]}
        for theme in await instance.call("themes"):
            assert (await instance.call("theme", [theme]))["primary"].startswith("#")
        await instance.stop()
        await instance.cleanup()
        with pytest.raises(PluginRuntimeError, match="unloaded"):
            await instance.call("rendered")
    leftover = [t for t in set(threading.enumerate()) - threads_before if isinstance(t, BaseThread)]
    assert not leftover, f"watchdog threads still running: {leftover}"


def test_the_fingerprint_follows_the_package_that_runs_beside_a_module_of_its_name(tmp_path: Path) -> None:
    # "ext/" (a package) is imported, not "ext.py" beside it: an edit of the package must
    # change the fingerprint, or that reload would be skipped as changing nothing.
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "__init__.py").write_text("VALUE = 1\n")
    (tmp_path / "ext.py").write_text("VALUE = 0\n")
    before = package_fingerprint(tmp_path, "ext")
    (tmp_path / "ext" / "__init__.py").write_text("VALUE = 2\n")
    assert package_fingerprint(tmp_path, "ext") != before
    (tmp_path / "ext" / "__init__.py").unlink()  # a bare directory: the module runs again
    alone = package_fingerprint(tmp_path, "ext")
    (tmp_path / "ext.py").write_text("VALUE = 3\n")
    assert package_fingerprint(tmp_path, "ext") != alone
