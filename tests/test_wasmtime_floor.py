"""The lowest wasmtime that pyproject.toml admits runs mfx's WebAssembly runtime.

wasmtime-py changes its API between major versions (``WasiConfig.preopen_dir`` takes
permission enums up to 47 and a ``bool`` from 48 on), so the floor of the
dependency range is checked for real: that version is installed from PyPI into a private
directory and a plugin is loaded and called through ``mfx.runtimes.wasm`` in a child
interpreter that finds that wasmtime first."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
UNREACHABLE = ("Could not fetch", "NewConnectionError", "Network is unreachable", "Max retries exceeded",
               "Temporary failure in name resolution", "ConnectTimeout", "ProxyError")

# Loads a plugin that reads a file through a WASI preopen (preopen_dir) and one that logs and
# writes to WASI stdout (stdout_custom), with fuel, an epoch deadline and a memory cap.
CHECK = """
import sys
import anyio
import wasmtime
from mfx.runtimes.base import AllowedPath
from mfx.runtimes.wasm import WasmRuntime
from tests.test_wasm_runtime import CHATTY, FS_PROBE, request, write_module

async def main(base):
    (base / "music").mkdir()
    (base / "music" / "song.txt").write_text("la la la")
    logs = []
    async with WasmRuntime() as runtime:
        write_module(base / "probe", "probe", FS_PROBE)
        probe = await runtime.load(request(base / "probe", "probe",
                                           allowed_paths=(AllowedPath(base / "music"),)))
        await probe.start()
        assert await probe.call("read", "song.txt") == {"errno": 0, "content": "la la la"}
        write_module(base / "chatty", "chatty", CHATTY)
        chatty = await runtime.load(request(base / "chatty", "chatty", logs=logs))
        await chatty.start()
        assert await chatty.call("echo", [1]) == [1]
    assert {r.message for r in logs} >= {"careful, loud!", "hello, stdout!"}, logs
    print("wasmtime", wasmtime.__file__)

anyio.run(main, __import__("pathlib").Path(sys.argv[1]))
"""


def floor_version() -> str:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == "wasmtime":
            floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
            assert len(floors) == 1, f"the wasmtime range needs one lower bound: {line}"
            return floors[0]
    raise AssertionError("pyproject.toml does not depend on wasmtime")


def install(version: str, target: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
         "--target", str(target), f"wasmtime=={version}"],
        capture_output=True, text=True, timeout=240)
    if result.returncode != 0:
        if any(word in result.stderr for word in UNREACHABLE):
            pytest.skip(f"PyPI cannot be reached to install wasmtime=={version}: {result.stderr[-300:]}")
        raise AssertionError(f"pip cannot install wasmtime=={version}:\n{result.stderr}")


def run_with_wasmtime(target: Path, work: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(REPO)])}
    return subprocess.run([sys.executable, "-c", CHECK, str(work)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


def test_the_lowest_admitted_wasmtime_runs_plugins(tmp_path: Path) -> None:
    version = floor_version()
    target = tmp_path / f"wasmtime-{version}"
    install(version, target)
    work = tmp_path / "work"
    work.mkdir()
    result = run_with_wasmtime(target, work)
    assert result.returncode == 0, f"wasmtime {version}:\n{result.stdout}\n{result.stderr}"
    assert str(target) in result.stdout  # the floor version ran, not the venv's own
