"""``mfx serve --store etcd://...``: daemons on one etcd cluster serve the same objects (to the CLI
and to kubectl), and a daemon whose etcd lost quorum answers 503 naming etcd, then carries on
when it is back."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.server.services import default_services
from mfx.store.api_connection import ApiConnection
from mfx.store.api_store import ApiStore
from mfx.store.etcd_keys import EtcdTLS
from tests.daemon_harness import SubprocessDaemon, ThreadDaemon, run_cli
from tests.etcd_env import EtcdCluster
from tests.plugin_fixtures import client, has_condition, manifest, plugin_root, wait_for

PM = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"
KUBECTL = shutil.which("kubectl")  # the test packages install it; without it the CLI checks remain


def plugin(name: str) -> str:
    return (f"apiVersion: mfx.musicfox.io/v1alpha1\nkind: PluginManifest\nmetadata:\n  name: {name}\n"
            "spec:\n  version: 1.0.0\n  type: rpc\n  entryPoint: python -m hello\n  suspend: true\n")


def local(home: Path) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(home / "mfx.sock")), base_url="http://mfx",
                        timeout=60)


def names(home: Path) -> list[str]:
    result = run_cli(home, "get", "pluginmanifests", "-o", "name")
    assert result.exit_code == 0, result.output
    return sorted(line.rsplit("/", 1)[-1] for line in result.output.split())


def test_two_daemons_on_one_etcd_serve_the_same_objects(
    tmp_path: Path, etcd_cluster: EtcdCluster, etcd_prefix: str
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for i in range(5):
        (manifests / f"p{i}.yaml").write_text(plugin(f"p{i}"))
    url = etcd_cluster.url + etcd_prefix
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    # B is ``mfx serve --store etcd://...`` as a user starts it, with a TCP listener for kubectl.
    serve_b = SubprocessDaemon(home_b, "--store", url, "--listen", "127.0.0.1:0", "--no-file-tap").start()
    try:
        with ThreadDaemon(home_a, store_url=url).running():
            applied = run_cli(home_a, "apply", "-f", str(manifests))
            assert applied.exit_code == 0, applied.output
            assert names(home_a) == [f"p{i}" for i in range(5)]
            assert names(home_b) == [f"p{i}" for i in range(5)], "the other daemon serves the same objects"
            if KUBECTL is not None:
                kubeconfig = tmp_path / "kubeconfig"
                written = run_cli(home_b, "config", "kubeconfig", "--output", str(kubeconfig))
                assert written.exit_code == 0, written.output
                got = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "kc"),
                                      "get", "pluginmanifests", "-o", "name"],
                                     capture_output=True, text=True, timeout=60, check=False)
                assert got.returncode == 0, got.stderr
                assert sorted(got.stdout.split()) == [f"pluginmanifest.mfx.musicfox.io/p{i}" for i in range(5)]
            deleted = run_cli(home_b, "delete", "pluginmanifest", "p0")
            assert deleted.exit_code == 0, deleted.output
            assert names(home_a) == [f"p{i}" for i in range(1, 5)]
    finally:
        assert serve_b.stop() == 0, serve_b.output()
    assert not (home_a / "state.db").exists() and not (home_b / "state.db").exists(), "no SQLite file on etcd"
    # A daemon started again on the same etcd finds everything there.
    with ThreadDaemon(tmp_path / "c", store_url=url).running():
        assert names(tmp_path / "c") == [f"p{i}" for i in range(1, 5)]


def test_a_daemon_whose_etcd_lost_quorum_answers_503_then_recovers(
    tmp_path: Path, restore_members: EtcdCluster, etcd_prefix: str
) -> None:
    cluster = restore_members
    home = tmp_path / "home"
    with ThreadDaemon(home, store_url=cluster.url + etcd_prefix).running(), local(home) as http:
        body = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
                "metadata": {"name": "kept"},
                "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m hello", "suspend": True}}
        assert http.post(PM, json=body).status_code == 201
        for member in cluster.members[1:]:
            cluster.kill(member, signal.SIGKILL)
        refused = http.post(PM, json={**body, "metadata": {"name": "during"}})
        assert refused.status_code == 503, refused.text
        status = refused.json()
        assert status["kind"] == "Status" and status["reason"] == "ServiceUnavailable"
        assert status["code"] == 503 and "etcd at" in status["message"] and "quorum" in status["message"], status
        for member in cluster.members[1:]:
            cluster.restart(member)
        cluster.wait_healthy()
        assert http.post(PM, json={**body, "metadata": {"name": "after"}}).status_code == 201
        listed = {o["metadata"]["name"] for o in http.get(PM).json()["items"]}
        assert {"kept", "after"} <= listed


def test_serve_refuses_an_etcd_it_cannot_reach_with_a_clear_error(tmp_path: Path) -> None:
    from mfx.errors import StoreUnavailableError

    daemon = ThreadDaemon(tmp_path / "home", store_url="etcd://127.0.0.1:1", etcd_tls=EtcdTLS())
    with pytest.raises(StoreUnavailableError, match=r"^cannot reach etcd at 127.0.0.1:1: start it or check --store"):
        with daemon.running():
            pass


def test_serve_refuses_a_store_url_or_tls_options_it_cannot_use(tmp_path: Path) -> None:
    cert = tmp_path / "client.crt"
    cert.write_text("not used")
    wrong_scheme = run_cli(tmp_path / "home", "serve", "--store", "mysql://db:3306")
    assert wrong_scheme.exit_code == 2 and "expected etcd://HOST:PORT" in wrong_scheme.output
    half_pair = run_cli(tmp_path / "home", "serve", "--store", "etcd://127.0.0.1:2379", "--etcd-cert", str(cert))
    assert half_pair.exit_code == 2 and "--etcd-cert and --etcd-key go together" in half_pair.output


def test_the_store_url_names_members_with_default_ports_and_an_optional_prefix() -> None:
    from mfx.errors import BadRequestError
    from mfx.store.etcd_keys import parse_store_url

    target = parse_store_url("etcd://h1,h2:2380,h3.example:2379")
    assert (target.endpoints, target.prefix) == (("h1:2379", "h2:2380", "h3.example:2379"), "/mfx")
    assert parse_store_url("etcd://h1:2379/team-a/").prefix == "/team-a"
    with pytest.raises(BadRequestError, match="is not HOST:PORT"):
        parse_store_url("etcd://h1:port")


def test_a_watch_from_a_revision_etcd_compacted_answers_410_through_the_api(
    tmp_path: Path, etcd_cluster: EtcdCluster, etcd_prefix: str
) -> None:
    import anyio
    import orjson
    from aetcd import rpc

    from mfx.store.etcd_client import EtcdConnection
    from mfx.store.etcd_keys import parse_store_url

    home = tmp_path / "home"
    body = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "a"},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m hello", "suspend": True}}
    with ThreadDaemon(home, store_url=etcd_cluster.url + etcd_prefix).running(), local(home) as http:
        first = http.post(PM, json=body).json()
        old = int(first["metadata"]["resourceVersion"])
        http.post(PM, json={**body, "metadata": {"name": "b"}})
        newest = http.post(PM, json={**body, "metadata": {"name": "c"}}).json()

        async def compact() -> None:
            connection = EtcdConnection(parse_store_url(etcd_cluster.url))
            try:
                revision = int(newest["metadata"]["resourceVersion"])
                await connection.kv("Compact", rpc.CompactionRequest(revision=revision, physical=True))
            finally:
                await connection.close()

        anyio.run(compact)
        params = {"watch": "true", "resourceVersion": str(old), "timeoutSeconds": "5"}
        with http.stream("GET", PM, params=params) as stream:
            line = next(stream.iter_lines())
        event = orjson.loads(line)
        assert event["type"] == "ERROR" and event["object"]["code"] == 410, event
        assert "too old resource version" in event["object"]["message"]


def test_a_watch_through_the_api_delivers_every_object_one_transaction_wrote(
    tmp_path: Path, etcd_cluster: EtcdCluster, etcd_prefix: str
) -> None:
    """One apply is one etcd transaction: its objects share a revision, hence a resourceVersion.
    A watch over the API (what ``mfx agent`` runs on) must deliver each of them, not the first."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for i in range(3):
        (manifests / f"p{i}.yaml").write_text(plugin(f"p{i}"))
    home = tmp_path / "a"

    async def watched() -> list[tuple[str, int]]:
        async with ApiStore(ApiConnection(servers=(f"unix://{home / 'mfx.sock'}",))) as store:
            since = (await store.list("PluginManifest")).resource_version
            seen: list[tuple[str, int]] = []
            async with store.watch("PluginManifest", since) as watch:
                applied = await anyio.to_thread.run_sync(lambda: run_cli(home, "apply", "-f", str(manifests)))
                assert applied.exit_code == 0, applied.output
                # A hang guard: a lost event shows as this deadline.
                with anyio.move_on_after(10):
                    async for event in watch:
                        seen.append((event.object["metadata"]["name"], event.resource_version))
                        if len(seen) == 3:
                            break
            return seen

    with ThreadDaemon(home, store_url=etcd_cluster.url + etcd_prefix).running():
        seen = anyio.run(watched)
    assert sorted(name for name, _ in seen) == ["p0", "p1", "p2"], seen
    assert len({rv for _, rv in seen}) == 1, "written in one transaction"


