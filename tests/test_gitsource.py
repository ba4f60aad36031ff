"""GitOps: a GitSource keeps a directory of a real git repository applied, against a real daemon.

Repositories are made by the test (a bare repository on disk, commits pushed with ``git``);
every wait watches the API for a revision, a condition or an event.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controllers.git_fetch import (
    GitRepository,
    ManifestFile,
    SourcePathError,
    auth_for,
    git_env,
    normalize_path,
    summarize_stderr,
)
from controllers.gitsource import _apply_all, _deletion_order
from controllers.gitsource_render import DIGEST_ANNOTATION
from mfx.api.models import GitCredentials, GitRef
from mfx.api.objects import GITSOURCE_OWNER_LABEL, MANAGED_BY_LABEL, ObjectKey
from mfx.cli.client import Client
from mfx.errors import NotFoundError
from mfx.store.sqlite import SQLiteStore
from tests import gitops_fixtures
from tests.daemon_harness import run_cli
from tests.gitops_fixtures import (
    GS,
    PM,
    Repo,
    applied,
    attempted,
    gitsource_yaml,
    plugin_yaml,
    ready_reason,
    wait_event,
    wait_for,
    wait_gone,
)
from tests.store_faults import (
    StatusWritingStore,
    assert_written_over_one_status_write,
    create_admitted,
)

# the fixtures this module uses
daemon, home, client, repo = gitops_fixtures.daemon, gitops_fixtures.home, gitops_fixtures.client, gitops_fixtures.repo


def create_source(home: Path, text: str) -> None:
    result = run_cli(home, "apply", "-f", "-", input=text)
    assert result.exit_code == 0, result.output


def test_a_commit_is_applied_within_one_interval(home: Path, client: Client, repo: Repo) -> None:
    first = repo.commit("one plugin", {"plugins/alpha.yaml": plugin_yaml("alpha"), "README.md": "not a manifest"})
    create_source(home, gitsource_yaml("plugins", repo.url))
    source = wait_for(client, GS, "plugins", applied(first), what="to apply the first commit")
    status = source["status"]
    assert ready_reason(source)[0] == "True"
    assert status["inventory"] == {"entries": [{"kind": "PluginManifest", "name": "alpha"}]}
    assert status["history"][0]["revision"] == f"main@sha1:{first}"
    assert status["history"][0]["result"] == "Succeeded"
    alpha = client.get(PM, "alpha")
    assert alpha["metadata"]["labels"][MANAGED_BY_LABEL] == "mfx-gitsource"
    assert alpha["metadata"]["labels"][GITSOURCE_OWNER_LABEL] == "plugins"
    assert alpha["metadata"]["labels"]["tier"] == "core"

    second = repo.commit("another plugin, alpha upgraded", {
        "plugins/beta.yml": plugin_yaml("beta"),
        "plugins/alpha.yaml": plugin_yaml("alpha", "1.1.0"),
    })
    source = wait_for(client, GS, "plugins", applied(second), what="to apply the second commit")
    assert client.get(PM, "beta")["spec"]["version"] == "1.0.0"
    assert client.get(PM, "alpha")["spec"]["version"] == "1.1.0"
    assert [h["revision"] for h in source["status"]["history"]] == [f"main@sha1:{second}", f"main@sha1:{first}"]
    table = run_cli(home, "get", "gitsources")
    header, row = table.output.splitlines()
    assert header.split()[:4] == ["NAME", "URL", "REVISION", "READY"]
    assert row.split()[:4] == ["plugins", repo.url, f"main@sha1:{second}", "True"]


def test_a_bad_commit_keeps_the_last_good_revision_and_names_file_and_line(
        home: Path, client: Client, repo: Repo) -> None:
    good = repo.commit("good", {"plugins/alpha.yaml": plugin_yaml("alpha")})
    create_source(home, gitsource_yaml("plugins", repo.url))
    wait_for(client, GS, "plugins", applied(good))
    bad_text = plugin_yaml("bad", version="one-point-oh")
    line = bad_text.splitlines().index("  version: one-point-oh") + 1
    bad = repo.commit("bad", {"plugins/bad.yaml": bad_text, "plugins/alpha.yaml": plugin_yaml("alpha", "2.0.0")})
    source = wait_for(client, GS, "plugins", attempted(bad), what="to attempt the bad commit")
    status, reason, message = ready_reason(source)
    assert (status, reason) == ("False", "ValidationFailed")
    assert f"plugins/bad.yaml:{line}: spec.version" in message
    assert source["status"]["lastAppliedRevision"] == f"main@sha1:{good}"
    assert source["status"]["history"][0]["result"] == "Failed"
    event = wait_event(client, "plugins", "ValidationFailed", f"plugins/bad.yaml:{line}")
    assert event["type"] == "Warning"
    # all or nothing: the valid change in the same commit was not applied either
    assert client.get(PM, "alpha")["spec"]["version"] == "1.0.0"
    with pytest.raises(NotFoundError):
        client.get(PM, "bad")

    fixed = repo.commit("fixed", {"plugins/bad.yaml": plugin_yaml("bad", version="1.0.0")})
    source = wait_for(client, GS, "plugins", applied(fixed))
    assert ready_reason(source)[0] == "True"
    assert client.get(PM, "alpha")["spec"]["version"] == "2.0.0"


def test_a_manifest_that_is_not_utf8_fails_the_revision_naming_file_and_line(
        home: Path, client: Client, repo: Repo) -> None:
    good = repo.commit("good", {"plugins/alpha.yaml": plugin_yaml("alpha")})
    create_source(home, gitsource_yaml("plugins", repo.url))
    wait_for(client, GS, "plugins", applied(good))
    latin1 = plugin_yaml("beta").replace("metadata:", "# caf\u00e9 (Latin-1)\nmetadata:").encode("latin-1")
    line = latin1.split(b"\n").index(b"# caf\xe9 (Latin-1)") + 1
    bad = repo.commit("latin-1", {"plugins/beta.yaml": latin1})
    source = wait_for(client, GS, "plugins", attempted(bad), what="to attempt the Latin-1 commit")
    status, reason, message = ready_reason(source)
    assert (status, reason) == ("False", "ValidationFailed")
    assert f"plugins/beta.yaml:{line}" in message and "not UTF-8" in message
    with pytest.raises(NotFoundError):  # nothing is stored with U+FFFD in place of the byte
        client.get(PM, "beta")


def test_prune_removes_a_deleted_manifests_plugin(home: Path, client: Client, repo: Repo) -> None:
    first = repo.commit("three", {
        "plugins/codec.yaml": plugin_yaml("codec"),
        "plugins/player.yaml": plugin_yaml("player", depends=("codec",)),
        "plugins/keep.yaml": plugin_yaml("keep"),
    })
    create_source(home, gitsource_yaml("plugins", repo.url, prune=True))
    wait_for(client, GS, "plugins", applied(first))
    second = repo.commit("drop two", {"plugins/codec.yaml": None, "plugins/player.yaml": None})
    source = wait_for(client, GS, "plugins", applied(second))
    wait_gone(client, PM, "player")
    wait_gone(client, PM, "codec")
    assert client.get(PM, "keep")["spec"]["version"] == "1.0.0"
    assert source["status"]["inventory"]["entries"] == [{"kind": "PluginManifest", "name": "keep"}]
    event = wait_event(client, "plugins", "Applied", "pruned")
    assert "pruned pluginmanifest/player, pluginmanifest/codec" in event["message"]


def test_without_prune_a_removed_manifest_stays(home: Path, client: Client, repo: Repo) -> None:
    first = repo.commit("two", {"plugins/a.yaml": plugin_yaml("a"), "plugins/b.yaml": plugin_yaml("b")})
    create_source(home, gitsource_yaml("plugins", repo.url, prune=False))
    wait_for(client, GS, "plugins", applied(first))
    second = repo.commit("drop b", {"plugins/b.yaml": None})
    source = wait_for(client, GS, "plugins", applied(second))
    assert client.get(PM, "b")["metadata"]["name"] == "b"
    assert source["status"]["inventory"]["entries"] == [{"kind": "PluginManifest", "name": "a"}]


def test_deletion_order_puts_dependents_first() -> None:
    def pm(name: str, *deps: str) -> dict:
        return {"kind": "PluginManifest", "metadata": {"name": name},
                "spec": {"dependencies": [{"name": d} for d in deps]}}

    objects = {ObjectKey("PluginManifest", o["metadata"]["name"]): o
               for o in (pm("codec"), pm("ui", "player"), pm("player", "codec"))}
    objects[ObjectKey("AudioSink", "speakers")] = {"kind": "AudioSink", "metadata": {"name": "speakers"}}
    order = [k.name for k in _deletion_order(objects)]
    assert order == ["ui", "player", "codec", "speakers"]


def test_a_hand_edit_is_reverted_with_a_drift_event(home: Path, client: Client, repo: Repo) -> None:
    first = repo.commit("one", {"plugins/alpha.yaml": plugin_yaml("alpha"), "plugins/beta.yaml": plugin_yaml("beta")})
    create_source(home, gitsource_yaml("plugins", repo.url))
    wait_for(client, GS, "plugins", applied(first))
    client.patch(PM, "alpha", {"spec": {"version": "2.0.0"}})
    event = wait_event(client, "plugins", "Drift", "pluginmanifest/alpha spec.version changed from 1.0.0 to 2.0.0")
    assert event["type"] == "Warning"
    assert event["message"].endswith("; reverted")
    assert client.get(PM, "alpha")["spec"]["version"] == "1.0.0"

    client.delete(PM, "beta")
    wait_event(client, "plugins", "Drift", "pluginmanifest/beta was deleted; recreated")
    assert client.get(PM, "beta")["metadata"]["labels"][GITSOURCE_OWNER_LABEL] == "plugins"


def test_suspend_stops_syncing_and_resume_catches_up(home: Path, client: Client, repo: Repo) -> None:
    first = repo.commit("one", {"plugins/alpha.yaml": plugin_yaml("alpha")})
    create_source(home, gitsource_yaml("plugins", repo.url))
    wait_for(client, GS, "plugins", applied(first))
    assert run_cli(home, "suspend", "gitsource/plugins").output == "gitsource.mfx.musicfox.io/plugins suspended\n"
    wait_for(client, GS, "plugins", lambda o: ready_reason(o)[1] == "Suspended", what="to be suspended")
    second = repo.commit("two", {"plugins/beta.yaml": plugin_yaml("beta")})
    # A reconcile pass while suspended runs (it records the request) and applies nothing.
    result = run_cli(home, "reconcile", "gitsource/plugins")
    assert result.exit_code == 0, result.output
    source = client.get(GS, "plugins")
    assert source["status"]["lastAppliedRevision"] == f"main@sha1:{first}"
    assert "suspended" in ready_reason(source)[2]
    with pytest.raises(NotFoundError):
        client.get(PM, "beta")

    assert run_cli(home, "resume", "gitsource/plugins").exit_code == 0
    wait_for(client, GS, "plugins", applied(second), what="to catch up after resume")
    assert client.get(PM, "beta")["metadata"]["name"] == "beta"


def test_depends_on_syncs_in_order(home: Path, client: Client, tmp_path: Path) -> None:
    base_repo = Repo.create(tmp_path / "base")
    apps_repo = Repo.create(tmp_path / "apps")
    base = base_repo.commit("codec", {"plugins/codec.yaml": plugin_yaml("codec")})
    apps = apps_repo.commit("player", {"plugins/player.yaml": plugin_yaml("player", depends=("codec",))})
    create_source(home, gitsource_yaml("apps", apps_repo.url, depends=("base",)))
    waiting = wait_for(client, GS, "apps", lambda o: ready_reason(o)[1] == "DependencyNotReady")
    assert "gitsource/base not found" in ready_reason(waiting)[2]
    with pytest.raises(NotFoundError):
        client.get(PM, "player")

    create_source(home, gitsource_yaml("base", base_repo.url))
    wait_for(client, GS, "base", applied(base))
    wait_for(client, GS, "apps", applied(apps), what="to sync once base is Ready")
    codec, player = client.get(PM, "codec"), client.get(PM, "player")
    assert int(codec["metadata"]["resourceVersion"]) < int(player["metadata"]["resourceVersion"])


def test_a_dependency_on_a_failing_source_waits(home: Path, client: Client, tmp_path: Path) -> None:
    base_repo = Repo.create(tmp_path / "base")
    apps_repo = Repo.create(tmp_path / "apps")
    base_repo.commit("bad", {"plugins/codec.yaml": plugin_yaml("codec", version="x")})
    apps_repo.commit("player", {"plugins/player.yaml": plugin_yaml("player")})
    create_source(home, gitsource_yaml("base", base_repo.url))
    create_source(home, gitsource_yaml("apps", apps_repo.url, depends=("base",)))
    waiting = wait_for(client, GS, "apps", lambda o: ready_reason(o)[1] == "DependencyNotReady"
                       and "ValidationFailed" in ready_reason(o)[2])
    assert "gitsource/base is not Ready" in ready_reason(waiting)[2]


def test_mfx_reconcile_syncs_at_once(home: Path, client: Client, repo: Repo) -> None:
    first = repo.commit("one", {"plugins/alpha.yaml": plugin_yaml("alpha")})
    create_source(home, gitsource_yaml("plugins", repo.url, interval="1h"))
    wait_for(client, GS, "plugins", applied(first))
    second = repo.commit("two", {"plugins/beta.yaml": plugin_yaml("beta")})
    result = run_cli(home, "reconcile", "gitsource/plugins")
    assert result.exit_code == 0, result.output
    assert result.output == f"gitsource.mfx.musicfox.io/plugins reconciled: Applied revision main@sha1:{second}\n"
    assert client.get(GS, "plugins")["status"]["lastAppliedRevision"] == f"main@sha1:{second}"
    assert client.get(PM, "beta")["metadata"]["name"] == "beta"


def test_git_failures_are_reported_and_retried_never_a_crash(home: Path, client: Client, repo: Repo,
                                                              tmp_path: Path) -> None:
    create_source(home, gitsource_yaml("missing", f"file://{tmp_path}/nowhere.git"))
    source = wait_for(client, GS, "missing", lambda o: ready_reason(o)[1] == "GitOperationFailed")
    assert "fetching branch main from" in ready_reason(source)[2]
    assert "nowhere.git" in ready_reason(source)[2]

    good = repo.commit("one", {"plugins/alpha.yaml": plugin_yaml("alpha")})
    text = gitsource_yaml("wrong-branch", repo.url).replace("branch: main", "branch: nope")
    create_source(home, text)
    source = wait_for(client, GS, "wrong-branch", lambda o: ready_reason(o)[1] == "GitOperationFailed")
    assert "branch nope not found" in ready_reason(source)[2]
    # fixing the spec syncs at once (a new generation is reconciled without waiting for the backoff)
    create_source(home, gitsource_yaml("wrong-branch", repo.url))
    wait_for(client, GS, "wrong-branch", applied(good))


def test_a_commit_ref_checks_out_that_exact_commit(home: Path, client: Client, repo: Repo) -> None:
    first = repo.commit("one", {"plugins/alpha.yaml": plugin_yaml("alpha")})
    repo.commit("two", {"plugins/alpha.yaml": plugin_yaml("alpha", "3.0.0")})
    text = gitsource_yaml("pinned", repo.url).replace("ref: {branch: main}", f"ref: {{commit: '{first[:10]}'}}")
    create_source(home, text)
    source = wait_for(client, GS, "pinned", lambda o: (o.get("status") or {}).get("lastAppliedRevision")
                      == f"sha1:{first}")
    assert ready_reason(source)[0] == "True"
    assert client.get(PM, "alpha")["spec"]["version"] == "1.0.0"


def test_an_object_of_another_source_is_not_taken_over(home: Path, client: Client, tmp_path: Path) -> None:
    one, two = Repo.create(tmp_path / "one"), Repo.create(tmp_path / "two")
    sha_one = one.commit("alpha", {"plugins/alpha.yaml": plugin_yaml("alpha")})
    sha_two = two.commit("alpha too", {"plugins/alpha.yaml": plugin_yaml("alpha", "9.0.0")})
    create_source(home, gitsource_yaml("one", one.url))
    wait_for(client, GS, "one", applied(sha_one))
    create_source(home, gitsource_yaml("two", two.url))
    source = wait_for(client, GS, "two", attempted(sha_two))
    assert ready_reason(source)[1] == "OwnershipConflict"
    assert "pluginmanifest/alpha is managed by gitsource/one" in ready_reason(source)[2]
    assert client.get(PM, "alpha")["spec"]["version"] == "1.0.0"


def test_deleting_a_pruning_source_deletes_its_objects(home: Path, client: Client, repo: Repo) -> None:
    first = repo.commit("one", {"plugins/alpha.yaml": plugin_yaml("alpha")})
    create_source(home, gitsource_yaml("plugins", repo.url, prune=True))
    wait_for(client, GS, "plugins", applied(first))
    assert (home / "git" / "plugins" / "HEAD").exists()
    assert run_cli(home, "delete", "gitsource", "plugins").exit_code == 0
    wait_gone(client, PM, "alpha")
    assert not (home / "git" / "plugins").exists()


# --- credentials and git plumbing ------------------------------------------------------------------------


def test_token_credentials_go_to_git_through_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-token\n")
    auth = auth_for(GitCredentials(token_file=str(token_file)))
    env = git_env(auth)
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"] == "Authorization: Bearer s3cr3t-token"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    message = summarize_stderr("fatal: header Authorization: Bearer s3cr3t-token refused\n", auth)
    assert "s3cr3t" not in message and "<redacted>" in message


def test_ssh_key_credentials_build_the_ssh_command(tmp_path: Path) -> None:
    key = tmp_path / "my key"
    auth = auth_for(GitCredentials(ssh_key_file=str(key)))
    assert auth.env["GIT_SSH_COMMAND"] == (
        f"ssh -i '{key}' -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o BatchMode=yes")
    assert "GIT_CONFIG_COUNT" not in auth.env


def test_an_unreadable_token_file_is_a_git_error(tmp_path: Path) -> None:
    from controllers.git_fetch import GitError

    with pytest.raises(GitError, match="cannot read the token file"):
        auth_for(GitCredentials(token_file=str(tmp_path / "absent")))


@pytest.mark.anyio
async def test_a_token_source_fetches_over_file_url(tmp_path: Path, repo: Repo) -> None:
    sha = repo.commit("one", {"plugins/alpha.yaml": plugin_yaml("alpha"), "plugins/sub/b.json": "{}"})
    token_file = tmp_path / "token"
    token_file.write_text("abc")
    git = GitRepository(tmp_path / "cache", repo.url, auth_for(GitCredentials(token_file=str(token_file))))
    assert await git.fetch(GitRef(branch="main")) == sha
    files = await git.read_manifests(sha, "./plugins/")
    assert [f.name for f in files] == ["plugins/alpha.yaml", "plugins/sub/b.json"]


def test_source_paths_stay_inside_the_repository() -> None:
    assert normalize_path("./") == ""
    assert normalize_path("./plugins/") == "plugins"
    for bad in ("/etc", "../up", "a/../../b"):
        with pytest.raises(SourcePathError):
            normalize_path(bad)


@pytest.mark.anyio
async def test_a_sync_is_not_refused_by_status_writes_racing_every_attempt(tmp_path: Path) -> None:
    def plugin(name: str, version: str) -> dict[str, object]:
        return {"apiVersion": PM.api_version, "kind": PM.kind, "metadata": {
                    "name": name, "labels": {GITSOURCE_OWNER_LABEL: "plugins"},
                    "annotations": {DIGEST_ANNOTATION: version}},
                "spec": {"version": version, "type": "rpc", "entryPoint": "python -m x"}}

    names = [f"pm-{i}" for i in range(20)]
    async with SQLiteStore(tmp_path / "store.db") as store:
        await create_admitted(store, (plugin(name, "1.0.0") for name in names))
        racing = StatusWritingStore(store)
        keys = {ObjectKey(PM.kind, name) for name in names}
        # Without the base of each update, every attempt loses to the status writes: the sync
        # would give up ("keep changing while they are applied").
        report = await _apply_all(racing, [plugin(name, "2.0.0") for name in names], keys)  # type: ignore[arg-type]
        assert racing.rounds == 1
        assert sorted(key.name for key in report.configured) == sorted(names)
        await assert_written_over_one_status_write(store, names, "2.0.0")


@pytest.mark.anyio
async def test_only_regular_manifest_files_are_read(tmp_path: Path, repo: Repo) -> None:
    import os

    repo.work.mkdir(parents=True, exist_ok=True)
    (repo.work / "plugins").mkdir(exist_ok=True)
    os.symlink("alpha.yaml", repo.work / "plugins" / "link.yaml")
    sha = repo.commit("mixed", {
        "plugins/alpha.yaml": plugin_yaml("alpha"),
        "plugins/run me.yml": plugin_yaml("beta"),  # a space in the name, executable below
        "plugins/notes.txt": "not a manifest",
        "plugins/big.bin": b"\0" * 100_000,
        "other/gamma.yaml": plugin_yaml("gamma"),
    })
    (repo.work / "plugins" / "run me.yml").chmod(0o755)
    sha = repo.commit("executable", {})
    git = GitRepository(tmp_path / "cache", repo.url)
    assert await git.fetch(GitRef(branch="main")) == sha
    files = await git.read_manifests(sha, "plugins")
    assert [f.name for f in files] == ["plugins/alpha.yaml", "plugins/run me.yml"]
    assert files[0].data == plugin_yaml("alpha").encode()
    assert files[1].data == plugin_yaml("beta").encode()
    everything = await git.read_manifests(sha, "")
    assert [f.name for f in everything] == ["other/gamma.yaml", "plugins/alpha.yaml", "plugins/run me.yml"]


class _CountingRepository(GitRepository):
    """The real repository, counting how often a revision's manifests are read."""

    reads = 0

    async def read_manifests(self, sha: str, path: str) -> list[ManifestFile]:
        self.reads += 1
        return await super().read_manifests(sha, path)


