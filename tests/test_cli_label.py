"""``mfx label`` and ``mfx annotate`` against a real daemon, as a kubectl user types them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mfx.cli.label import LABELS, split_arguments
from mfx.errors import BadRequestError
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.test_apply import plugin_yaml


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with ThreadDaemon(tmp_path / "home").running() as daemon:  # no controllers: nothing starts
        manifests = tmp_path / "p.yaml"
        manifests.write_text(plugin_yaml("alpha", tier="core") + "---\n" + plugin_yaml("beta", tier="x"))
        assert run_cli(daemon.config.home, "apply", "-f", str(manifests)).exit_code == 0
        yield daemon.config.home


def metadata(home: Path, name: str) -> dict[str, Any]:
    return yaml.safe_load(run_cli(home, "get", "pm", name, "-o", "yaml").output)["metadata"]  # type: ignore[no-any-return]


def test_set_overwrite_and_remove_a_label(home: Path) -> None:
    added = run_cli(home, "label", "pm", "alpha", "rollout=canary")
    assert added.exit_code == 0 and added.output == "pluginmanifest.mfx.musicfox.io/alpha labeled\n"
    assert metadata(home, "alpha")["labels"] == {"tier": "core", "rollout": "canary"}

    refused = run_cli(home, "label", "pm", "alpha", "tier=edge")
    assert refused.exit_code == 1
    assert "label 'tier' already has a value (core), and --overwrite is false" in refused.output
    assert metadata(home, "alpha")["labels"]["tier"] == "core"

    assert run_cli(home, "label", "pm/alpha", "tier=edge", "--overwrite").exit_code == 0
    assert metadata(home, "alpha")["labels"]["tier"] == "edge"
    same = run_cli(home, "label", "pm", "alpha", "tier=edge")  # the value it has: no --overwrite needed
    assert same.exit_code == 0 and same.output == "pluginmanifest.mfx.musicfox.io/alpha not labeled\n"

    removed = run_cli(home, "label", "pm", "alpha", "rollout-", "never-")
    assert removed.exit_code == 0
    assert "label 'never' not found on pluginmanifest.mfx.musicfox.io/alpha" in removed.output
    assert metadata(home, "alpha")["labels"] == {"tier": "edge"}
    # what selects on labels sees the change
    assert run_cli(home, "get", "pm", "-l", "tier=edge", "-o", "name").output == "pluginmanifest.mfx.musicfox.io/alpha\n"


def test_every_object_or_a_selection(home: Path) -> None:
    everything = run_cli(home, "annotate", "pm", "--all", "owner=ops team")
    assert everything.exit_code == 0
    assert everything.output.splitlines() == ["pluginmanifest.mfx.musicfox.io/alpha annotated",
                                              "pluginmanifest.mfx.musicfox.io/beta annotated"]
    assert metadata(home, "beta")["annotations"]["owner"] == "ops team"
    assert run_cli(home, "annotate", "pm", "-l", "tier=x", "owner-").exit_code == 0
    assert "owner" not in (metadata(home, "beta").get("annotations") or {})
    assert metadata(home, "alpha")["annotations"]["owner"] == "ops team"
    nothing = run_cli(home, "label", "pm", "-l", "tier=none", "a=b")
    assert nothing.exit_code == 0 and "No resources found" in nothing.output


def test_one_refused_object_leaves_the_others_changed(home: Path) -> None:
    """As kubectl: each object is reported, the command fails at the end."""
    run_cli(home, "label", "pm", "beta", "rollout=a")
    result = run_cli(home, "label", "pm", "--all", "rollout=b")
    assert result.exit_code == 1
    assert "pluginmanifest.mfx.musicfox.io/alpha labeled" in result.output
    assert "pluginmanifest.mfx.musicfox.io/beta: label 'rollout' already has a value (a)" in result.output
    assert metadata(home, "alpha")["labels"]["rollout"] == "b"
    assert metadata(home, "beta")["labels"]["rollout"] == "a"


def test_a_bad_key_is_refused_by_the_daemon_with_its_field_path(home: Path) -> None:
    before = metadata(home, "alpha")
    result = run_cli(home, "label", "pm", "alpha", "bad key!=v")
    assert result.exit_code == 1
    assert 'metadata.labels["bad key!"]' in result.output and "not a valid key" in result.output
    assert "Traceback" not in result.output
    assert metadata(home, "alpha") == before


def test_a_stale_resource_version_is_a_conflict(home: Path) -> None:
    version = metadata(home, "alpha")["resourceVersion"]
    assert run_cli(home, "label", "pm", "alpha", "a=1").exit_code == 0
    stale = run_cli(home, "label", "pm", "alpha", "b=2", "--resource-version", version)
    assert stale.exit_code == 1 and "modified" in stale.output
    assert "b" not in metadata(home, "alpha")["labels"]
    current = metadata(home, "alpha")["resourceVersion"]
    assert run_cli(home, "label", "pm", "alpha", "b=2", "--resource-version", current).exit_code == 0


def test_a_server_dry_run_changes_nothing(home: Path) -> None:
    result = run_cli(home, "label", "pm", "alpha", "a=1", "--dry-run=server")
    assert result.output == "pluginmanifest.mfx.musicfox.io/alpha labeled (server dry run)\n"
    assert "a" not in metadata(home, "alpha")["labels"]


@pytest.mark.parametrize(("args", "message"), [
    (("pm", "alpha"), "name at least one label to change"),
    (("pm", "alpha", "=v"), "needs a key before '='"),
    (("pm", "alpha", "a=1", "a-"), "both set and removed"),
])
def test_what_cannot_be_a_change_is_refused_before_any_request(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        split_arguments(args, LABELS)


def test_choosing_objects_two_ways_is_refused(home: Path) -> None:
    named = run_cli(home, "label", "pm", "alpha", "--all", "a=1")
    assert named.exit_code == 1 and "name cannot be provided when a selector is specified" in named.output
    both = run_cli(home, "label", "pm", "--all", "-l", "tier=x", "a=1")
    assert both.exit_code == 1 and "give --all or -l SELECTOR, not both" in both.output
    bare = run_cli(home, "label", "pm", "a=1")
    assert bare.exit_code == 1 and "pm -l SELECTOR or pm --all" in bare.output
    assert "a" not in metadata(home, "alpha")["labels"]


@pytest.mark.parametrize("command", [
    ("delete",),
    ("label", "seen=1"),
    ("annotate", "seen=1"),
    ("wait", "--for=condition=Ready", "--timeout=1s"),
    ("rollout", "restart"),
])
def test_every_command_that_chooses_objects_refuses_names_with_a_selector(home: Path,
                                                                          command: tuple[str, ...]) -> None:
    """kubectl never lets a selector narrow the names given: ``delete pm alpha -l tier=x``
    is refused, not a delete of alpha whatever its labels (nor a selector silently dropped)."""
    verb, extra = (command[:2], command[2:]) if command[0] == "rollout" else (command[:1], command[1:])
    names_and_selector = run_cli(home, *verb, "pm", "alpha", "-l", "tier=none", *extra)
    assert names_and_selector.exit_code == 1, names_and_selector.output
    assert "name cannot be provided when a selector is specified" in names_and_selector.output
    all_and_selector = run_cli(home, *verb, "pm", "--all", "-l", "tier=none", *extra)
    assert all_and_selector.exit_code == 1
    assert "give --all or -l SELECTOR, not both" in all_and_selector.output
    kind_alone = run_cli(home, *verb, "pm", *extra)
    assert kind_alone.exit_code == 1
    assert "resource(s) were provided, but no name was specified" in kind_alone.output
    obj = yaml.safe_load(run_cli(home, "get", "pm", "alpha", "-o", "yaml").output)
    assert "seen" not in (obj["metadata"].get("labels") or {})  # nothing was done to alpha
    assert "seen" not in (obj["metadata"].get("annotations") or {})
    assert "mfx.musicfox.io/restartedAt" not in (obj["metadata"].get("annotations") or {})
