"""What a new ``mfx`` process imports for the commands typed most, talking to the unix socket:
none of the heavy modules, not even click (``fast_path`` answers them), checked in the
process's ``sys.modules`` when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.cli.client import Client, Endpoint
from mfx.server.services import default_services
from tests.daemon_harness import REPO, ThreadDaemon

# Models and validation, the TLS stack and the HTTP library that needs it, rich tables, the
# daemon's own modules: the unix-socket path uses none of them. Nor the dataclasses machinery
# (with inspect, ast and dis under it) or orjson (which loads it, with uuid and datetime):
# each costs a new process milliseconds, more than what it would save there.
HEAVY = ("pydantic", "jsonschema", "ssl", "httpx", "rich", "cryptography", "numpy", "click", "yaml", "orjson",
         "dataclasses", "inspect", "mfx.server", "mfx.store", "mfx.music", "mfx.audio", "controllers", "reconciler")

# The entry point as the installed ``mfx`` script runs it; the modules it loaded go to a file
# when the process ends, however it ends (click exits through SystemExit). Modules loaded
# before it started are not its own; and the process runs without coverage's start-up hook
# (a .pth file that ``make test`` arms), which would load dataclasses and inspect first and so
# hide them.
SCRIPT = """
import sys
BEFORE = set(sys.modules)
from mfx.cli.main import main
sys.argv = ["mfx", *sys.argv[1:]]
try:
    main()
finally:
    with open(OUT, "w") as out:
        out.write("\\n".join(sorted(set(sys.modules) - BEFORE)))
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("start") / "home"
    with ThreadDaemon(home, services=default_services()).running():
        with Client(Endpoint(socket=home / "mfx.sock")) as client:
            client.request("POST", "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests", body={
                "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "quiet"},
                "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m quiet", "suspend": True}})
        yield home


