"""``mfx create -f`` and ``mfx replace -f`` against a real daemon, as kubectl's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.daemon_harness import ThreadDaemon, run_cli
from tests.test_apply import plugin_yaml


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with ThreadDaemon(tmp_path / "home").running() as daemon:  # no controllers: nothing starts
        yield daemon.config.home


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def live(home: Path, name: str) -> dict[str, Any]:
    return yaml.safe_load(run_cli(home, "get", "pm", name, "-o", "yaml").output)  # type: ignore[no-any-return]


def test_create_stores_new_objects_and_refuses_existing_ones(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", plugin_yaml("alpha") + "---\n" + plugin_yaml("beta"))
    created = run_cli(home, "create", "-f", str(path))
    assert created.exit_code == 0
    assert created.output.splitlines() == ["pluginmanifest.mfx.musicfox.io/alpha created",
                                           "pluginmanifest.mfx.musicfox.io/beta created"]
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (live(home, "alpha")["metadata"].get("annotations") or {})
    write(tmp_path / "p.yaml", plugin_yaml("alpha") + "---\n" + plugin_yaml("gamma"))
    again = run_cli(home, "create", "-f", str(path))
    assert again.exit_code == 1
    assert f"{path}: " in again.output and "already exists" in again.output and "alpha" in again.output
    assert "pluginmanifest.mfx.musicfox.io/gamma created" in again.output  # the others are written all the same


def test_save_config_lets_a_later_apply_merge(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", plugin_yaml("alpha"))
    assert run_cli(home, "create", "--save-config", "-f", str(path)).exit_code == 0
    annotations = live(home, "alpha")["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in annotations
    applied = run_cli(home, "apply", "-f", str(write(path, plugin_yaml("alpha", version="1.1.0"))))
    assert applied.output == "pluginmanifest.mfx.musicfox.io/alpha configured\n"


def test_replace_overwrites_with_the_document_as_it_is(home: Path, tmp_path: Path) -> None:
    run_cli(home, "create", "-f", str(write(tmp_path / "p.yaml", plugin_yaml("alpha"))))
    document = live(home, "alpha")
    document["spec"]["version"] = "2.0.0"
    del document["spec"]["interfaces"]  # left out: removed
    replaced = run_cli(home, "replace", "-f", str(write(tmp_path / "r.yaml", yaml.safe_dump(document))))
    assert replaced.exit_code == 0 and replaced.output == "pluginmanifest.mfx.musicfox.io/alpha replaced\n"
    spec = live(home, "alpha")["spec"]
    assert spec["version"] == "2.0.0" and "interfaces" not in spec
    # the same document again carries a resourceVersion that is no longer current
    stale = run_cli(home, "replace", "-f", str(tmp_path / "r.yaml"))
    assert stale.exit_code == 1 and "modified" in stale.output


def test_replace_needs_the_object(home: Path, tmp_path: Path) -> None:
    result = run_cli(home, "replace", "-f", str(write(tmp_path / "p.yaml", plugin_yaml("nobody"))))
    assert result.exit_code == 1 and "not found" in result.output


def test_an_invalid_document_is_named_by_file_line_and_field(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", plugin_yaml("alpha").replace("version: 1.0.0", "version: one"))
    result = run_cli(home, "create", "-f", str(path))
    assert result.exit_code == 1
    assert str(path) in result.output and "spec.version" in result.output
    assert run_cli(home, "get", "pm", "alpha").exit_code == 1


def test_a_server_dry_run_stores_nothing(home: Path, tmp_path: Path) -> None:
    result = run_cli(home, "create", "--dry-run=server", "-f", str(write(tmp_path / "p.yaml", plugin_yaml("alpha"))))
    assert result.output == "pluginmanifest.mfx.musicfox.io/alpha created (server dry run)\n"
    assert run_cli(home, "get", "pm", "alpha").exit_code == 1


def test_replace_force_deletes_and_creates_again(home: Path, tmp_path: Path) -> None:
    run_cli(home, "create", "-f", str(write(tmp_path / "p.yaml", plugin_yaml("alpha"))))
    before = live(home, "alpha")
    document = dict(before)
    document["spec"] = {**before["spec"], "version": "2.0.0"}
    path = write(tmp_path / "r.yaml", yaml.safe_dump(document))
    run_cli(home, "label", "pm", "alpha", "tier=x", "--overwrite")  # the document's resourceVersion is stale now
    assert run_cli(home, "replace", "-f", str(path)).exit_code == 1  # as a plain replace says
    forced = run_cli(home, "replace", "--force", "-f", str(path))
    assert forced.exit_code == 0, forced.output
    assert forced.output.splitlines() == ['pluginmanifest.mfx.musicfox.io "alpha" deleted',
                                          "pluginmanifest.mfx.musicfox.io/alpha replaced"]
    after = live(home, "alpha")
    assert after["spec"]["version"] == "2.0.0"
    assert after["metadata"]["uid"] != before["metadata"]["uid"]  # a new object, not an update
    assert after["metadata"]["labels"].get("tier") != "x"  # what the document says, not the live object
    # an object that is not there is created
    missing = run_cli(home, "replace", "--force", "-f", str(write(tmp_path / "n.yaml", plugin_yaml("beta"))))
    assert missing.output == "pluginmanifest.mfx.musicfox.io/beta replaced\n"


def test_replace_force_waits_for_the_finalizers(home: Path, tmp_path: Path) -> None:
    held = yaml.safe_load(plugin_yaml("alpha"))
    held["metadata"]["finalizers"] = ["example.com/hold"]
    run_cli(home, "create", "-f", str(write(tmp_path / "p.yaml", yaml.safe_dump(held))))
    forced = run_cli(home, "replace", "--force", "--timeout=1s", "-f", str(write(tmp_path / "r.yaml", plugin_yaml("alpha"))))
    assert forced.exit_code == 1
    assert "still held by its finalizers: example.com/hold" in forced.output
    assert live(home, "alpha")["metadata"]["deletionTimestamp"]  # deleted, not created again meanwhile


def test_replace_force_has_no_dry_run(home: Path, tmp_path: Path) -> None:
    result = run_cli(home, "replace", "--force", "--dry-run=server", "-f", str(write(tmp_path / "p.yaml", plugin_yaml("a"))))
    assert result.exit_code == 1 and "drop --dry-run, or --force" in result.output