@pytest.mark.anyio
async def test_an_unchanged_revision_is_read_and_validated_once(tmp_path: Path, repo: Repo) -> None:
    from controllers.gitsource_render import DesiredCache
    from mfx.api.models import GitSourceSpec
    from mfx.api.schema import load_schemas

    first = repo.commit("one", {"plugins/alpha.yaml": plugin_yaml("alpha")})
    git = _CountingRepository(tmp_path / "cache", repo.url)
    await git.fetch(GitRef(branch="main"))
    spec = GitSourceSpec.model_validate({"url": repo.url, "path": "plugins"})
    cache, schemas = DesiredCache(), load_schemas()
    objects = await cache.desired(git, first, spec, "plugins", schemas)
    objects[0]["spec"]["version"] = "9.9.9"  # what a caller does with its copy stays its own
    again = await cache.desired(git, first, spec, "plugins", schemas)
    assert git.reads == 1
    assert again[0]["spec"]["version"] == "1.0.0"
    assert again[0]["metadata"]["labels"][GITSOURCE_OWNER_LABEL] == "plugins"

    second = repo.commit("two", {"plugins/beta.yaml": plugin_yaml("beta")})
    assert await git.fetch(GitRef(branch="main")) == second
    names = [o["metadata"]["name"] for o in await cache.desired(git, second, spec, "plugins", schemas)]
    assert (git.reads, names) == (2, ["alpha", "beta"])
    cache.forget("plugins")
    await cache.desired(git, second, spec, "plugins", schemas)
    assert git.reads == 3