def loaded_modules(home: Path, tmp_path: Path, *args: str,
                   bare: bool = False) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules ``mfx ARGS`` loaded. ``bare``: on an interpreter that imported nothing
    before it (``-S``: no site, so no ``.pth`` start-up hook, such as setuptools' editable-install
    finder, which would import pathlib and re into every process and so hide them)."""
    out = tmp_path / "modules.txt"
    env = {key: value for key, value in os.environ.items()
           if key not in ("MFX_SERVER", "MFX_TOKEN", "COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")}
    env |= {"MFX_HOME": str(home), "PYTHONPATH": str(REPO)}
    flags = []
    if bare:
        flags = ["-S"]
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"]])
    done = subprocess.run([sys.executable, *flags, "-c", f"OUT = {str(out)!r}\n" + SCRIPT, *args],
                          capture_output=True, text=True, env=env, cwd=REPO)
    return set(out.read_text().split()), done


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def loaded_of(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    """The modules loaded from the top-level packages ``roots``."""
    return sorted(m for m in modules if m.split(".")[0] in roots)


@pytest.mark.parametrize("args", [("get", "pm"), ("get", "pm", "quiet", "-o", "wide"), ("get", "pm", "-l", "a=b"),
                                  ("now",), ("version",), ("version", "--client"), ("--help",)])
def test_the_hot_commands_load_nothing_heavy(home: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    modules, done = loaded_modules(home, tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert heavy(modules) == []


def test_a_daemon_that_is_not_there_loads_nothing_heavy_either(tmp_path: Path) -> None:
    modules, done = loaded_modules(tmp_path / "nobody", tmp_path, "get", "pm")
    assert done.returncode == 1 and "cannot reach the mfx daemon" in done.stderr
    assert heavy(modules) == []


def test_the_check_sees_what_the_click_path_loads(home: Path, tmp_path: Path) -> None:
    # Without this the test above would pass if sys.modules were never read at all.
    modules, done = loaded_modules(home, tmp_path, "get", "pm", "-o", "yaml")
    assert done.returncode == 0, done.stderr
    assert {"click", "yaml"} <= modules


def test_apply_of_a_directory_loads_nothing_heavy(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    for name in ("one", "two"):
        (folder / f"{name}.yaml").write_text(
            f"apiVersion: mfx.musicfox.io/v1alpha1\nkind: PluginManifest\nmetadata:\n  name: {name}\n"
            "spec:\n  version: 1.0.0\n  type: rpc\n  entryPoint: python -m quiet\n  suspend: true\n")
    modules, done = loaded_modules(home, tmp_path, "apply", "-f", str(folder))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" created\n") == 2
    # Plain manifests are read without PyYAML, and the daemon validates them, so no
    # validation library is loaded here either.
    assert heavy(modules) == []


# What ``apply -f DIR`` does without: each costs every apply's start milliseconds (typing with
# contextlib, pathlib with urllib.parse and ipaddress, datetime, copy). re it needs, for YAML.
APPLY_NEEDS_NOT = ("typing", "pathlib", "urllib", "ipaddress", "datetime", "copy", "contextlib")


def test_apply_of_a_directory_loads_no_typing_pathlib_or_datetime(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "one.yaml").write_text(
        "apiVersion: mfx.musicfox.io/v1alpha1\nkind: PluginManifest\nmetadata:\n  name: light\n"
        "spec:\n  version: 1.0.0\n  type: rpc\n  entryPoint: python -m quiet\n  suspend: true\n")
    modules, done = loaded_modules(home, tmp_path, "apply", "-f", str(folder), bare=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "pluginmanifest.mfx.musicfox.io/light created\n", done.stdout
    assert loaded_of(modules, APPLY_NEEDS_NOT) == []


# What the lightest commands do without: each of these standard modules costs a new process
# milliseconds (pathlib with re and urllib.parse under it, json with re and enum, typing, socket
# with enum and selectors, copy with weakref, contextlib with the collections package),
# together more than the interpreter's own start.
STARTUP_WEIGHT = ("pathlib", "re", "urllib", "json", "typing", "enum", "socket", "selectors", "copy", "fnmatch",
                  "contextlib", "collections")


@pytest.mark.parametrize("args", [("now",), ("version",), ("version", "--client"), ("--help",)])
def test_the_lightest_commands_load_no_pathlib_typing_or_socket_wrapper(home: Path, tmp_path: Path,
                                                                         args: tuple[str, ...]) -> None:
    modules, done = loaded_modules(home, tmp_path, *args, bare=True)
    assert done.returncode == 0, done.stderr
    assert loaded_of(modules, STARTUP_WEIGHT) == []


def test_the_venv_make_builds_starts_python_without_an_import_hook() -> None:
    # `make venv` installs mfx editable as a plain path entry (pyproject's package-dir): with
    # setuptools' import hook instead, every `mfx` command of the README's PATH loaded pathlib
    # and re before its first line, some 10 ms (two thirds of a bare start).
    env = {key: value for key, value in os.environ.items()
           if key not in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG", "PYTHONPATH")}
    done = subprocess.run([sys.executable, "-c", "import sys, mfx.cli\n"
                           "print(' '.join(sorted(sys.modules)))\n"
                           "print(' '.join(type(f).__name__ for f in sys.meta_path))"],
                          capture_output=True, text=True, env=env, cwd="/", check=True)
    modules, finders = (line.split() for line in done.stdout.splitlines())
    assert "mfx.cli" in modules  # found through the venv's own path entry, from anywhere
    assert {"pathlib", "re"} & set(modules) == set(), "an import hook loads them into every start"
    assert not [f for f in finders if "Editable" in f], finders


# ``get``, the command typed most, does without typing, re and what they bring (the records it
# loads are plain named tuples), and without pathlib, urllib, json's package or datetime.
GET_NEEDS_NOT = ("typing", "re", "enum", "contextlib", "functools", "pathlib", "urllib", "json", "datetime", "copy")


@pytest.mark.parametrize("args", [("get", "pm"), ("get", "pm", "-o", "wide"), ("get", "pm", "quiet")])
def test_get_loads_no_typing_or_re(home: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    modules, done = loaded_modules(home, tmp_path, *args, bare=True)
    assert done.returncode == 0, done.stderr
    assert "quiet" in done.stdout, done.stdout
    assert loaded_of(modules, GET_NEEDS_NOT) == []
