"""`mfx plugin init`: every scaffold applies unchanged, becomes Ready on a real daemon, and
does what its README says when loaded through its runtime."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
import yaml

from mfx.cli.scaffold_names import Names
from mfx.errors import PluginRuntimeError
from mfx.runtimes.base import LoadRequest, PluginInstance, PluginLogRecord, PluginType
from mfx.runtimes.dynamic_library import DynamicLibraryRuntime
from mfx.runtimes.hot_reload import HotReloadRuntime
from mfx.runtimes.rpc import RpcRuntime
from mfx.runtimes.wasm import WasmRuntime
from tests.daemon_harness import ThreadDaemon, run_cli

SCAFFOLDS = {  # plugin name -> type
    "hello-rpc-init": "rpc",
    "hello-wasm-init": "webassembly",
    "hello-dynlib-init": "dynamic_library",
    "hello-hot-init": "hot_reload",
}
HANG_GUARD = 60  # seconds; only against hangs, never a measurement


def controller_available() -> bool:
    return importlib.util.find_spec("controllers.plugin") is not None


@pytest.fixture
def scaffolds(tmp_path: Path) -> Path:
    parent = tmp_path / "plugins"
    for name, type_ in SCAFFOLDS.items():
        result = run_cli(tmp_path / "unused-home", "plugin", "init", name, "--type", type_, "--dir", str(parent))
        assert result.exit_code == 0, result.output
        assert f"created {type_} plugin '{name}'" in result.output
        assert f"mfx wait --for=condition=Ready pm/{name}" in result.output
    return parent


def test_each_scaffold_is_a_valid_manifest_with_its_sources_and_readme(scaffolds: Path) -> None:
    for name, type_ in SCAFFOLDS.items():
        folder = scaffolds / name
        manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
        spec = manifest["spec"]
        assert manifest["metadata"]["name"] == name
        assert (spec["version"], spec["type"]) == ("0.1.0", type_)
        assert spec["interfaces"] and spec["healthCheck"]["failureThreshold"] == 3
        assert spec["configSchema"]["type"] == "object"
        readme = (folder / "README.md").read_text()
        assert f"mfx apply -f {scaffolds}/{name}/plugin.yaml" in readme
        assert f"mfx plugin pack {scaffolds}/{name} --key" in readme
    package = Names.of("hello-rpc-init", "").package
    assert "serve(" in (scaffolds / "hello-rpc-init" / package / "__main__.py").read_text()
    assert (scaffolds / "hello-wasm-init" / "hello_wasm_init.wasm").read_bytes()[:4] == b"\0asm"


def test_the_webassembly_makefile_rebuilds_the_same_module(scaffolds: Path) -> None:
    folder = scaffolds / "hello-wasm-init"
    built = (folder / "hello_wasm_init.wasm").read_bytes()
    (folder / "hello_wasm_init.wasm").unlink()
    subprocess.run(["make", "-s", "-C", str(folder)], check=True, env={**os.environ, "MAKEFLAGS": ""})
    assert (folder / "hello_wasm_init.wasm").read_bytes() == built


def test_every_scaffold_passes_a_server_dry_run(tmp_path: Path, scaffolds: Path) -> None:
    home = tmp_path / "home"
    with ThreadDaemon(home).running():
        for name in SCAFFOLDS:
            result = run_cli(home, "apply", "--dry-run=server", "-f", str(scaffolds / name / "plugin.yaml"))
            assert result.exit_code == 0, result.output
            assert f"pluginmanifest.mfx.musicfox.io/{name} created (server dry run)" in result.output


@pytest.mark.skipif(not controller_available(), reason="the PluginManifest controller is not in this tree")
def test_every_scaffold_applied_unchanged_becomes_ready(tmp_path: Path, scaffolds: Path) -> None:
    from mfx.server.services import default_services

    home = tmp_path / "home"
    with ThreadDaemon(home, services=default_services(), plugin_paths=[scaffolds]).running():
        for name in SCAFFOLDS:
            result = run_cli(home, "apply", "-f", str(scaffolds / name / "plugin.yaml"))
            assert result.exit_code == 0, result.output
        for name in SCAFFOLDS:
            result = run_cli(home, "wait", "--for=condition=Ready", f"pm/{name}", "--timeout=60s")
            assert result.exit_code == 0, result.output + run_cli(home, "describe", "pm", name).output


def _runtime(type_: str) -> AbstractAsyncContextManager[Any]:
    return {"rpc": RpcRuntime, "webassembly": WasmRuntime, "dynamic_library": DynamicLibraryRuntime,
            "hot_reload": lambda: HotReloadRuntime(debounce_seconds=0.05)}[type_]()


async def _load(runtime: Any, folder: Path, state: Path, logs: list[PluginLogRecord]) -> PluginInstance:
    spec = yaml.safe_load((folder / "plugin.yaml").read_text())["spec"]
    instance: PluginInstance = await runtime.load(LoadRequest(
        name=folder.name, version=spec["version"], type=PluginType(spec["type"]),
        entry_point=spec["entryPoint"], plugin_dir=folder, state_dir=state, config=spec["config"],
        log=logs.append))
    await instance.initialize(spec["config"])
    await instance.start()
    await instance.health()
    return instance


@pytest.fixture
async def loaded(request: pytest.FixtureRequest, scaffolds: Path, tmp_path: Path
                 ) -> AsyncIterator[tuple[PluginInstance, list[PluginLogRecord], Path]]:
    name = request.param
    logs: list[PluginLogRecord] = []
    async with _runtime(SCAFFOLDS[name]) as runtime:
        with anyio.fail_after(HANG_GUARD):
            instance = await _load(runtime, scaffolds / name, tmp_path / "state", logs)
        try:
            yield instance, logs, scaffolds / name
        finally:
            await instance.stop()
            await instance.cleanup()


@pytest.mark.anyio
@pytest.mark.parametrize("loaded", ["hello-rpc-init"], indirect=True)
async def test_the_rpc_scaffold_serves_over_json_rpc(loaded: tuple[PluginInstance, Any, Path]) -> None:
    instance, logs, _ = loaded
    assert await instance.call("greet", {"name": "Ada"}) == "Hello, Ada!"
    await instance.update_config({"greeting": "Hi"})
    assert await instance.call("greet", ["Bob"]) == "Hi, Bob!"
    assert any("hello-rpc-init started" in r.message for r in logs)


@pytest.mark.anyio
@pytest.mark.parametrize("loaded", ["hello-wasm-init"], indirect=True)
async def test_the_webassembly_scaffold_follows_the_abi(loaded: tuple[PluginInstance, Any, Path]) -> None:
    instance, logs, _ = loaded
    assert await instance.call("echo", {"a": [1, "two", None]}) == {"a": [1, "two", None]}
    assert await instance.call("version") == {"version": "0.1.0"}
    with pytest.raises(PluginRuntimeError, match="UnknownMethod"):
        await instance.call("play", {})
    await instance.update_config({})  # init runs again with the new config
    assert [r.message for r in logs if r.stream == "wasm"] == ["hello-wasm-init ready"] * 2


@pytest.mark.anyio
@pytest.mark.parametrize("loaded", ["hello-dynlib-init"], indirect=True)
async def test_the_dynamic_library_scaffold_processes_audio(loaded: tuple[PluginInstance, Any, Path]) -> None:
    instance, _, _ = loaded
    await instance.update_config({"gain": 0.5})
    block = np.full((4, 2), 0.8, dtype=np.float32)
    out = await instance.call("process", [block, 48000])
    assert out.shape == (4, 2) and np.allclose(out, 0.4)


@pytest.mark.anyio
async def test_the_hot_reload_scaffold_renders_and_takes_an_edit(scaffolds: Path, tmp_path: Path) -> None:
    folder = scaffolds / "hello-hot-init"
    send, reloads = anyio.create_memory_object_stream[tuple[str, bool, str]](8)
    async with HotReloadRuntime(lambda *report: send.send_nowait(report), debounce_seconds=0.05) as runtime:
        with anyio.fail_after(HANG_GUARD):
            instance = await _load(runtime, folder, tmp_path / "state", [])
        state = {"status": "playing", "current": {"title": "Song"}}
        assert await instance.call("render", [state]) == "playing: Song"
        assert await instance.call("handle_input", [" "]) == "toggle"
        source = folder / "hello_hot_init" / "plugin.py"
        edited = source.read_text().replace("line = f\"{state", "line = \"> \" + f\"{state")
        assert edited != source.read_text()
        temp = source.with_name(".plugin.py.swp")
        temp.write_text(edited)
        os.replace(temp, source)  # saved as an editor saves
        with anyio.fail_after(HANG_GUARD):
            _, ok, message = await reloads.receive()
        assert ok, message
        assert await instance.call("render", [state]) == "> playing: Song"
        assert instance.details["generation"] == 2
        await instance.stop()
        await instance.cleanup()
    send.close()
    reloads.close()


@pytest.mark.parametrize(("name", "message"), [
    ("Bad_Name", "is not a valid plugin name"),
    ("dash-", "is not a valid plugin name"),
])
def test_init_refuses_bad_names_and_existing_folders(tmp_path: Path, name: str, message: str) -> None:
    result = run_cli(tmp_path, "plugin", "init", name, "--type", "rpc", "--dir", str(tmp_path))
    assert result.exit_code != 0 and message in result.output


def test_init_refuses_a_folder_that_is_not_empty_and_avoids_shadowing_modules(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    result = run_cli(tmp_path, "plugin", "init", "taken", "--type", "rpc", "--dir", str(tmp_path))
    assert result.exit_code == 1 and "exists and is not empty" in result.output
    result = run_cli(tmp_path, "plugin", "init", "json", "--type", "rpc", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "json" / "json_plugin" / "__main__.py").is_file()
    assert "entryPoint: python -m json_plugin" in (tmp_path / "json" / "plugin.yaml").read_text()
    assert Names.of("2fast", "Plugin").package == "plugin_2fast"

