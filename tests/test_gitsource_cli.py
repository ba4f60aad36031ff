"""The GitOps side of the CLI: apply refuses to change managed objects, `mfx diff gitsource/NAME`,
`mfx reconcile`, `mfx suspend`/`resume` on any kind."""

from __future__ import annotations

from pathlib import Path

from mfx.cli.client import Client
from tests import gitops_fixtures
from tests.daemon_harness import run_cli
from tests.gitops_fixtures import (
    GS,
    PM,
    Repo,
    applied,
    gitsource_yaml,
    plugin_yaml,
    wait_event,
    wait_for,
)

# the fixtures this module uses
daemon, home, client, repo = gitops_fixtures.daemon, gitops_fixtures.home, gitops_fixtures.client, gitops_fixtures.repo


def sync(home: Path, client: Client, repo: Repo, *, interval: str = "1s", prune: bool = False) -> str:
    sha = repo.commit("alpha", {"plugins/alpha.yaml": plugin_yaml("alpha"), "plugins/beta.yaml": plugin_yaml("beta")})
    result = run_cli(home, "apply", "-f", "-", input=gitsource_yaml("plugins", repo.url, interval=interval,
                                                                    prune=prune))
    assert result.exit_code == 0, result.output
    wait_for(client, GS, "plugins", applied(sha))
    return sha


def test_apply_on_a_managed_object_is_refused_without_force_conflicts(
        home: Path, client: Client, repo: Repo, tmp_path: Path) -> None:
    sync(home, client, repo, interval="1h")
    edited = tmp_path / "alpha.yaml"
    edited.write_text(plugin_yaml("alpha", "2.0.0"))
    refused = run_cli(home, "apply", "-f", str(edited))
    assert refused.exit_code == 1
    assert refused.output.startswith('error: pluginmanifests "alpha" is managed by gitsource/plugins; ')
    assert "spec.version changed from 1.0.0 to 2.0.0" in refused.output
    assert refused.output.rstrip().endswith("use --force-conflicts to override (the next sync will revert it)")
    assert client.get(PM, "alpha")["spec"]["version"] == "1.0.0"

    # the same file as in git (labels and all) changes nothing, so it is not refused
    same = tmp_path / "beta.yaml"
    same.write_text(client.get(PM, "beta")["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert run_cli(home, "apply", "-f", str(same)).output == "pluginmanifest.mfx.musicfox.io/beta unchanged\n"

    forced = run_cli(home, "apply", "-f", str(edited), "--force-conflicts")
    assert forced.exit_code == 0, forced.output
    assert "pluginmanifest.mfx.musicfox.io/alpha configured" in forced.output
    assert "Warning: pluginmanifests \"alpha\" is managed by gitsource/plugins" in forced.output
    assert client.get(PM, "alpha")["spec"]["version"] == "2.0.0"

    reconciled = run_cli(home, "reconcile", "gitsource/plugins")
    assert reconciled.exit_code == 0, reconciled.output
    event = wait_event(client, "plugins", "Drift", "pluginmanifest/alpha")
    assert "spec.version changed from 1.0.0 to 2.0.0" in event["message"]
    alpha = client.get(PM, "alpha")
    assert alpha["spec"]["version"] == "1.0.0"
    assert alpha["metadata"]["labels"]["mfx.musicfox.io/gitsource"] == "plugins"


def test_diff_shows_what_the_next_sync_changes(home: Path, client: Client, repo: Repo) -> None:
    sync(home, client, repo, interval="1h", prune=True)
    same = run_cli(home, "diff", "gitsource/plugins")
    assert same.exit_code == 0, same.output
    assert same.output == ""

    repo.commit("change", {"plugins/alpha.yaml": plugin_yaml("alpha", "1.5.0"), "plugins/beta.yaml": None,
                           "plugins/gamma.yaml": plugin_yaml("gamma")})
    changed = run_cli(home, "diff", "gitsource/plugins")
    assert changed.exit_code == 1, changed.output
    out = changed.output
    assert "-  version: 1.0.0\n+  version: 1.5.0" in out
    assert "gitsource/mfx.musicfox.io/v1alpha1.PluginManifest.gamma" in out  # created
    assert "live/mfx.musicfox.io/v1alpha1.PluginManifest.beta" in out  # pruned
    assert "-  name: beta" in out
    assert client.get(PM, "alpha")["spec"]["version"] == "1.0.0"  # a diff changes nothing

    assert run_cli(home, "reconcile", "gs/plugins").exit_code == 0
    after = run_cli(home, "diff", "gitsource/plugins")
    assert after.exit_code == 0, after.output


def test_diff_of_an_invalid_revision_exits_2_with_file_and_line(home: Path, client: Client, repo: Repo) -> None:
    sync(home, client, repo, interval="1h")
    repo.commit("bad", {"plugins/bad.yaml": plugin_yaml("bad", version="nope")})
    result = run_cli(home, "diff", "gitsource/plugins")
    assert result.exit_code == 2
    assert "error: plugins/bad.yaml:7: spec.version" in result.output


def test_suspend_and_resume_work_for_any_kind(home: Path, client: Client, repo: Repo) -> None:
    sync(home, client, repo, interval="1h")
    assert run_cli(home, "suspend", "pm", "alpha").output == "pluginmanifest.mfx.musicfox.io/alpha suspended\n"
    assert client.get(PM, "alpha")["spec"]["suspend"] is True
    assert run_cli(home, "resume", "pm/alpha").output == "pluginmanifest.mfx.musicfox.io/alpha resumed\n"
    assert client.get(PM, "alpha")["spec"]["suspend"] is False
    result = run_cli(home, "reconcile", "pm/alpha")
    assert result.output == "pluginmanifest.mfx.musicfox.io/alpha reconcile requested\n"
    annotations = client.get(PM, "alpha")["metadata"]["annotations"]
    assert "reconcile.mfx.musicfox.io/requestedAt" in annotations


def test_reconcile_of_a_failing_source_exits_1(home: Path, client: Client, repo: Repo) -> None:
    sync(home, client, repo, interval="1h")
    repo.commit("bad", {"plugins/bad.yaml": plugin_yaml("bad", version="nope")})
    result = run_cli(home, "reconcile", "gitsource/plugins")
    assert result.exit_code == 1
    assert "error: gitsource.mfx.musicfox.io/plugins reconciled: revision main@sha1:" in result.output
    assert "plugins/bad.yaml:7: spec.version" in result.output
