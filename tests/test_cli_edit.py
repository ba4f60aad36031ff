"""``mfx edit`` against a real daemon, with editors that are scripts doing what a user would."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.cli.client import Client, Endpoint
from mfx.cli.edit import without_comments
from tests.daemon_harness import ThreadDaemon, run_cli

PLUGIN = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata:
  name: alpha
  labels: {tier: core}
spec:
  version: 1.0.0
  type: rpc
  entryPoint: python -m hello
  priority: 1
  suspend: true
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with ThreadDaemon(tmp_path / "home").running() as daemon:
        assert run_cli(daemon.config.home, "apply", "-f", "-", input=PLUGIN).exit_code == 0
        yield daemon.config.home


def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """An editor: a Python script run on the file (``path``, ``text``: its text; what it leaves
    in ``text`` is saved). Each text it was given is appended to the returned log."""
    log = tmp_path / "editor.log"
    script = tmp_path / "editor.py"
    script.write_text("import pathlib, sys\npath = pathlib.Path(sys.argv[1])\ntext = path.read_text()\n"
                      f"with open({str(log)!r}, 'a') as log:\n    log.write(text + '\\n=====\\n')\n"
                      f"{body}\npath.write_text(text)\n")
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")
    monkeypatch.delenv("MFX_EDITOR", raising=False)
    return log


def opened(log: Path) -> list[str]:
    return log.read_text().split("\n=====\n")[:-1]


def live(home: Path) -> dict[str, Any]:
    return yaml.safe_load(run_cli(home, "get", "pm", "alpha", "-o", "yaml").output)  # type: ignore[no-any-return]


def test_a_saved_change_is_applied(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = editor(tmp_path, monkeypatch, "text = text.replace('priority: 1', 'priority: 7')")
    result = run_cli(home, "edit", "pm", "alpha")
    assert result.exit_code == 0 and result.output == "pluginmanifest.mfx.musicfox.io/alpha edited\n"
    assert live(home)["spec"]["priority"] == 7
    text = opened(log)[0]
    assert text.startswith("# Please edit the object below.")
    assert "name: alpha" in text and "priority: 1" in text


def test_unchanged_or_empty_cancels(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = live(home)
    editor(tmp_path, monkeypatch, "text = text.replace('# Please', '#  Please')")  # a comment only
    unchanged = run_cli(home, "edit", "pm/alpha")
    assert unchanged.exit_code == 0 and "Edit cancelled, no changes made." in unchanged.output
    editor(tmp_path, monkeypatch, "text = ''")
    empty = run_cli(home, "edit", "pm/alpha")
    assert empty.exit_code == 0 and "Edit cancelled, saved file was empty." in empty.output
    assert live(home) == before


def test_a_refused_change_reopens_the_file_with_the_error(home: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    log = editor(tmp_path, monkeypatch, (
        "if 'spec.priority' in text:\n"
        "    text = text.replace('priority: bad', 'priority: 2')\n"
        "else:\n"
        "    text = text.replace('priority: 1', 'priority: bad')"))
    result = run_cli(home, "edit", "pm", "alpha")
    assert result.exit_code == 0 and "alpha edited" in result.output
    second = opened(log)[1]
    assert "# pluginmanifest.mfx.musicfox.io/alpha: spec.priority: must be an integer" in second
    assert "priority: bad" in second  # what was saved, not the object as it was
    assert live(home)["spec"]["priority"] == 2


def test_saving_the_refused_text_again_gives_up_and_keeps_a_copy(home: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    before = live(home)
    editor(tmp_path, monkeypatch, "text = text.replace('priority: 1', 'priority: bad')")
    result = run_cli(home, "edit", "pm", "alpha")
    assert result.exit_code == 1
    assert "spec.priority: must be an integer" in result.output
    assert "no valid changes were saved" in result.output
    kept = Path(result.output.split("a copy of your changes is in ")[1].split()[0])
    assert "priority: bad" in kept.read_text()
    kept.unlink()
    assert live(home) == before


def test_the_name_cannot_be_edited(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    editor(tmp_path, monkeypatch, "text = text.replace('name: alpha', 'name: beta')")
    result = run_cli(home, "edit", "pm", "alpha")
    assert result.exit_code == 1 and "metadata.name cannot be changed" in result.output
    assert run_cli(home, "get", "pm", "beta").exit_code == 1


def test_a_change_made_meanwhile_is_kept(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what the user changed is sent: a label set while the editor was open stays."""
    socket = str(home / "mfx.sock")
    editor(tmp_path, monkeypatch, (
        "from mfx.cli.client import Client, Endpoint\n"
        "from mfx.api.kinds import PLUGIN_MANIFEST\n"
        f"with Client(Endpoint(socket={socket!r})) as client:\n"
        "    client.patch(PLUGIN_MANIFEST, 'alpha', {'metadata': {'labels': {'owner': 'someone-else'}}})\n"
        "text = text.replace('priority: 1', 'priority: 5')"))
    assert run_cli(home, "edit", "pm", "alpha").exit_code == 0
    obj = live(home)
    assert obj["spec"]["priority"] == 5
    assert obj["metadata"]["labels"] == {"tier": "core", "owner": "someone-else"}