def etcd_requests(cluster: EtcdCluster) -> dict[str, float]:
    """The gRPC requests etcd's members have handled, by method (from their own /metrics)."""
    counts: dict[str, float] = {}
    for member in cluster.members:
        for line in httpx.get(member.client_url + "/metrics", timeout=10).text.splitlines():
            if line.startswith("grpc_server_handled_total{"):
                method = line.split('grpc_method="', 1)[1].split('"', 1)[0]
                counts[method] = counts.get(method, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_a_daemon_on_etcd_reads_what_it_reconciles_from_its_watches(
    tmp_path: Path, etcd_cluster: EtcdCluster, etcd_prefix: str
) -> None:
    """Each reconcile read its object from etcd, and so did each finalizer change. Now the
    controllers read what their watches delivered (etcd's own request counters show it)."""
    chain = [f"chain-{i}" for i in range(6)]
    root = plugin_root(tmp_path, *chain)
    home = tmp_path / "home"
    with ThreadDaemon(home, store_url=etcd_cluster.url + etcd_prefix, services=default_services(),
                      plugin_paths=[root], file_tap=False).running():
        before = etcd_requests(etcd_cluster)
        with client(home) as c:
            for i, name in enumerate(chain):
                c.create(manifest(name, deps=chain[max(i - 1, 0):i]), PLUGIN_MANIFEST)
        wait_for(home, chain[-1], has_condition("Ready", "True"))  # the last of the chain is Ready last
        after = etcd_requests(etcd_cluster)
    reads = after.get("Range", 0) - before.get("Range", 0)
    writes = after.get("Txn", 0) - before.get("Txn", 0)
    assert writes >= 3 * len(chain), f"{writes:g} transactions for {len(chain)} plugins started"
    # Before, the controllers' reads alone came to ~3.7 a plugin, and etcd served more reads
    # than writes (46 for 40 here); now ~24.
    assert reads < writes, f"{reads:g} reads for {writes:g} writes while {len(chain)} plugins started"
