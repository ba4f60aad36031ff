"""`mfx completion bash|zsh|fish`, and completion as the shell runs it: kinds, and the names of
the objects the daemon has now."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import REPO, ThreadDaemon, mfx_command, run_cli
from tests.test_apply import SINK, plugin_yaml

BIN = Path(mfx_command()[0]).parent  # the venv's bin, where the `mfx` entry point is


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with ThreadDaemon(tmp_path_factory.mktemp("completion") / "home").running() as daemon:
        home = daemon.config.home
        for name in ("local-music", "lyrics", "codec-soundfile"):
            assert run_cli(home, "apply", "-f", "-", input=plugin_yaml(name)).exit_code == 0
        assert run_cli(home, "apply", "-f", "-", input=SINK).exit_code == 0
        yield home


def complete(home: Path | None, line: str) -> list[str]:
    """What `mfx` offers for the last word of ``line``, asked the way bash's completion asks."""
    words = line.split(" ")
    env = {**os.environ, "_MFX_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    env.pop("MFX_HOME", None)
    if home is not None:
        env["MFX_HOME"] = str(home)
    done = subprocess.run([*mfx_command()], env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    # bash_complete answers one "type,value" line per candidate.
    return [value for kind, _, value in (line.partition(",") for line in done.stdout.splitlines()) if kind == "plain"]


def test_kinds_complete(home: Path) -> None:
    kinds = ["pluginmanifests", "audiosinks", "gitsources", "nodes", "leases"]
    assert complete(home, "mfx get ") == ["all", *kinds]
    assert complete(home, "mfx get plug") == ["pluginmanifests"]
    assert complete(home, "mfx describe ") == kinds
    assert complete(home, "mfx get si") == ["sink", "sinks"]  # short names complete to themselves


def test_names_of_existing_objects_complete(home: Path) -> None:
    assert complete(home, "mfx get pm ") == ["codec-soundfile", "local-music", "lyrics"]
    assert complete(home, "mfx get pm l") == ["local-music", "lyrics"]
    assert complete(home, "mfx get pm local-music ") == ["codec-soundfile", "lyrics"]  # not twice
    assert complete(home, "mfx describe audiosinks ") == ["speakers"]
    assert complete(home, "mfx delete pm/lo") == ["pm/local-music"]
    assert complete(home, "mfx wait --for=condition=Ready pm c") == ["codec-soundfile"]
    assert complete(home, "mfx logs ly") == ["lyrics"]
    assert complete(home, "mfx get -o ") == ["table", "wide", "yaml", "json", "name", "jsonpath=", "custom-columns="]


def test_the_home_on_the_command_line_is_the_daemon_asked(home: Path, tmp_path: Path) -> None:
    assert complete(None, f"mfx --home {home} get pm lo") == ["local-music"]
    # No daemon there: nothing to offer, and no error in the user's prompt.
    assert complete(None, f"mfx --home {tmp_path} get pm ") == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_the_bash_script_completes_through_bash(home: Path) -> None:
    script = subprocess.run([*mfx_command(), "completion", "bash"], capture_output=True, text=True, check=True).stdout
    assert "_mfx_completion" in script and "_MFX_COMPLETE=bash_complete" in script
    # bash itself: source the script, fill COMP_WORDS as readline would, run the function.
    program = script + '\nCOMP_WORDS=(mfx get pm l); COMP_CWORD=3; _mfx_completion mfx; printf "%s\\n" "${COMPREPLY[@]}"\n'
    env = {**os.environ, "MFX_HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", program], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["local-music", "lyrics"], done.stderr


def test_zsh_and_fish_scripts_and_help() -> None:
    zsh = run_cli(Path("/nonexistent"), "completion", "zsh")
    assert zsh.exit_code == 0 and zsh.output.startswith("#compdef mfx")
    fish = run_cli(Path("/nonexistent"), "completion", "fish")
    assert fish.exit_code == 0 and "complete --no-files --command mfx" in fish.output
    helped = run_cli(Path("/nonexistent"), "completion", "--help").output
    assert "source <(mfx completion bash)" in helped
    assert run_cli(Path("/nonexistent"), "completion", "tcsh").exit_code == 2
