"""The commands ``mfx`` answers without click print, byte for byte, what their click commands
print, errors and exit codes included; whatever the fast path does not recognise is click's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mfx.cli import fast_path
from mfx.cli.client import Client, Endpoint
from mfx.cli.help_texts import TOP_HELP
from mfx.cli.main import build_cli
from mfx.cli.root import top_help
from mfx.server.services import default_services
from tests.daemon_harness import REPO, ThreadDaemon


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("fast") / "home"
    with ThreadDaemon(home, services=default_services()).running():
        with Client(Endpoint(socket=home / "mfx.sock")) as client:
            for name, tier in (("alpha", "audio"), ("beta", "ui"), ("gamma-with-a-longer-name", "audio")):
                client.request("POST", "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests", body={
                    "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
                    "metadata": {"name": name, "labels": {"tier": tier}},
                    "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m quiet", "suspend": True}})
        yield home


def fast(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[bool, str, str, int]:
    """``mfx ARGS`` through the fast path: whether it answered, stdout, stderr, exit code."""
    capsys.readouterr()
    try:
        answered, code = fast_path.run(list(args)), 0
    except SystemExit as exit_:
        answered, code = True, int(exit_.code or 0)
    out, err = capsys.readouterr()
    return answered, out, err, code


AGE = re.compile(r"\d+[smhd](\d+[smhd])?")


def through_click(*args: str) -> tuple[str, str, int]:
    result = CliRunner().invoke(build_cli(), list(args), prog_name="mfx", catch_exceptions=False)
    return result.stdout, result.stderr, result.exit_code


@pytest.mark.parametrize("args", [
    ("version",), ("version", "--client"), ("now",),
    ("get", "pm"), ("get", "pm", "-o", "wide"), ("get", "pluginmanifests", "beta", "alpha"), ("get", "pm", "-l", "tier=audio"),
    ("get", "pm", "--selector=tier=ui", "--output=table"), ("get", "pm/alpha", "pm/beta"), ("get", "all"),
    ("get", "pm", "-lnobody=here"), ("get", "pm", "nosuch"), ("get", "nosuchkind"), ("get",),
])
def test_the_fast_path_prints_what_click_prints(home: Path, capsys: pytest.CaptureFixture[str],
                                                args: tuple[str, ...]) -> None:
    line = ("--home", str(home), *args)
    before = through_click(*line)
    answered, out, err, code = fast(capsys, *line)
    after = through_click(*line)
    assert answered
    # An AGE column may tick between two runs, even between two rows of one: the fast one
    # matches the click run before or after it, ages aside.
    assert (aged(out), err, code) in ((aged(before[0]), *before[1:]), (aged(after[0]), *after[1:]))


def aged(text: str) -> list[list[str]]:
    """The words of each line, an age (``59s``, ``3m33s``) masked."""
    return [["AGE?" if AGE.fullmatch(word) else word for word in line.split()] for line in text.splitlines()]


def test_the_environment_names_the_home_as_for_click(home: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFX_HOME", str(home))
    assert fast(capsys, "version")[1:] == (*through_click("version")[:2], 0)


def test_no_daemon_is_the_same_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (("now",), ("version",), ("get", "pm")):
        line = ("--home", str(tmp_path / "nobody"), *args)
        answered, out, err, code = fast(capsys, *line)
        assert answered and (out, err, code) == through_click(*line)
        assert code == 1 and "cannot reach the mfx daemon" in err


@pytest.mark.parametrize("args", [
    ("get", "pm", "-o", "yaml"), ("get", "pm", "-o", "jsonpath={.items[*].metadata.name}"), ("get", "pm", "-w"),
    ("get", "pm", "--help"), ("get", "pm", "-o"), ("get", "pm", "--output", "-l"), ("get", "pm", "--unknown"),
    ("version", "--help"), ("version", "extra"), ("now", "--help"), ("--help", "get"), ("--home",), ("--verbose", "now"),
    ("play",), (),
])
def test_anything_else_is_left_to_click(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    answered, out, err, _ = fast(capsys, *args)
    assert not answered and out == err == ""


@pytest.mark.parametrize("width", sorted(TOP_HELP))
def test_the_kept_help_is_what_click_prints(width: int) -> None:
    # When this fails, the group's help changed: write it again with python -m mfx.cli.help_texts.
    assert TOP_HELP[width] == top_help(width)


def click_help(columns: int, flag: str) -> str:
    # A process of its own: click's test runner fixes the help's width at 80 columns.
    script = "from mfx.cli.root import build_cli; build_cli()(prog_name='mfx')"
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", script, flag], capture_output=True, text=True, env=env,
                          check=True).stdout


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_help_prints_what_click_prints(columns: int, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    for flag in ("--help", "-h"):
        answered, out, err, code = fast(capsys, flag)
        assert answered and (out, err, code) == (click_help(columns, flag), "", 0)


def test_a_help_width_not_kept_is_left_to_click(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "90")
    assert fast(capsys, "--help")[0] is False


def manifests(directory: Path, *names: str, version: str = "1.0.0") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / f"{name}.yaml").write_text(
            f"apiVersion: mfx.musicfox.io/v1alpha1\nkind: PluginManifest\nmetadata:\n  name: {name}\n"
            f"spec:\n  version: {version}\n  type: rpc\n  entryPoint: python -m quiet\n  suspend: true\n")
    return directory


def test_apply_through_the_fast_path_prints_what_click_prints(home: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder = manifests(tmp_path / "applied", "fast-one", "fast-two")
    answered, out, err, code = fast(capsys, "--home", str(home), "apply", "-f", str(folder))
    assert answered and code == 0 and err == ""
    assert out == ("pluginmanifest.mfx.musicfox.io/fast-one created\n"
                   "pluginmanifest.mfx.musicfox.io/fast-two created\n")
    manifests(folder, "fast-two", version="2.0.0")
    assert fast(capsys, "--home", str(home), "apply", "-f", str(folder))[1].endswith("/fast-two configured\n")
    manifests(folder, "fast-two", version="3.0.0")
    for args in (("apply", f"--filename={folder}", "--dry-run=server"), ("apply", f"-f{folder}", "--dry-run", "client"),
                 ("apply", "-f", str(folder)), ("apply", "--filename", str(folder), "-R"),
                 ("apply", "-f", str(folder / "fast-one.yaml"), "--force-conflicts")):
        line = ("--home", str(home), *args)
        if "--dry-run" not in " ".join(args):
            through_click(*line)  # what changes, changes once: both runs below find it applied
        answered, out, err, code = fast(capsys, *line)
        assert answered and (out, err, code) == through_click(*line), args


def test_apply_errors_through_the_fast_path_are_the_same(home: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    bad = manifests(tmp_path / "bad", "BAD_NAME")
    for line in (("--home", str(home), "apply", "-f", str(tmp_path / "nowhere")),
                 ("--home", str(home), "apply", "-f", str(tmp_path / "empty")),
                 ("--home", str(home), "apply", "-f", str(bad)), ("--home", str(home), "apply"),
                 ("--home", str(tmp_path / "nobody"), "apply", "-f", str(bad)),
                 ("--home", str(tmp_path / "nobody"), "apply", "-f", str(manifests(tmp_path / "good", "fine")))):
        answered, out, err, code = fast(capsys, *line)
        assert answered and code == 1 and (out, err, code) == through_click(*line), line


@pytest.mark.parametrize("args", [
    ("apply", "--help"), ("apply", "-f"), ("apply", "-f", "x", "--dry-run=maybe"), ("apply", "-f", "x", "extra"),
    ("apply", "-Rf", "x"), ("apply", "-f", "x", "--dry-run"), ("apply", "-f", "--recursive"), ("apply", "-l", "a=b"),
])
def test_apply_lines_the_fast_path_does_not_know_are_left_to_click(capsys: pytest.CaptureFixture[str],
                                                                  args: tuple[str, ...]) -> None:
    answered, out, err, _ = fast(capsys, *args)
    assert not answered and out == err == ""


def test_apply_reads_stdin_through_the_fast_path(home: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    text = (manifests(tmp_path / "piped", "from-stdin") / "from-stdin.yaml").read_bytes()
    # A new process, as a pipe into mfx runs it: the fast path reads the real stdin.
    done = subprocess.run([sys.executable, "-m", "mfx.cli", "--home", str(home), "apply", "-f", "-", "--dry-run=server"],
                          input=text, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"pluginmanifest.mfx.musicfox.io/from-stdin created (server dry run)\n"
