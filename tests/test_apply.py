"""`mfx apply/get/describe/diff/delete/wait/explain` behave like kubectl, against a real daemon."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.daemon_harness import ThreadDaemon, run_cli

PLUGIN = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata:
  name: {name}
  labels: {{tier: {tier}}}
spec:
  version: {version}
  type: rpc
  entryPoint: python -m {module}
  interfaces: [MusicSource]
"""

SINK = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: AudioSink
metadata:
  name: speakers
spec:
  device: default
  rate: 48000
"""


def plugin_yaml(name: str, *, version: str = "1.0.0", tier: str = "core", module: str = "hello") -> str:
    return PLUGIN.format(name=name, version=version, tier=tier, module=module)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[ThreadDaemon]:
    with ThreadDaemon(tmp_path / "home").running() as running:
        yield running


@pytest.fixture
def home(daemon: ThreadDaemon) -> Path:
    return daemon.config.home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_apply_directory_then_get_table_and_names(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    write(folder / "a.yaml", plugin_yaml("alpha"))
    write(folder / "b.yaml", plugin_yaml("beta", tier="extra") + "---\n" + SINK)
    result = run_cli(home, "apply", "-f", str(folder))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "pluginmanifest.mfx.musicfox.io/alpha created",
        "pluginmanifest.mfx.musicfox.io/beta created",
        "audiosink.mfx.musicfox.io/speakers created",
    ]
    table = run_cli(home, "get", "pm")
    assert table.exit_code == 0
    header, *rows = table.output.splitlines()
    assert header.split()[:3] == ["NAME", "VERSION", "TYPE"]
    assert [r.split()[0] for r in rows] == ["alpha", "beta"]
    assert run_cli(home, "get", "pluginmanifests", "-o", "name", "-l", "tier=extra").output == \
        "pluginmanifest.mfx.musicfox.io/beta\n"
    everything = run_cli(home, "get", "all").output
    assert "pluginmanifest.mfx.musicfox.io/alpha" in everything
    assert "audiosink.mfx.musicfox.io/speakers" in everything


def test_reapplying_get_yaml_output_is_a_no_op(home: Path, tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", plugin_yaml("alpha"))
    assert run_cli(home, "apply", "-f", str(tmp_path / "p.yaml")).exit_code == 0
    exported = run_cli(home, "get", "pm", "alpha", "-o", "yaml").output
    before = yaml.safe_load(exported)
    assert before["metadata"]["generation"] == 1
    assert before["spec"]["healthCheck"]["interval"]  # defaults from the CRD were stored
    again = run_cli(home, "apply", "-f", "-", input=exported)
    assert again.output.strip() == "pluginmanifest.mfx.musicfox.io/alpha unchanged"
    after = yaml.safe_load(run_cli(home, "get", "pm/alpha", "-o", "yaml").output)
    assert after["metadata"]["generation"] == 1
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_spec_change_bumps_generation_and_label_change_does_not(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", plugin_yaml("alpha"))
    run_cli(home, "apply", "-f", str(path))
    write(path, plugin_yaml("alpha", tier="other"))
    assert run_cli(home, "apply", "-f", str(path)).output.strip().endswith("configured")
    obj = yaml.safe_load(run_cli(home, "get", "pm", "alpha", "-o", "yaml").output)
    assert obj["metadata"]["generation"] == 1 and obj["metadata"]["labels"] == {"tier": "other"}
    write(path, plugin_yaml("alpha", tier="other", version="1.1.0"))
    run_cli(home, "apply", "-f", str(path))
    obj = yaml.safe_load(run_cli(home, "get", "pm", "alpha", "-o", "json").output)
    assert obj["metadata"]["generation"] == 2 and obj["spec"]["version"] == "1.1.0"


def test_diff_exit_codes(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", plugin_yaml("alpha"))
    new = run_cli(home, "diff", "-f", str(path))
    assert new.exit_code == 1 and "+  name: alpha" in new.output.replace("+  name", "+  name")
    run_cli(home, "apply", "-f", str(path))
    same = run_cli(home, "diff", "-f", str(path))
    assert same.exit_code == 0 and same.output == ""
    write(path, plugin_yaml("alpha", version="2.0.0"))
    changed = run_cli(home, "diff", "-f", str(path))
    assert changed.exit_code == 1
    assert "-  version: 1.0.0" in changed.output and "+  version: 2.0.0" in changed.output
    write(path, plugin_yaml("alpha", version="not-a-version"))
    broken = run_cli(home, "diff", "-f", str(path))
    assert broken.exit_code == 2
    assert "spec.version" in broken.output


def test_invalid_multi_document_apply_writes_nothing(home: Path, tmp_path: Path) -> None:
    good = plugin_yaml("good")
    bad = plugin_yaml("bad").replace("interfaces: [MusicSource]", "interfaces: [MusicSource]\n  dependencies:\n    - {name: x, version: '^^1'}")
    path = write(tmp_path / "set.yaml", good + "---\n" + bad)
    result = run_cli(home, "apply", "-f", str(path))
    assert result.exit_code == 1
    assert f"{path}:" in result.output
    assert 'spec.dependencies[0].version: "^^1" is not a version constraint' in result.output
    assert run_cli(home, "get", "pm", "-o", "name").output == ""


def test_unknown_field_and_kind_are_named(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "typo.yaml", plugin_yaml("alpha").replace("interfaces:", "interfacez:"))
    result = run_cli(home, "apply", "-f", str(path))
    assert result.exit_code == 1
    assert "spec.interfacez" in result.output and "interfaces" in result.output
    other = write(tmp_path / "kind.yaml", "apiVersion: mfx.musicfox.io/v1alpha1\nkind: Speaker\nmetadata: {name: x}\n")
    result = run_cli(home, "apply", "-f", str(other))
    assert result.exit_code == 1
    assert "PluginManifest" in result.output and "AudioSink" in result.output and "GitSource" in result.output


def test_delete_by_name_file_and_selector(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", plugin_yaml("alpha") + "---\n" + plugin_yaml("beta", tier="x") +
                 "---\n" + plugin_yaml("gamma", tier="x"))
    run_cli(home, "apply", "-f", str(path))
    assert run_cli(home, "delete", "pm", "alpha").output.strip() == 'pluginmanifest.mfx.musicfox.io "alpha" deleted'
    assert run_cli(home, "delete", "pm", "-l", "tier=x").exit_code == 0
    assert run_cli(home, "get", "pm", "-o", "name").output == ""
    missing = run_cli(home, "delete", "pm", "nope")
    assert missing.exit_code == 1 and 'not found' in missing.output


def test_delete_all_of_a_kind(home: Path, tmp_path: Path) -> None:
    """``mfx delete pm --all``, as a kubectl user types it."""
    path = write(tmp_path / "p.yaml", plugin_yaml("alpha") + "---\n" + plugin_yaml("beta", tier="x"))
    run_cli(home, "apply", "-f", str(path))
    result = run_cli(home, "delete", "pm", "--all")
    assert result.exit_code == 0
    assert result.output.splitlines() == ['pluginmanifest.mfx.musicfox.io "alpha" deleted',
                                          'pluginmanifest.mfx.musicfox.io "beta" deleted']
    assert run_cli(home, "get", "pm", "-o", "name").output == ""
    again = run_cli(home, "delete", "pm", "--all")
    assert again.exit_code == 0 and "No resources found" in again.output
    named = run_cli(home, "delete", "pm", "alpha", "--all")
    assert named.exit_code == 1 and "name cannot be provided when a selector is specified" in named.output
    both = run_cli(home, "delete", "pm", "--all", "-l", "tier=x")
    assert both.exit_code == 1 and "give --all or -l SELECTOR, not both" in both.output
    bare = run_cli(home, "delete", "pm")
    assert bare.exit_code == 1 and "pm -l SELECTOR or pm --all" in bare.output


def test_describe_shows_spec_conditions_and_events(daemon: ThreadDaemon, home: Path, tmp_path: Path) -> None:
    run_cli(home, "apply", "-f", str(write(tmp_path / "p.yaml", plugin_yaml("alpha"))))
    text = run_cli(home, "describe", "pm", "alpha").output
    assert "Name:         alpha" in text
    assert "Entry Point:  python -m hello" in text
    assert "Events:       <none>" in text
    from mfx.store.base import EventRecord

    assert daemon.context is not None
    obj = yaml.safe_load(run_cli(home, "get", "pm", "alpha", "-o", "yaml").output)
    record = EventRecord("PluginManifest", "alpha", obj["metadata"]["uid"], "Warning", "BackOff", "restarting")
    daemon.call(daemon.context.store.record_event, record)
    text = run_cli(home, "describe", "pm/alpha").output
    assert "BackOff" in text and "restarting" in text
    events = run_cli(home, "events", "--for", "pm/alpha").output
    assert "BackOff" in events and "pluginmanifest/alpha" in events


def test_wait_times_out_with_a_clear_message(home: Path, tmp_path: Path) -> None:
    run_cli(home, "apply", "-f", str(write(tmp_path / "p.yaml", plugin_yaml("alpha"))))
    result = run_cli(home, "wait", "--for=condition=Ready", "pm/alpha", "--timeout=1s")
    assert result.exit_code == 1
    assert "timed out waiting for the condition on pluginmanifests/alpha" in result.output


def test_wait_for_delete(home: Path, tmp_path: Path) -> None:
    run_cli(home, "apply", "-f", str(write(tmp_path / "p.yaml", plugin_yaml("alpha"))))
    run_cli(home, "delete", "pm", "alpha", "--no-wait")
    assert run_cli(home, "wait", "--for=delete", "pm/alpha", "--timeout=10s").exit_code == 0


def test_explain_and_api_resources(home: Path) -> None:
    text = run_cli(home, "explain", "pm.spec.healthCheck").output
    assert "KIND:" in text and "PluginManifest" in text and "interval" in text
    wrong = run_cli(home, "explain", "pm.spec.nope")
    assert wrong.exit_code == 1
    resources = run_cli(home, "api-resources").output
    assert "pluginmanifests" in resources and "pm" in resources and "gitsources" in resources


def test_dry_run_server_stores_nothing(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", plugin_yaml("alpha"))
    result = run_cli(home, "apply", "-f", str(path), "--dry-run=server")
    assert result.output.strip() == "pluginmanifest.mfx.musicfox.io/alpha created (server dry run)"
    assert run_cli(home, "get", "pm", "-o", "name").output == ""


def test_cli_without_daemon_says_how_to_start_it(tmp_path: Path) -> None:
    home = tmp_path / "nobody-home"
    result = run_cli(home, "get", "pm")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: cannot reach the mfx daemon at {home / 'mfx.sock'}: start it with 'mfx serve'")