def test_managed_fields_are_not_shown_and_are_kept(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Client(Endpoint(socket=home / "mfx.sock")) as client:
        applied = yaml.safe_load(PLUGIN.replace("name: alpha", "name: ssa"))
        client.request("PATCH", f"{PLUGIN_MANIFEST.resource_path}/ssa", params={"fieldManager": "flux"},
                       body=applied, content_type="application/apply-patch+yaml")
    log = editor(tmp_path, monkeypatch, "text = text.replace('\"priority\": 1', '\"priority\": 4')")
    assert run_cli(home, "edit", "pm", "ssa", "-o", "json").output == "pluginmanifest.mfx.musicfox.io/ssa edited\n"
    assert "managedFields" not in opened(log)[0] and '"priority": 1' in opened(log)[0]
    obj = yaml.safe_load(run_cli(home, "get", "pm", "ssa", "-o", "yaml").output)
    assert obj["spec"]["priority"] == 4
    assert [entry["manager"] for entry in obj["metadata"]["managedFields"]][0] == "flux"


def test_an_editor_that_cannot_run_is_named(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFX_EDITOR", "no-such-editor-here --wait")
    result = run_cli(home, "edit", "pm", "alpha")
    assert result.exit_code == 1
    assert "cannot run the editor 'no-such-editor-here'" in result.output and "set EDITOR" in result.output



def test_several_objects_open_as_one_list(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(home, "apply", "-f", "-", input=PLUGIN.replace("name: alpha", "name: beta")).exit_code == 0
    log = editor(tmp_path, monkeypatch, "text = text.replace('priority: 1', 'priority: 3')")
    result = run_cli(home, "edit", "pm", "alpha", "beta")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["pluginmanifest.mfx.musicfox.io/alpha edited",
                                          "pluginmanifest.mfx.musicfox.io/beta edited"]
    assert len(opened(log)) == 1  # one editor session, as kubectl opens them
    document = yaml.safe_load(opened(log)[0])
    assert (document["apiVersion"], document["kind"]) == ("v1", "List")
    assert [item["metadata"]["name"] for item in document["items"]] == ["alpha", "beta"]
    for name in ("alpha", "beta"):
        obj = yaml.safe_load(run_cli(home, "get", "pm", name, "-o", "yaml").output)
        assert obj["spec"]["priority"] == 3


def test_in_a_list_the_refused_object_is_opened_again_alone(home: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """What could be changed is changed; the object the daemon refused comes back with its error."""
    assert run_cli(home, "apply", "-f", "-", input=PLUGIN.replace("name: alpha", "name: beta")).exit_code == 0
    log = editor(tmp_path, monkeypatch, (
        "import yaml\n"
        "body = yaml.safe_load(''.join(l for l in text.splitlines(True) if not l.startswith('#')))\n"
        "if body['kind'] == 'List':\n"
        "    body['items'][0]['spec']['priority'] = 'bad'\n"
        "    body['items'][1]['spec']['priority'] = 9\n"
        "else:\n"
        "    body['spec']['priority'] = 6\n"
        "text = yaml.safe_dump(body)"))
    result = run_cli(home, "edit", "pm/alpha", "pm/beta")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["pluginmanifest.mfx.musicfox.io/beta edited",
                                          "pluginmanifest.mfx.musicfox.io/alpha edited"]
    second = opened(log)[1]
    assert "# pluginmanifest.mfx.musicfox.io/alpha: spec.priority: must be an integer" in second
    reopened = yaml.safe_load(without_comments(second))
    assert reopened["metadata"]["name"] == "alpha" and reopened["spec"]["priority"] == "bad"  # what was saved
    assert live(home)["spec"]["priority"] == 6
    beta = yaml.safe_load(run_cli(home, "get", "pm", "beta", "-o", "yaml").output)
    assert beta["spec"]["priority"] == 9


def test_objects_cannot_be_dropped_from_the_list(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(home, "apply", "-f", "-", input=PLUGIN.replace("name: alpha", "name: beta")).exit_code == 0
    editor(tmp_path, monkeypatch, (
        "import yaml\n"
        "body = yaml.safe_load(''.join(l for l in text.splitlines(True) if not l.startswith('#')))\n"
        "body['items'] = body['items'][:1]\n"
        "body['items'][0]['spec']['priority'] = 8\n"
        "text = yaml.safe_dump(body)"))
    result = run_cli(home, "edit", "pm", "alpha", "beta")
    assert result.exit_code == 1 and "objects cannot be removed by an edit" in result.output
    assert live(home)["spec"]["priority"] == 1  # nothing was sent


def test_a_kind_alone_or_a_selector_edits_every_object_it_names(home: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    other = PLUGIN.replace("name: alpha", "name: beta").replace("tier: core", "tier: edge")
    assert run_cli(home, "apply", "-f", "-", input=other).exit_code == 0
    log = editor(tmp_path, monkeypatch, "text = text.replace('priority: 1', 'priority: 2')")
    selected = run_cli(home, "edit", "pm", "-l", "tier=edge")
    assert selected.output == "pluginmanifest.mfx.musicfox.io/beta edited\n"
    assert "name: alpha" not in opened(log)[0]
    every = run_cli(home, "edit", "pm")
    assert every.output == "pluginmanifest.mfx.musicfox.io/alpha edited\n"  # beta has priority 2 already
    assert "kind: List" in opened(log)[1]
    none = run_cli(home, "edit", "pm", "-l", "tier=nowhere")
    assert none.exit_code == 0 and "No resources found" in none.output
    both = run_cli(home, "edit", "pm", "alpha", "-l", "tier=edge")
    assert both.exit_code == 1 and "name cannot be provided when a selector is specified" in both.output
