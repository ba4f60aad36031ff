"""``mfx apply --server-side``, as ``kubectl apply --server-side``: field managers, conflicts,
--force-conflicts, and GitSource-managed objects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.api.objects import GITSOURCE_OWNER_LABEL
from mfx.cli.client import Client, Endpoint
from tests.daemon_harness import ThreadDaemon, run_cli

PLUGIN = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata:
  name: {name}
  labels: {{tier: core}}
spec:
  version: 1.0.0
  type: rpc
  entryPoint: python -m hello
  priority: {priority}
  suspend: true
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with ThreadDaemon(tmp_path / "home").running() as daemon:
        yield daemon.config.home


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def live(home: Path, name: str = "alpha") -> dict[str, Any]:
    return yaml.safe_load(run_cli(home, "get", "pm", name, "-o", "yaml").output)  # type: ignore[no-any-return]


def managers(obj: dict[str, Any]) -> list[str]:
    return [entry["manager"] for entry in obj["metadata"].get("managedFields") or []]


def test_objects_are_applied_and_their_fields_owned_by_the_field_manager(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, PLUGIN.format(name="alpha", priority=1) + "---\n" + PLUGIN.format(name="beta", priority=2))
    result = run_cli(home, "apply", "--server-side", "-f", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["pluginmanifest.mfx.musicfox.io/alpha serverside-applied",
                                          "pluginmanifest.mfx.musicfox.io/beta serverside-applied"]
    assert managers(live(home)) == ["mfx"]
    again = run_cli(home, "apply", "--server-side", "--field-manager", "ops", "-f",
                    str(write(tmp_path, PLUGIN.format(name="alpha", priority=1).replace("tier: core", "tier: core, team: ops"))))
    assert again.exit_code == 0
    obj = live(home)
    assert obj["metadata"]["labels"] == {"tier": "core", "team": "ops"}
    assert sorted(managers(obj)) == ["mfx", "ops"]


def test_a_field_another_manager_owns_is_a_conflict_until_forced(home: Path, tmp_path: Path) -> None:
    run_cli(home, "apply", "--server-side", "--field-manager", "flux", "-f",
            str(write(tmp_path, PLUGIN.format(name="alpha", priority=1))))
    mine = write(tmp_path, PLUGIN.format(name="alpha", priority=9), "mine.yaml")
    refused = run_cli(home, "apply", "--server-side", "-f", str(mine))
    assert refused.exit_code == 1
    assert "conflict" in refused.output and "flux" in refused.output and "spec.priority" in refused.output
    assert str(mine) in refused.output  # the file, as every apply error names it
    assert "re-run with --force-conflicts" in refused.output
    assert live(home)["spec"]["priority"] == 1
    forced = run_cli(home, "apply", "--server-side", "--force-conflicts", "-f", str(mine))
    assert forced.exit_code == 0
    assert live(home)["spec"]["priority"] == 9


def test_an_invalid_object_is_refused_with_its_file_line_and_field(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, PLUGIN.format(name="alpha", priority="high"))
    result = run_cli(home, "apply", "--server-side", "-f", str(path))
    assert result.exit_code == 1
    assert f"{path}" in result.output and "spec.priority" in result.output
    assert run_cli(home, "get", "pm", "alpha").exit_code == 1


def test_a_server_dry_run_stores_nothing_and_a_client_one_is_refused(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, PLUGIN.format(name="alpha", priority=1))
    dry = run_cli(home, "apply", "--server-side", "--dry-run=server", "-f", str(path))
    assert dry.exit_code == 0 and dry.output == "pluginmanifest.mfx.musicfox.io/alpha serverside-applied (server dry run)\n"
    assert run_cli(home, "get", "pm", "alpha").exit_code == 1
    client = run_cli(home, "apply", "--server-side", "--dry-run=client", "-f", str(path))
    assert client.exit_code == 2 and "--dry-run=server" in client.output


def test_a_gitsource_managed_object_is_changed_only_with_force(home: Path, tmp_path: Path) -> None:
    managed = PLUGIN.format(name="alpha", priority=1).replace("tier: core", f"tier: core, {GITSOURCE_OWNER_LABEL}: plugins")
    assert run_cli(home, "apply", "-f", str(write(tmp_path, managed))).exit_code == 0
    same = run_cli(home, "apply", "--server-side", "-f", str(write(tmp_path, managed, "same.yaml")))
    assert same.exit_code == 0  # applying what git says changes nothing: no conflict
    changed = write(tmp_path, managed.replace("priority: 1", "priority: 3"), "changed.yaml")
    refused = run_cli(home, "apply", "--server-side", "-f", str(changed))
    assert refused.exit_code == 1 and "managed by gitsource/plugins" in refused.output
    assert "spec.priority changed from 1 to 3" in refused.output
    assert live(home)["spec"]["priority"] == 1
    forced = run_cli(home, "apply", "--server-side", "--force-conflicts", "-f", str(changed))
    assert forced.exit_code == 0 and "the next sync will revert it" in forced.output
    assert live(home)["spec"]["priority"] == 3


def test_kubectl_sees_the_same_managers(home: Path, tmp_path: Path) -> None:
    """What the API holds after it is what a kubectl server-side apply leaves."""
    run_cli(home, "apply", "--server-side", "-f", str(write(tmp_path, PLUGIN.format(name="alpha", priority=1))))
    with Client(Endpoint(socket=home / "mfx.sock")) as client:
        obj = client.get(PLUGIN_MANIFEST, "alpha")
    entry = obj["metadata"]["managedFields"][0]
    assert entry["operation"] == "Apply" and entry["fieldsType"] == "FieldsV1"
    assert "f:priority" in entry["fieldsV1"]["f:spec"]
