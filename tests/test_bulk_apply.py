"""`mfx apply` over the bulk path: one all-or-nothing request, outcomes in input order; and the
per-object requests against a daemon without that path (an older one), still in order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from anyio.abc import TaskGroup
from starlette.applications import Starlette

from mfx.api.objects import LAST_APPLIED_ANNOTATION, Obj
from mfx.cli import bulk_client
from mfx.errors import ConflictError, FieldError, ValidationError
from mfx.server import bodies
from mfx.server.admission import Admission
from mfx.server.api_bulk import BULK_APPLY_PATH, bulk_apply_routes
from mfx.server.daemon import DaemonContext
from mfx.store.base import BatchAction, BatchWrite
from mfx.store.sqlite import SQLiteStore
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.store_faults import (
    RacingStore,
    StatusWritingStore,
    assert_written_over_one_status_write,
    create_admitted,
)

COUNT = 1000
PM = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"


def plugin(name: str, *, version: str = "1.0.0", tier: str = "core") -> str:
    return (f"apiVersion: mfx.musicfox.io/v1alpha1\nkind: PluginManifest\nmetadata:\n  name: {name}\n"
            f"  labels: {{tier: {tier}}}\nspec:\n  version: {version}\n  type: rpc\n"
            f"  entryPoint: python -m hello\n  suspend: true\n")


def write_plugins(directory: Path, count: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = directory / f"pm-{i:04d}.yaml"
        path.write_text(plugin(f"pm-{i:04d}"))
        paths.append(path)
    return paths


def local(home: Path) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(home / "mfx.sock")), base_url="http://mfx", timeout=60)


def stored_names(home: Path) -> list[str]:
    with local(home) as http:
        return [o["metadata"]["name"] for o in http.get(PM).json()["items"]]


async def without_bulk_path(context: DaemonContext, group: TaskGroup) -> None:
    """A daemon as one from before the bulk path: its API has no such route."""
    context.api.bulk_apply = False


class RefusesLabel(Admission):
    """Admission that refuses one label value: a refusal only the daemon can make."""

    def admit(self, obj: Obj) -> Obj:
        if (obj.get("metadata", {}).get("labels") or {}).get("tier") == "refused":
            raise ValidationError([FieldError(path="metadata.labels.tier", message="this daemon refuses it")])
        return super().admit(obj)


async def refusing_admission(context: DaemonContext, group: TaskGroup) -> None:
    context.api.admission = RefusesLabel()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[ThreadDaemon]:
    with ThreadDaemon(tmp_path / "home").running() as running:
        yield running


def test_one_bad_document_among_1000_stores_nothing_and_names_file_line_and_field(
        daemon: ThreadDaemon, tmp_path: Path) -> None:
    home = daemon.config.home
    paths = write_plugins(tmp_path / "many", COUNT)
    paths[500].write_text(plugin("pm-0500").replace("version: 1.0.0", "version: 1.0.0\n  timeoutSecondz: 3"))
    result = run_cli(home, "apply", "-f", str(tmp_path / "many"))
    assert result.exit_code == 1
    assert f"{paths[500]}:8: spec.timeoutSecondz:" in result.output
    assert stored_names(home) == []


def test_the_daemon_refusing_one_item_of_1000_stores_nothing(tmp_path: Path) -> None:
    with ThreadDaemon(tmp_path / "home", services=[refusing_admission]).running() as daemon:
        home = daemon.config.home
        paths = write_plugins(tmp_path / "many", COUNT)
        paths[700].write_text(plugin("pm-0700", tier="refused"))
        result = run_cli(home, "apply", "-f", str(tmp_path / "many"))
        assert result.exit_code == 1
        # The daemon's field error, pointed back at the file and line it came from.
        assert f"{paths[700]}:5: metadata.labels.tier: this daemon refuses it" in result.output
        assert stored_names(home) == []
        with local(home) as http:
            items = [{"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
                      "metadata": {"name": f"x-{i}", "labels": {"tier": "refused" if i == 3 else "core"}},
                      "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m x"}} for i in range(5)]
            answer = http.post(BULK_APPLY_PATH, params={"fieldManager": "test"},
                               json={"apiVersion": "v1", "kind": "List", "items": items})
        assert answer.status_code == 422
        status = answer.json()
        assert status["kind"] == "Status"
        assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "message": "this daemon refuses it",
                                                "field": "items[3].metadata.labels.tier"}]
        assert stored_names(home) == []


def _mixed_set(directory: Path) -> None:
    for name in ("a-same", "b-new", "c-changed", "d-relabelled"):
        (directory / f"{name}.yaml").write_text(plugin(name))


def _apply_mixed(home: Path, tmp_path: Path) -> list[str]:
    first = tmp_path / "first"
    first.mkdir()
    for name in ("d-relabelled", "a-same", "c-changed"):
        (first / f"{name}.yaml").write_text(plugin(name))
    assert run_cli(home, "apply", "-f", str(first)).exit_code == 0
    second = tmp_path / "second"
    second.mkdir()
    # Input order is file order: a, b, c, d; and the set mixes every outcome.
    (second / "a-same.yaml").write_text(plugin("a-same"))
    (second / "b-new.yaml").write_text(plugin("b-new"))
    (second / "c-changed.yaml").write_text(plugin("c-changed", version="2.0.0"))
    (second / "d-relabelled.yaml").write_text(plugin("d-relabelled", tier="edge"))
    result = run_cli(home, "apply", "-f", str(second))
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


EXPECTED = [
    "pluginmanifest.mfx.musicfox.io/a-same unchanged",
    "pluginmanifest.mfx.musicfox.io/b-new created",
    "pluginmanifest.mfx.musicfox.io/c-changed configured",
    "pluginmanifest.mfx.musicfox.io/d-relabelled configured",
]


def test_bulk_apply_reports_each_outcome_in_input_order(daemon: ThreadDaemon, tmp_path: Path) -> None:
    home = daemon.config.home
    with local(home) as http:
        assert http.post(BULK_APPLY_PATH, json={"apiVersion": "v1", "kind": "List", "items": []}).json()["items"] == []
    assert _apply_mixed(home, tmp_path) == EXPECTED
    with local(home) as http:
        changed = http.get(f"{PM}/c-changed").json()
    assert changed["spec"]["version"] == "2.0.0" and changed["metadata"]["generation"] == 2


def test_a_daemon_without_the_bulk_path_gets_pipelined_per_object_applies_in_order(tmp_path: Path) -> None:
    with ThreadDaemon(tmp_path / "home", services=[without_bulk_path]).running() as daemon:
        home = daemon.config.home
        with local(home) as http:
            assert http.post(BULK_APPLY_PATH, json={"apiVersion": "v1", "kind": "List", "items": []}).status_code == 404
        assert _apply_mixed(home, tmp_path) == EXPECTED
        write_plugins(tmp_path / "many", 50)
        result = run_cli(home, "apply", "-f", str(tmp_path / "many"))
        assert result.output.splitlines() == [f"pluginmanifest.mfx.musicfox.io/pm-{i:04d} created" for i in range(50)]
        assert len(stored_names(home)) == 54


def test_the_same_object_twice_in_one_bulk_request_applies_in_order(daemon: ThreadDaemon) -> None:
    # mfx apply refuses such a set; a client of the API may still send one.
    def item(version: str) -> Obj:
        return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "twice"},
                "spec": {"version": version, "type": "rpc", "entryPoint": "python -m x"}}

    with local(daemon.config.home) as http:
        answer = http.post(BULK_APPLY_PATH, params={"fieldManager": "test"},
                           json={"apiVersion": "v1", "kind": "List", "items": [item("1.0.0"), item("3.0.0")]})
        assert answer.status_code == 200, answer.text
        assert [i["outcome"] for i in answer.json()["items"]] == ["created", "configured"]
        assert http.get(f"{PM}/twice").json()["spec"]["version"] == "3.0.0"


def test_server_dry_run_over_the_bulk_path_stores_nothing(daemon: ThreadDaemon, tmp_path: Path) -> None:
    home = daemon.config.home
    write_plugins(tmp_path / "few", 3)
    result = run_cli(home, "apply", "-f", str(tmp_path / "few"), "--dry-run=server")
    assert result.output.splitlines() == [
        f"pluginmanifest.mfx.musicfox.io/pm-{i:04d} created (server dry run)" for i in range(3)]
    assert stored_names(home) == []


def test_an_invalid_set_is_named_as_a_client_dry_run_names_it(daemon: ThreadDaemon, tmp_path: Path) -> None:
    # The daemon validates what it is sent; its refusal is worded with files and lines, every
    # problem of every file at once, exactly as a validation on the client words it.
    home = daemon.config.home
    paths = write_plugins(tmp_path / "bad", 4)
    paths[1].write_text(plugin("pm-0001").replace("version: 1.0.0", "version: one"))
    paths[3].write_text(plugin("PM_3"))
    local_check = run_cli(home, "apply", "-f", str(tmp_path / "bad"), "--dry-run=client")
    applied = run_cli(home, "apply", "-f", str(tmp_path / "bad"))
    assert applied.exit_code == local_check.exit_code == 1
    assert applied.output == local_check.output
    assert f"{paths[1]}:7: spec.version:" in applied.output and f"{paths[3]}:4: metadata.name:" in applied.output
    assert stored_names(home) == []


def test_two_documents_naming_one_object_are_refused_before_sending(daemon: ThreadDaemon, tmp_path: Path) -> None:
    home = daemon.config.home
    write_plugins(tmp_path / "twice", 200)
    # Read last: the streamed request had sent pieces of the others, and is aborted.
    (tmp_path / "twice" / "zz-again.yaml").write_text(plugin("pm-0001", version="2.0.0"))
    result = run_cli(home, "apply", "-f", str(tmp_path / "twice"))
    assert result.exit_code == 1
    assert "PluginManifest 'pm-0001' is defined twice" in result.output
    assert stored_names(home) == []


def test_annotations_that_are_not_a_map_are_refused_by_the_bulk_path(daemon: ThreadDaemon) -> None:
    item = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
            "metadata": {"name": "listed", "annotations": [["a", "b"]]},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m x"}}
    with local(daemon.config.home) as http:
        answer = http.post(BULK_APPLY_PATH, json={"apiVersion": "v1", "kind": "List", "items": [item]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["details"]["causes"][0]["field"] == "items[0].metadata.annotations"
    assert stored_names(daemon.config.home) == []


def test_chunks_fit_the_daemons_body_limit() -> None:
    assert bulk_client.MAX_BODY_BYTES == bodies.MAX_BODY_BYTES
    encoded = [b"x" * 400] * 10
    groups = list(bulk_client.chunks(encoded, limit=1000))
    assert [i for g in groups for i in g] == list(range(10))
    assert all(len(g) == 2 for g in groups)
    # 1000 ordinary manifests are one request: one transaction for the whole apply.
    manifest = (b'{"apiVersion":"mfx.musicfox.io/v1alpha1","kind":"PluginManifest","metadata":{"name":"pm-0000",'
                b'"labels":{"tier":"core"}},"spec":{"version":"1.0.0","type":"rpc","entryPoint":"python -m hello"}}')
    assert len(list(bulk_client.chunks([manifest] * COUNT))) == 1


@pytest.mark.anyio
async def test_the_stores_write_all_is_all_or_nothing(tmp_path: Path) -> None:
    def pm(name: str) -> Obj:
        return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
                "spec": {"version": "1.0.0"}}

    async with SQLiteStore(tmp_path / "store.db") as store:
        await store.create(pm("existing"))
        before = await store.current_resource_version()
        stale = pm("existing")
        stale["metadata"]["resourceVersion"] = "1"  # not the stored one: this write conflicts
        writes = [BatchWrite(BatchAction.CREATE, pm(f"new-{i}")) for i in range(100)]
        with pytest.raises(ConflictError):
            await store.write_all([*writes, BatchWrite(BatchAction.UPDATE, stale)])
        assert (await store.list("PluginManifest")).items[0]["metadata"]["name"] == "existing"
        assert len((await store.list("PluginManifest")).items) == 1
        assert await store.current_resource_version() == before
        stored = await store.write_all(writes)
        assert [o["metadata"]["name"] for o in stored] == [f"new-{i}" for i in range(100)]
        assert len(await store.get_many([("PluginManifest", f"new-{i}") for i in range(150)])) == 100


@pytest.mark.anyio
async def test_a_bulk_apply_that_loses_a_race_is_planned_again_from_the_items_as_sent(tmp_path: Path) -> None:
    def item(name: str, version: str) -> Obj:
        return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
                "spec": {"version": version, "type": "rpc", "entryPoint": "python -m x"}}

    async with SQLiteStore(tmp_path / "store.db") as store:
        await store.create(Admission().admit(item("existing", "1.0.0")))
        racing = RacingStore(store, "existing")
        app = Starlette(routes=bulk_apply_routes(racing, Admission()))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mfx") as http:
            answer = await http.post(BULK_APPLY_PATH, json={"apiVersion": "v1", "kind": "List", "items": [
                item("existing", "2.0.0"), item("new-0", "1.0.0"), item("new-1", "1.0.0")]})
        assert answer.status_code == 200, answer.text
        assert racing.raced
        assert [i["outcome"] for i in answer.json()["items"]] == ["configured", "created", "created"]
        existing = await store.get("PluginManifest", "existing")
        assert existing["spec"]["version"] == "2.0.0" and existing["metadata"]["labels"]["touched"] == "meanwhile"
        for name in ("new-0", "new-1"):
            created = await store.get("PluginManifest", name)
            # What the second plan recorded as applied is the document as sent, not what the first made of it.
            applied = json.loads(created["metadata"]["annotations"][LAST_APPLIED_ANNOTATION])
            assert applied == item(name, "1.0.0")
            assert created["spec"]["healthCheck"]  # defaulted, as ever


@pytest.mark.anyio
async def test_status_writes_racing_every_bulk_apply_do_not_refuse_it(tmp_path: Path) -> None:
    def item(name: str, version: str) -> Obj:
        return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
                "spec": {"version": version, "type": "rpc", "entryPoint": "python -m x"}}

    names = [f"pm-{i}" for i in range(20)]
    async with SQLiteStore(tmp_path / "store.db") as store:
        await create_admitted(store, (item(name, "1.0.0") for name in names))
        reporting = StatusWritingStore(store)
        app = Starlette(routes=bulk_apply_routes(reporting, Admission()))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mfx") as http:
            answer = await http.post(BULK_APPLY_PATH, json={"apiVersion": "v1", "kind": "List",
                                                             "items": [item(name, "2.0.0") for name in names]})
        assert answer.status_code == 200, answer.text
        assert reporting.rounds
        assert {i["outcome"] for i in answer.json()["items"]} == {"configured"}
        await assert_written_over_one_status_write(store, names, "2.0.0")
