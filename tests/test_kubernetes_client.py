"""The official Kubernetes Python client (DynamicClient, CustomObjectsApi, CoreV1Api) against
the daemon's TLS listener, configured from the kubeconfig `mfx config kubeconfig` writes.

The daemon runs in-process (ThreadDaemon: the same code as `mfx serve`, with its controllers)
so coverage measures the API; tests/test_kubectl.py drives `mfx serve` as a process."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import config as kube_config
from kubernetes import dynamic
from kubernetes.client import ApiClient, Configuration, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, UnprocessibleEntityError
from kubernetes.dynamic.resource import Resource

from mfx.server.services import default_services
from tests.daemon_harness import REPO, ThreadDaemon, run_cli

API_VERSION = "mfx.musicfox.io/v1alpha1"
READY = {"type": "Ready", "status": "True", "reason": "Running", "message": "up",
         "lastTransitionTime": "2026-01-01T00:00:00Z"}


def plugin(name: str, version: str = "1.0.0") -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "PluginManifest", "metadata": {"name": name, "labels": {"t": "py"}},
            "spec": {"version": version, "type": "rpc", "entryPoint": "python -m hello"}}


@pytest.fixture(scope="module")
def api_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiClient]:
    root = tmp_path_factory.mktemp("pyclient")
    home = root / "home"
    daemon = ThreadDaemon(home, services=default_services(), listen="127.0.0.1:0", plugin_paths=[REPO / "plugins"])
    with daemon.running():
        kubeconfig = root / "kubeconfig"
        written = run_cli(home, "config", "kubeconfig", "--output", str(kubeconfig))
        assert written.exit_code == 0, written.output
        configuration = Configuration()
        kube_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        with ApiClient(configuration) as client:
            yield client


@pytest.fixture(scope="module")
def plugins(api_client: ApiClient) -> Resource:
    client = dynamic.DynamicClient(api_client)
    return client.resources.get(api_version=API_VERSION, kind="PluginManifest")


Event = tuple[str, dict[str, Any]]


class Watch:
    """A watch of ``resource`` from ``resource_version``, read by a thread until ``done(event)``."""

    def __init__(self, resource: Resource, resource_version: str, done: Callable[[Event], bool]) -> None:
        self.events: list[Event] = []
        self.thread = threading.Thread(target=self._run, args=(resource, resource_version, done), daemon=True)
        self.thread.start()

    def _run(self, resource: Resource, resource_version: str, done: Callable[[Event], bool]) -> None:
        for raw in resource.watch(resource_version=resource_version, timeout=30):
            event = (raw["type"], raw["object"].to_dict())
            self.events.append(event)
            if done(event):
                return

    def result(self) -> list[Event]:
        self.thread.join(timeout=40)
        assert not self.thread.is_alive(), f"the watch did not see what it waited for; saw {self.events}"
        return self.events


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def test_list_create_patch_watch_delete(plugins: Resource) -> None:
    created = plugins.create(body=plugin("py-alpha"))
    assert created.metadata.generation == 1 and created.metadata.uid
    listed = plugins.get(label_selector="t=py")
    assert listed.kind == "PluginManifestList" and "py-alpha" in [i.metadata.name for i in listed.items]
    assert listed.metadata.resourceVersion

    watch = Watch(plugins, created.metadata.resourceVersion,
                  lambda event: event[0] == "DELETED" and event[1]["metadata"]["name"] == "py-alpha")
    patched = plugins.patch(name="py-alpha", body={"spec": {"version": "1.2.0"}},
                            content_type="application/merge-patch+json")
    assert patched.spec.version == "1.2.0" and patched.metadata.generation == 2
    plugins.delete(name="py-alpha")
    mine = [(kind, obj) for kind, obj in watch.result() if obj["metadata"]["name"] == "py-alpha"]
    # The controller's writes (finalizer, status) are MODIFIED events too; the patch is among them.
    assert {kind for kind, _ in mine[:-1]} == {"MODIFIED"} and mine[-1][0] == "DELETED"
    assert any(obj["spec"]["version"] == "1.2.0" and obj["metadata"]["generation"] == 2 for _, obj in mine)
    with pytest.raises(NotFoundError):
        plugins.get(name="py-alpha")


def test_a_status_written_by_the_controller_reaches_a_watch(plugins: Resource) -> None:
    manifest = yaml.safe_load((REPO / "plugins" / "hello-rpc" / "plugin.yaml").read_text())
    rv = plugins.get().metadata.resourceVersion
    watch = Watch(plugins, rv, lambda event: condition(event[1], "Ready").get("status") == "True")
    plugins.create(body=manifest)
    kind, obj = watch.result()[-1]
    assert kind == "MODIFIED" and obj["metadata"]["name"] == "hello-rpc"
    assert condition(obj, "Ready")["reason"] == "Running" and obj["status"]["observedGeneration"] == 1


def test_a_status_written_through_the_subresource_reaches_a_watch(plugins: Resource) -> None:
    created = plugins.create(body=plugin("py-status"))
    mark = {**READY, "type": "Probed", "reason": "WrittenByTest"}
    watch = Watch(plugins, created.metadata.resourceVersion,
                  lambda event: condition(event[1], "Probed").get("reason") == "WrittenByTest")
    # How an external controller writes status; the server retries if the daemon's own
    # controller wrote in between (no resourceVersion in the patch).
    written = plugins.status.patch(name="py-status", body={"status": {"conditions": [mark]}},
                                   content_type="application/merge-patch+json")
    assert written.metadata.generation == 1 and condition(written.to_dict(), "Probed")["status"] == "True"
    assert watch.result()[-1][0] == "MODIFIED"


def test_errors_are_kubernetes_status_objects(plugins: Resource) -> None:
    plugins.create(body=plugin("py-errors"))
    with pytest.raises(ConflictError) as exists:
        plugins.create(body=plugin("py-errors"))
    assert exists.value.status == 409 and "already exists" in exists.value.summary()
    with pytest.raises(UnprocessibleEntityError) as invalid:
        plugins.create(body=plugin("py-invalid", version="one"))
    assert invalid.value.status == 422 and "spec.version" in invalid.value.summary()
    stale = plugins.get(name="py-errors").to_dict()
    plugins.patch(name="py-errors", body={"spec": {"version": "1.0.1"}}, content_type="application/merge-patch+json")
    stale["spec"]["version"] = "1.0.2"
    with pytest.raises(ConflictError):
        plugins.replace(body=stale)


def test_server_side_apply(plugins: Resource) -> None:
    applied = plugins.server_side_apply(body=plugin("py-ssa"), field_manager="python")
    assert applied.metadata.managedFields[0].manager == "python"
    again = plugins.server_side_apply(body=plugin("py-ssa", version="1.1.0"), field_manager="python")
    assert again.spec.version == "1.1.0" and again.metadata.generation == 2


def test_custom_objects_api(api_client: ApiClient) -> None:
    api = CustomObjectsApi(api_client)
    api.create_cluster_custom_object("mfx.musicfox.io", "v1alpha1", "pluginmanifests", plugin("py-custom"))
    page: Any = api.list_cluster_custom_object("mfx.musicfox.io", "v1alpha1", "pluginmanifests", limit=1)
    assert len(page["items"]) == 1 and page["metadata"]["continue"]
    got: Any = api.get_cluster_custom_object("mfx.musicfox.io", "v1alpha1", "pluginmanifests", "py-custom")
    assert got["spec"]["entryPoint"] == "python -m hello"
    deleting: Any = api.delete_cluster_custom_object("mfx.musicfox.io", "v1alpha1", "pluginmanifests", "py-custom")
    # The controller's finalizer holds the object until it has stopped the plugin.
    assert deleting["metadata"]["name"] == "py-custom"
    deadline = time.monotonic() + 20
    with pytest.raises(ApiException) as missing:
        while time.monotonic() < deadline:
            api.get_cluster_custom_object("mfx.musicfox.io", "v1alpha1", "pluginmanifests", "py-custom")
            threading.Event().wait(0.1)
    assert missing.value.status == 404


def test_a_wrong_token_is_refused(api_client: ApiClient, tmp_path: Path) -> None:
    configuration = Configuration()
    configuration.host = api_client.configuration.host
    configuration.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": "Bearer wrong"}
    with ApiClient(configuration) as client, pytest.raises(ApiException) as refused:
        CustomObjectsApi(client).list_cluster_custom_object("mfx.musicfox.io", "v1alpha1", "pluginmanifests")
    assert refused.value.status == 401


def test_kubeconfig_needs_a_daemon_listening_on_tcp(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    missing = run_cli(home, "config", "kubeconfig")
    assert missing.exit_code == 1 and "has no HTTPS listener" in missing.output and "--listen" in missing.output
    (home / "token").write_text("secret\n")
    plain = run_cli(home, "config", "kubeconfig", "--server", "http://127.0.0.1:6443")
    assert plain.exit_code == 0
    document = yaml.safe_load(plain.stdout)
    assert document["clusters"][0]["cluster"] == {"server": "http://127.0.0.1:6443"}
    assert document["users"][0]["user"]["token"] == "secret"
    assert "kubectl sends no credentials over plain http" in plain.stderr
    no_ca = run_cli(home, "config", "kubeconfig", "--server", "127.0.0.1:6443")
    assert no_ca.exit_code == 1 and "no CA certificate" in no_ca.output


def test_openapi_documents(api_client: ApiClient) -> None:
    config = api_client.configuration
    with httpx.Client(base_url=config.host, verify=ssl.create_default_context(cafile=config.ssl_ca_cert),
                      headers={"Authorization": config.api_key["BearerToken"]}) as http:
        index = http.get("/openapi/v3").json()
        document = http.get(index["paths"]["apis/mfx.musicfox.io/v1alpha1"]["serverRelativeURL"]).json()
        swagger = http.get("/openapi/v2", headers={"Accept": "application/json"}).json()
        protobuf = http.get("/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    schema = document["components"]["schemas"]["io.musicfox.mfx.v1alpha1.PluginManifest"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "mfx.musicfox.io", "kind": "PluginManifest", "version": "v1alpha1"}]
    assert "healthCheck" in schema["properties"]["spec"]["properties"]
    patch = document["paths"]["/apis/mfx.musicfox.io/v1alpha1/pluginmanifests/{name}"]["patch"]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert swagger["swagger"] == "2.0"
    definition = swagger["definitions"]["io.musicfox.mfx.v1alpha1.PluginManifest"]
    assert definition["properties"]["metadata"]["$ref"] == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    # client-go asks for protobuf only; 406 makes it fall back.
    assert protobuf.status_code == 406 and protobuf.json()["reason"] == "NotAcceptable"


def test_events_through_the_core_api(api_client: ApiClient, plugins: Resource) -> None:
    """How a controller written with the Kubernetes client reports events, and how kubectl
    describe finds the events of a cluster-scoped object (namespace "default", or all)."""
    obj = plugins.create(body=plugin("py-events"))
    core = CoreV1Api(api_client)
    event: Any = {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "py-events."},
             "involvedObject": {"apiVersion": API_VERSION, "kind": "PluginManifest", "name": "py-events",
                                "uid": obj.metadata.uid},
             "type": "Warning", "reason": "ProbeFailed", "message": "no answer in 2s",
             "source": {"component": "external-prober"}}
    created = core.create_namespaced_event("default", event)
    assert created.metadata.namespace == "default" and created.count == 1
    assert core.create_namespaced_event("default", event).count == 2  # a repeat counts up
    selector = f"involvedObject.name=py-events,involvedObject.namespace=,involvedObject.uid={obj.metadata.uid}"
    everywhere = core.list_event_for_all_namespaces(field_selector=selector + ",reason=ProbeFailed")
    assert [(e.reason, e.count, e.source and e.source.component) for e in everywhere.items] == [
        ("ProbeFailed", 2, "external-prober")]
    assert core.list_namespaced_event("default", field_selector=selector + ",reason=ProbeFailed").items
    assert core.list_namespaced_event("elsewhere", field_selector=selector).items == []
    patched = core.patch_namespaced_event(str(created.metadata.name), "default", {"message": "no answer in 3s"})
    assert patched.message == "no answer in 3s"
    with pytest.raises(ApiException) as invalid:
        core.create_namespaced_event("default", {**event, "type": "Dire", "reason": ""})  # type: ignore[arg-type]
    assert invalid.value.status == 422 and "reason" in str(invalid.value.body) and "type" in str(invalid.value.body)


def test_aggregated_discovery(api_client: ApiClient) -> None:
    config = api_client.configuration
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    with httpx.Client(base_url=config.host, verify=ssl.create_default_context(cafile=config.ssl_ca_cert),
                      headers={"Authorization": config.api_key["BearerToken"], "Accept": accept}) as http:
        groups = http.get("/apis")
        core = http.get("/api").json()
        legacy = http.get("/apis", headers={"Accept": "application/json"}).json()
    assert groups.headers["content-type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    resources = {r["resource"]: r for r in groups.json()["items"][0]["versions"][0]["resources"]}
    assert resources["pluginmanifests"]["scope"] == "Cluster" and "pm" in resources["pluginmanifests"]["shortNames"]
    assert resources["pluginmanifests"]["subresources"][0]["subresource"] == "status"
    assert core["items"][0]["versions"][0]["resources"][0]["resource"] == "events"
    assert legacy["kind"] == "APIGroupList"
