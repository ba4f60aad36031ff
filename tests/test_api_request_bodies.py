"""Every request body goes through one hardened loader: oversized, hostile or malformed input
is answered with a 4xx Status that names what was wrong, and nothing invalid is stored.

Each test here stands for a body that once made the daemon store an exploded object, keep
the last of two keys silently, or answer 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.abc import TaskGroup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mfx.server.daemon import DaemonContext
from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon

GROUP = "/apis/mfx.musicfox.io/v1alpha1"
BASE = f"{GROUP}/pluginmanifests"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
MAX_BODY_BYTES = 3 * 1024 * 1024  # as the Kubernetes API server


def plugin(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m x", **spec},
    }


async def _failing_route(context: DaemonContext, group: TaskGroup) -> None:
    """A route whose handler has a bug, to see what the API makes of an unexpected exception."""

    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug in a handler")

    context.api.extra_routes.append(Route("/broken", broken, methods=["GET"]))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    with ThreadDaemon(tmp_path / "home", services=[_failing_route]).running() as daemon:
        transport = httpx.HTTPTransport(uds=str(daemon.socket))
        with httpx.Client(transport=transport, base_url="http://mfx", timeout=30) as client:
            yield client


def send(api: httpx.Client, method: str, url: str, body: str | bytes, content_type: str = "application/json") -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return api.request(method, url, content=data, headers={"content-type": content_type})


def status_of(response: httpx.Response, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    status: dict[str, Any] = response.json()
    assert status["kind"] == "Status" and status["code"] == code
    return status


def alias_bomb(name: str) -> str:
    """575 bytes of YAML that a plain loader expands into about a billion strings."""
    levels = ["    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for this, previous in zip("bcdefghi", "abcdefgh", strict=True):
        levels.append(f"    {this}: &{this} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return (f"apiVersion: mfx.musicfox.io/v1alpha1\nkind: PluginManifest\nmetadata: {{name: {name}}}\n"
            "spec:\n  version: 1.0.0\n  type: rpc\n  entryPoint: python -m x\n  config:\n" + "\n".join(levels) + "\n")


def test_an_alias_bomb_applied_server_side_is_refused_and_nothing_is_stored(api: httpx.Client) -> None:
    response = send(api, "PATCH", f"{BASE}/bomb?fieldManager=gitops", alias_bomb("bomb"), APPLY)
    status = status_of(response, 422)
    assert "aliases more than 100 times" in status["message"]
    assert status["details"]["causes"][0]["field"].startswith("spec.config.")
    assert api.get(f"{BASE}/bomb").status_code == 404

    # Applied over an existing object, it leaves that object as it was.
    assert api.post(BASE, json=plugin("kept")).status_code == 201
    before = api.get(f"{BASE}/kept").json()
    status_of(send(api, "PATCH", f"{BASE}/kept?fieldManager=gitops", alias_bomb("kept"), APPLY), 422)
    assert api.get(f"{BASE}/kept").json() == before


def test_duplicate_keys_are_refused_in_json_and_yaml_bodies(api: httpx.Client) -> None:
    doubled = ('{"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", '
               '"metadata": {"name": "first", "name": "second"}, '
               '"spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m x"}}')
    status = status_of(send(api, "POST", BASE, doubled), 422)
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    assert 'duplicate key "name"' in status["message"]
    assert api.get(BASE).json()["items"] == []

    assert api.post(BASE, json=plugin("alpha")).status_code == 201
    patch = '{"spec": {"version": "2.0.0", "version": "3.0.0"}}'
    status = status_of(send(api, "PATCH", f"{BASE}/alpha", patch, MERGE), 422)
    assert status["details"]["causes"][0]["field"] == "spec.version"
    applied = ("apiVersion: mfx.musicfox.io/v1alpha1\nkind: PluginManifest\nmetadata: {name: alpha}\n"
               "spec:\n  version: 2.0.0\n  version: 3.0.0\n")
    status = status_of(send(api, "PATCH", f"{BASE}/alpha?fieldManager=me", applied, APPLY), 422)
    assert "spec.version" in status["message"] and "line 5" in status["message"]
    assert api.get(f"{BASE}/alpha").json()["spec"]["version"] == "1.0.0"


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deeply_nested_json_is_a_422_naming_the_limit(api: httpx.Client, depth: int) -> None:
    nested = '{"a": ' * depth + "1" + "}" * depth
    body = json.dumps(plugin("deep")).replace('"entryPoint"', f'"config": {nested}, "entryPoint"')
    status = status_of(send(api, "POST", BASE, body), 422)
    assert "nested more than 100 levels deep" in status["message"]
    assert api.get(f"{BASE}/deep").status_code == 404


def test_metadata_that_is_not_an_object_is_a_422_on_every_write(api: httpx.Client) -> None:
    bad = {**plugin("alpha"), "metadata": "x"}
    for response in (
        api.post(BASE, json=bad),
        send(api, "PATCH", f"{BASE}/alpha?fieldManager=me", json.dumps(bad), APPLY),
    ):
        assert status_of(response, 422)["details"]["causes"][0]["field"] == "metadata"
    assert api.post(BASE, json=plugin("alpha")).status_code == 201
    for response in (
        api.put(f"{BASE}/alpha", json=bad),
        send(api, "PATCH", f"{BASE}/alpha", '{"metadata": "x"}', MERGE),
        send(api, "PATCH", f"{BASE}/alpha", '[{"op": "replace", "path": "/metadata", "value": "x"}]', JSON_PATCH),
        api.put(f"{BASE}/alpha/status", json=bad),
        send(api, "PATCH", f"{BASE}/alpha/status", '{"metadata": "x"}', MERGE),
    ):
        assert status_of(response, 422)["details"]["causes"][0]["field"] == "metadata"
    assert api.get(f"{BASE}/alpha").json()["metadata"]["name"] == "alpha"


def test_values_json_cannot_carry_back_are_refused(api: httpx.Client) -> None:
    for config, field in (('{"gain": NaN}', "gain"), ('{"gain": Infinity}', "gain"), ('{"big": 1e999}', "big"),
                          ('{"big": 123456789012345678901234567890}', "big"), ('{"text": "\\ud800"}', "text")):
        body = json.dumps(plugin("odd")).replace('"entryPoint"', f'"config": {config}, "entryPoint"')
        status = status_of(send(api, "POST", BASE, body), 422)
        assert status["details"]["causes"][0]["field"] == f"spec.config.{field}", status
    inf = ("apiVersion: mfx.musicfox.io/v1alpha1\nkind: PluginManifest\nmetadata: {name: odd}\n"
           "spec: {version: 1.0.0, type: rpc, entryPoint: x, config: {gain: .inf}}\n")
    status = status_of(send(api, "PATCH", f"{BASE}/odd?fieldManager=me", inf, APPLY), 422)
    assert status["details"]["causes"][0]["field"] == "spec.config.gain"
    assert api.get(BASE).json()["items"] == []


def test_bodies_of_the_wrong_shape_are_bad_requests(api: httpx.Client) -> None:
    assert api.post(BASE, json=plugin("alpha")).status_code == 201
    for method, url, body, media in (
        ("POST", BASE, "[1, 2]", "application/json"),
        ("POST", BASE, '"text"', "application/json"),
        ("POST", BASE, "", "application/json"),
        ("POST", BASE, b"\xff\xfe", "application/json"),
        ("PUT", f"{BASE}/alpha", "null", "application/json"),
        ("PATCH", f"{BASE}/alpha", "[1]", MERGE),
        ("PATCH", f"{BASE}/alpha", "7", MERGE),
        ("PATCH", f"{BASE}/alpha", '{"op": "add"}', JSON_PATCH),
        ("PATCH", f"{BASE}/alpha", '"[{\\"op\\": \\"remove\\", \\"path\\": \\"/spec\\"}]"', JSON_PATCH),
        ("PATCH", f"{BASE}/alpha", '[{"op": 5, "path": 7}]', JSON_PATCH),
        ("PATCH", f"{BASE}/alpha", '[{"op": "replace", "path": "", "value": 1}]', JSON_PATCH),
        ("PATCH", f"{BASE}/alpha", '[{"op": "add", "path": "/spec/version/0", "value": 1}]', JSON_PATCH),
        ("PATCH", f"{BASE}/alpha?fieldManager=me", "- 1\n- 2\n", APPLY),
        ("PATCH", f"{BASE}/alpha?fieldManager=me", "a: 1\n---\nb: 2\n", APPLY),
        ("PATCH", f"{BASE}/alpha/status", "[1]", MERGE),
        ("PUT", f"{BASE}/alpha/status", "5", "application/json"),
        ("DELETE", f"{BASE}/alpha", '{"preconditions": "x"}', "application/json"),
        ("DELETE", f"{BASE}/alpha", '{"preconditions": {"resourceVersion": "abc"}}', "application/json"),
        ("DELETE", f"{BASE}/alpha", '{"preconditions": {"resourceVersion": "99999999999999999999"}}', "application/json"),
    ):
        response = send(api, method, url, body, media)
        assert response.status_code == 400, (method, url, body, response.text)
        assert response.json()["reason"] == "BadRequest" and response.json()["message"]
    assert api.get(f"{BASE}/alpha").json()["spec"]["version"] == "1.0.0"


def test_status_writes_are_checked_against_the_status_schema(api: httpx.Client) -> None:
    assert api.post(BASE, json=plugin("alpha")).status_code == 201
    for status, field in ((5, "status"), ({"conditions": 5}, "status.conditions"),
                          ({"conditions": [{"type": "Ready", "status": "Maybe"}]}, "status.conditions[0].status"),
                          ({"restartCount": "many"}, "status.restartCount")):
        answer = status_of(send(api, "PATCH", f"{BASE}/alpha/status", json.dumps({"status": status}), MERGE), 422)
        assert answer["details"]["causes"][0]["field"] == field
    assert "status" not in api.get(f"{BASE}/alpha").json()
    ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "Running", "message": "",
                             "lastTransitionTime": "2026-01-01T00:00:00Z"}], "restartCount": 0}
    assert send(api, "PATCH", f"{BASE}/alpha/status", json.dumps({"status": ready}), MERGE).status_code == 200


def test_managed_fields_sent_back_must_keep_their_shape(api: httpx.Client) -> None:
    applied = ("apiVersion: mfx.musicfox.io/v1alpha1\nkind: PluginManifest\nmetadata: {name: alpha}\n"
               "spec: {version: 1.0.0, type: rpc, entryPoint: python -m x}\n")
    assert send(api, "PATCH", f"{BASE}/alpha?fieldManager=gitops", applied, APPLY).status_code == 201
    current = api.get(f"{BASE}/alpha").json()
    for managed, field in ((True, "metadata.managedFields"), (["x"], "metadata.managedFields[0]"),
                           ([{"manager": 5, "fieldsV1": []}], "metadata.managedFields[0].manager")):
        replaced = {**current, "metadata": {**current["metadata"], "managedFields": managed}}
        status = status_of(api.put(f"{BASE}/alpha", json=replaced), 422)
        assert status["details"]["causes"][0]["field"] == field
    # null is no list of entries: on a replace it keeps them, in a patch it removes them.
    replaced = {**current, "metadata": {**current["metadata"], "managedFields": None}}
    assert api.put(f"{BASE}/alpha", json=replaced).json()["metadata"]["managedFields"] == current["metadata"]["managedFields"]
    patched = send(api, "PATCH", f"{BASE}/alpha", '[{"op": "add", "path": "/metadata/managedFields", "value": null}]',
                   JSON_PATCH)
    assert patched.status_code == 200 and "managedFields" not in patched.json()["metadata"]
    # The owner can still apply.
    assert send(api, "PATCH", f"{BASE}/alpha?fieldManager=gitops", applied.replace("1.0.0", "1.1.0"), APPLY).status_code == 200


def test_a_body_over_the_limit_is_a_413(api: httpx.Client) -> None:
    huge = json.dumps(plugin("huge", config={"blob": "x" * MAX_BODY_BYTES}))
    status = status_of(send(api, "POST", BASE, huge), 413)
    assert status["reason"] == "RequestEntityTooLarge" and str(MAX_BODY_BYTES) in status["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield huge.encode()

    response = api.request("POST", BASE, content=chunks(), headers={"content-type": "application/json"})
    assert status_of(response, 413)["reason"] == "RequestEntityTooLarge"

    # YAML, ten times slower to read, has the limit of a manifest file; the same object as JSON is fine.
    manifest = ("apiVersion: mfx.musicfox.io/v1alpha1\nkind: PluginManifest\nmetadata: {name: big}\n"
                "spec: {version: 1.0.0, type: rpc, entryPoint: python -m x}\n")
    padded = manifest + "#" * (1024 * 1024) + "\n"
    status = status_of(send(api, "PATCH", f"{BASE}/big?fieldManager=me", padded, APPLY), 413)
    assert "1 MiB" in status["message"] and "JSON" in status["message"]
    assert api.get(BASE).json()["items"] == []
    as_json = json.dumps(plugin("big")) + " " * (1024 * 1024)
    assert send(api, "PATCH", f"{BASE}/big?fieldManager=me", as_json, APPLY).status_code == 201


def test_bad_query_parameters_are_bad_requests(api: httpx.Client) -> None:
    for query in ("limit=abc", "limit=-1", "limit=99999999999999999999", "watch=1&resourceVersion=abc",
                  "watch=1&resourceVersion=99999999999999999999", "watch=1&timeoutSeconds=soon",
                  "limit=" + "9" * 5000):
        response = api.get(f"{BASE}?{query}")
        assert response.status_code == 400, (query, response.text)
        assert response.json()["message"].startswith(query.split("&")[-1].split("=")[0])


def test_an_unexpected_error_is_logged_and_answered_with_a_status(
    api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="mfx.server"):
        response = api.get("/broken")
    status = status_of(response, 500)
    assert status["reason"] == "InternalError" and "RuntimeError: a bug in a handler" in status["message"]
    logged = [r for r in caplog.records if r.name == "mfx.server" and "/broken" in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_player_and_plugin_call_bodies_go_through_the_same_loader(tmp_path: Path) -> None:
    with ThreadDaemon(tmp_path / "home", services=default_services()).running() as daemon:
        transport = httpx.HTTPTransport(uds=str(daemon.socket))
        with httpx.Client(transport=transport, base_url="http://mfx", timeout=30) as api:
            player = "/apis/player.mfx.musicfox.io/v1"
            status = status_of(send(api, "PUT", f"{player}/mode", '{"mode": "shuffle", "mode": "loop-all"}'), 422)
            assert status["details"]["causes"][0]["field"] == "mode"
            assert api.get(f"{player}/state").json()["mode"] != "loop-all"
            status = status_of(send(api, "POST", f"{player}/seek", '{"seconds": NaN}'), 422)
            assert status["details"]["causes"][0]["field"] == "seconds"
            status_of(send(api, "PUT", f"{player}/volume", '[50]'), 400)

            call = f"{BASE}/hello/call"
            status = status_of(send(api, "POST", call, '{"method": "greet", "method": "exit"}'), 422)
            assert status["details"]["causes"][0]["field"] == "method"
            status_of(send(api, "POST", call, '{"method": "greet", "params": ' + "[" * 500 + "]" * 500 + "}"), 422)


def test_event_patches_keep_the_types_the_recorder_reads_back(api: httpx.Client) -> None:
    events = "/api/v1/namespaces/default/events"
    record = {"involvedObject": {"kind": "PluginManifest", "name": "alpha"}, "reason": "Started", "type": "Normal"}
    name = api.post(events, json=record).json()["metadata"]["name"]
    for patch, field in (({"count": "x"}, "count"), ({"lastTimestamp": 5}, "lastTimestamp"),
                         ({"involvedObject": 5}, "involvedObject"), ({"source": {"component": []}}, "source")):
        status = status_of(send(api, "PATCH", f"{events}/{name}", json.dumps(patch), MERGE), 422)
        assert status["details"]["causes"][0]["field"] == field
    again = api.post(events, json=record)
    assert again.status_code == 201 and again.json()["count"] == 2
    table = api.get(events, headers={"accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert table.status_code == 200 and len(table.json()["rows"]) == 1
