"""The HTTP API speaks Kubernetes: paths, lists, Status errors, conflicts, finalizers,
patches, Tables, and watches that resume from a resourceVersion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon_harness import ThreadDaemon

BASE = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"


def plugin(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m x", **spec},
    }


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    with ThreadDaemon(tmp_path / "home").running() as daemon:
        transport = httpx.HTTPTransport(uds=str(daemon.socket))
        with httpx.Client(transport=transport, base_url="http://mfx", timeout=10) as client:
            yield client


def test_discovery(api: httpx.Client) -> None:
    groups = api.get("/apis").json()
    assert groups["groups"][0]["name"] == "mfx.musicfox.io"
    resources = api.get("/apis/mfx.musicfox.io/v1alpha1").json()["resources"]
    names = {r["name"]: r for r in resources}
    assert names["pluginmanifests"]["shortNames"][0] == "pm"
    assert names["pluginmanifests"]["namespaced"] is False
    assert "pluginmanifests/status" in names
    assert api.get("/version").json()["gitVersion"].startswith("v")
    assert api.get("/healthz").text == "ok"


def test_create_get_list_and_not_found_status(api: httpx.Client) -> None:
    created = api.post(BASE, json=plugin("alpha"))
    assert created.status_code == 201
    obj = created.json()
    assert obj["metadata"]["uid"] and obj["metadata"]["generation"] == 1
    assert obj["metadata"]["creationTimestamp"].endswith("Z")
    again = api.post(BASE, json=plugin("alpha"))
    assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"
    listing = api.get(BASE).json()
    assert listing["kind"] == "PluginManifestList" and [i["metadata"]["name"] for i in listing["items"]] == ["alpha"]
    missing = api.get(f"{BASE}/nope")
    assert missing.status_code == 404
    status = missing.json()
    assert status["kind"] == "Status" and status["reason"] == "NotFound" and status["details"]["name"] == "nope"


def test_invalid_object_is_a_422_with_field_causes(api: httpx.Client) -> None:
    response = api.post(BASE, json=plugin("alpha", version="one", healthCheck={"interval": "often"}))
    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid"
    fields = {cause["field"] for cause in status["details"]["causes"]}
    assert {"spec.version", "spec.healthCheck.interval"} <= fields


def test_stale_resource_version_is_a_conflict(api: httpx.Client) -> None:
    obj = api.post(BASE, json=plugin("alpha")).json()
    first = dict(obj, spec=dict(obj["spec"], version="1.1.0"))
    assert api.put(f"{BASE}/alpha", json=first).status_code == 200
    stale = dict(obj, spec=dict(obj["spec"], version="1.2.0"))
    response = api.put(f"{BASE}/alpha", json=stale)
    assert response.status_code == 409 and response.json()["reason"] == "Conflict"
    assert api.get(f"{BASE}/alpha").json()["spec"]["version"] == "1.1.0"


def test_merge_and_json_patches(api: httpx.Client) -> None:
    api.post(BASE, json=plugin("alpha"))
    merged = api.patch(f"{BASE}/alpha", content=json.dumps({"spec": {"version": "2.0.0"}}),
                       headers={"Content-Type": "application/merge-patch+json"})
    assert merged.status_code == 200 and merged.json()["metadata"]["generation"] == 2
    patched = api.patch(f"{BASE}/alpha", content=json.dumps([{"op": "replace", "path": "/spec/version", "value": "2.1.0"}]),
                        headers={"Content-Type": "application/json-patch+json"})
    assert patched.json()["spec"]["version"] == "2.1.0"
    invalid = api.patch(f"{BASE}/alpha", content=json.dumps({"spec": {"version": "x"}}),
                        headers={"Content-Type": "application/merge-patch+json"})
    assert invalid.status_code == 422


def test_status_is_written_only_through_the_status_subresource(api: httpx.Client) -> None:
    obj = api.post(BASE, json=plugin("alpha")).json()
    with_status = dict(obj, status={"observedGeneration": 1})
    updated = api.put(f"{BASE}/alpha", json=with_status).json()
    assert "status" not in updated or updated["status"] == {}
    status = {"conditions": [{"type": "Ready", "status": "True", "reason": "Running", "message": "",
                              "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    written = api.patch(f"{BASE}/alpha/status", content=json.dumps({"status": status}),
                        headers={"Content-Type": "application/merge-patch+json"}).json()
    assert written["status"]["conditions"][0]["type"] == "Ready"
    assert written["metadata"]["generation"] == 1


def test_finalizers_hold_deletion_until_removed(api: httpx.Client) -> None:
    obj = plugin("alpha")
    obj["metadata"]["finalizers"] = ["test/hold"]
    api.post(BASE, json=obj)
    deleting = api.delete(f"{BASE}/alpha").json()
    assert deleting["metadata"]["deletionTimestamp"]
    assert api.get(f"{BASE}/alpha").status_code == 200
    api.patch(f"{BASE}/alpha", content=json.dumps({"metadata": {"finalizers": None}}),
              headers={"Content-Type": "application/merge-patch+json"})
    assert api.get(f"{BASE}/alpha").status_code == 404


def test_table_response_has_printer_columns(api: httpx.Client) -> None:
    api.post(BASE, json=plugin("alpha"))
    table = api.get(BASE, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert table["kind"] == "Table"
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:3] == ["Name", "Version", "Type"]
    # VERSION is the version that runs: no controller runs in this daemon, so none.
    assert table["rows"][0]["cells"][:3] == ["alpha", None, "rpc"]


def test_paging_with_limit_and_continue(api: httpx.Client) -> None:
    for i in range(7):
        api.post(BASE, json=plugin(f"p{i}"))
    seen: list[str] = []
    token = None
    while True:
        params = {"limit": "3", **({"continue": token} if token else {})}
        page = api.get(BASE, params=params).json()
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert seen == [f"p{i}" for i in range(7)]


def test_watch_resumes_from_a_resource_version(api: httpx.Client) -> None:
    first = api.post(BASE, json=plugin("alpha")).json()
    rv = first["metadata"]["resourceVersion"]
    api.post(BASE, json=plugin("beta"))
    api.delete(f"{BASE}/alpha")
    seen = []
    with api.stream("GET", BASE, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "2"}) as stream:
        for line in stream.iter_lines():
            event = json.loads(line)
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if len(seen) == 2:
                break
    assert seen == [("ADDED", "beta"), ("DELETED", "alpha")]


def test_identity_mismatch_and_bad_json_are_bad_requests(api: httpx.Client) -> None:
    api.post(BASE, json=plugin("alpha"))
    assert api.put(f"{BASE}/alpha", json=plugin("beta")).status_code == 400
    bad = api.post(BASE, content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["kind"] == "Status"
