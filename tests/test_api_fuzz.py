"""Hostile request bodies against a real daemon: whatever arrives, the answer is never a 5xx,
every error is a Status, and every object the store holds afterwards is still valid.

Bodies are generated for each content type the API takes (JSON, merge patch, JSON patch,
strategic merge patch, apply YAML) and sent to create, replace, patch and status, and to the
player's and the plugin call's endpoints. They mix whole hostile documents (non-finite
numbers, huge integers, lone surrogates, duplicate keys, deep nesting, YAML aliases and
tags) with valid objects that have one field replaced by something generated, so that
validation is exercised past the first check.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfx.api import validation
from mfx.api.schema import Schemas, load_schemas
from mfx.server.admission import Admission
from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon

GROUP = "/apis/mfx.musicfox.io/v1alpha1"
PLAYER = "/apis/player.mfx.musicfox.io/v1"
API_VERSION = "mfx.musicfox.io/v1alpha1"

JSON = "application/json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# Valid objects of each kind; every example starts from (a copy of) one of them.
BASES: dict[str, tuple[str, dict[str, Any]]] = {
    "pluginmanifests": ("PluginManifest", {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m x",
                                           "config": {"folders": ["/music"]}}),
    "audiosinks": ("AudioSink", {"device": "default", "rate": 48000, "channels": 2, "format": "S16_LE"}),
    "gitsources": ("GitSource", {"url": "https://git.example.org/me/set.git", "ref": {"branch": "main"},
                                 "interval": "5m"}),
}
NAMES = ("fz-a", "fz-b")


def base_object(plural: str, name: str) -> dict[str, Any]:
    kind, spec = BASES[plural]
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, "labels": {"fuzz": "yes"}},
            "spec": copy.deepcopy(spec)}


# --- generated values -------------------------------------------------------------------------

keys = st.one_of(st.sampled_from(["metadata", "spec", "status", "name", "labels", "config", "version", "type",
                                  "entryPoint", "dependencies", "resources", "limits", "$patch", "", "a.b/c"]),
                 st.text(max_size=8))
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1.0.0", "^1.2", "10s", "256Mi", "500m", "rpc", "\ud800", "", "metadata"]),
)
generated = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(keys, inner, max_size=4)),
                         max_leaves=20)
# Plain values of each JSON type: a field of the wrong type is what handlers most often trip over.
WRONG_TYPES: list[Any] = [None, "x", -1, 1.5, True, [], ["x"], {}, {"a": 1}]
values = st.one_of(st.sampled_from(WRONG_TYPES), generated)
# Field paths worth replacing in a valid object: the top level, metadata, each spec field.
TOP_TARGETS = [("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("metadata", "labels"),
               ("metadata", "annotations"), ("metadata", "resourceVersion"), ("metadata", "managedFields"),
               ("metadata", "finalizers"), ("spec",), ("status",), ("extra",)]

def _spec_fields(schemas: Schemas, kind: str) -> list[tuple[str, ...]]:
    spec = schemas.openapi(kind)["properties"]["spec"]
    return [("spec", name) for name in spec.get("properties", {})]


SCHEMAS = load_schemas()
ADMISSION = Admission(SCHEMAS)
SPEC_FIELDS = {plural: _spec_fields(SCHEMAS, kind) for plural, (kind, _) in BASES.items()}
# Generated examples may put one kind's field into another kind, as a confused client would.
SPEC_TARGETS = sorted({field for fields in SPEC_FIELDS.values() for field in fields})


def nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def with_field(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    node = result
    for step in path[:-1]:
        if not isinstance(node.get(step), dict):
            node[step] = {}
        node = node[step]
    node[path[-1]] = value
    return result


@st.composite
def hostile_objects(draw: st.DrawFn, plural: str, name: str) -> Any:
    """A valid object with one field replaced, or something that is no object at all."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(values)
    if choice == 1:
        return with_field(base_object(plural, name), ("spec", "config"), nest(draw(st.integers(90, 600))))
    targets = draw(st.sampled_from([TOP_TARGETS, SPEC_TARGETS]))  # the few top fields as often as the many
    return with_field(base_object(plural, name), draw(st.sampled_from(targets)), draw(values))


def dumps(value: Any) -> str:
    # allow_nan: NaN and Infinity are written as the bare words some encoders emit.
    return json.dumps(value, allow_nan=True)


@st.composite
def json_texts(draw: st.DrawFn, document: Any) -> bytes:
    """``document`` as JSON text, sometimes damaged: a key repeated, cut short, wrapped deep."""
    text = dumps(document)
    damage = draw(st.integers(0, 11))  # a quarter damaged: the rest must get past the parser
    if damage == 0 and text.startswith("{") and len(text) > 2:
        key = draw(st.sampled_from(["metadata", "spec", "name", "kind"]))
        text = "{" + f'"{key}": {dumps(draw(values))}, "{key}": {dumps(draw(values))}, ' + text[1:]
    elif damage == 1:
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == 2:
        depth = draw(st.sampled_from([99, 101, 500, 5000, 50_000]))
        text = "[" * depth + text + "]" * depth
    return text.encode("utf-8", errors="surrogatepass")


def yaml_bomb(levels: int, width: int) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines)


@st.composite
def yaml_texts(draw: st.DrawFn, document: Any) -> bytes:
    """An apply configuration as YAML (or JSON, as kubectl sends it), sometimes hostile."""
    if not isinstance(document, dict) or draw(st.booleans()):
        return draw(json_texts(document))
    lines = [f"{json.dumps(key)}: {dumps(value)}" for key, value in document.items()]
    trick = draw(st.integers(0, 7))
    if trick == 0:
        lines.insert(0, "config: {" + yaml_bomb(draw(st.integers(2, 9)), draw(st.integers(2, 9))).replace("\n", ", ") + "}")
    elif trick == 1 and lines:
        lines.append(lines[0])  # a duplicate key
    elif trick == 2:
        lines.append(draw(st.sampled_from(["x: !!binary aGVsbG8=", "x: !!python/object:os.system {}", "x: .inf",
                                           "x: -.Inf", "x: .NaN", "x: !!set {a, b}", "x: &r [*r]", "x: 0x7fffffffffffffffff",
                                           "x: 2001-12-14t21:59:43.10-05:00", "<<: [1, 2]", "? [a, b]\n: c"])))
    elif trick == 3:
        lines.append("---\n" + lines[0] if lines else "---")
    elif trick == 4:
        lines.append("deep: " + "[" * draw(st.sampled_from([99, 101, 999, 1001])))
    elif trick == 5:
        lines.append("\t bad: indentation")
    return "\n".join(lines).encode("utf-8", errors="surrogatepass")


ops = st.fixed_dictionaries({}, optional={
    "op": st.one_of(st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]), values),
    "path": st.one_of(st.sampled_from(["", "/", "/spec", "/spec/config", "/spec/config/x", "/metadata", "/metadata/name",
                                       "/metadata/labels/a", "/spec/version/0", "/status", "/spec/-", "/kind", "/a~2"]),
                      values),
    "from": st.one_of(st.sampled_from(["/spec", "/metadata/name", "/spec/config", "/nope", ""]), values),
    "value": values,
})
json_patches = st.one_of(st.lists(ops, max_size=4), values)


# --- daemons ------------------------------------------------------------------------------


def client_for(daemon: ThreadDaemon) -> httpx.Client:
    transport = httpx.HTTPTransport(uds=str(daemon.socket))
    return httpx.Client(transport=transport, base_url="http://mfx", timeout=60)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The API alone: objects are stored and validated, and no controller acts on them."""
    with ThreadDaemon(tmp_path_factory.mktemp("fuzz") / "home").running() as daemon, client_for(daemon) as client:
        for plural in BASES:
            for name in NAMES:
                created = client.post(f"{GROUP}/{plural}", json=base_object(plural, name))
                assert created.status_code == 201, created.text
        yield client


@pytest.fixture(scope="module")
def services_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The daemon with its services (the player, plugin calls), holding no objects."""
    home = tmp_path_factory.mktemp("fuzz-services") / "home"
    with ThreadDaemon(home, services=default_services()).running() as daemon, client_for(daemon) as client:
        yield client


def answer(client: httpx.Client, method: str, url: str, body: bytes, media: str) -> httpx.Response:
    response = client.request(method, url, content=body, headers={"content-type": media})
    # The one 5xx that is an answer rather than a fault: the player has no Ready source to ask.
    unavailable = response.status_code == 503 and response.json().get("reason") == "ServiceUnavailable"
    assert response.status_code < 500 or unavailable, f"{method} {url} [{media}] {body[:300]!r} -> {response.text[:500]}"
    if response.status_code >= 400:
        status = response.json()
        assert status["kind"] == "Status" and status["message"], response.text
    return response


def assert_store_valid(client: httpx.Client, schemas: Schemas = SCHEMAS) -> None:
    for plural in BASES:
        listing = client.get(f"{GROUP}/{plural}")
        assert listing.status_code == 200, listing.text
        for obj in listing.json()["items"]:
            validation.validate_object(obj, schemas=schemas)
            ADMISSION.check_status(obj)
            managed = obj["metadata"].get("managedFields", [])
            assert isinstance(managed, list) and all(isinstance(e, dict) for e in managed), obj


plurals = st.sampled_from(sorted(BASES))
names = st.sampled_from(NAMES)


# --- the main resource and its status -------------------------------------------------------


@FUZZ
@given(data=st.data(), plural=plurals)
def test_create_never_fails_on_the_server(api: httpx.Client, data: st.DataObject, plural: str) -> None:
    body = data.draw(json_texts(data.draw(hostile_objects(plural, "fz-new"))))
    response = answer(api, "POST", f"{GROUP}/{plural}", body, JSON)
    if response.status_code == 201:
        assert api.delete(f"{GROUP}/{plural}/{response.json()['metadata']['name']}").status_code == 200
    assert_store_valid(api)


@FUZZ
@given(data=st.data(), plural=plurals, name=names)
def test_replace_never_fails_on_the_server(api: httpx.Client, data: st.DataObject, plural: str, name: str) -> None:
    body = data.draw(json_texts(data.draw(hostile_objects(plural, name))))
    answer(api, "PUT", f"{GROUP}/{plural}/{name}", body, JSON)
    assert_store_valid(api)


@FUZZ
@given(data=st.data(), plural=plurals, name=names, media=st.sampled_from([MERGE, STRATEGIC, JSON]))
def test_merge_patches_never_fail_on_the_server(api: httpx.Client, data: st.DataObject, plural: str, name: str,
                                                media: str) -> None:
    patch = data.draw(st.one_of(values, st.dictionaries(st.sampled_from(["metadata", "spec", "status", "kind"]),
                                                        values, max_size=3),
                                hostile_objects(plural, name)))
    answer(api, "PATCH", f"{GROUP}/{plural}/{name}", data.draw(json_texts(patch)), media)
    assert_store_valid(api)


@FUZZ
@given(data=st.data(), plural=plurals, name=names)
def test_json_patches_never_fail_on_the_server(api: httpx.Client, data: st.DataObject, plural: str, name: str) -> None:
    body = data.draw(json_texts(data.draw(json_patches)))
    answer(api, "PATCH", f"{GROUP}/{plural}/{name}", body, JSON_PATCH)
    assert_store_valid(api)


@FUZZ
@given(data=st.data(), plural=plurals, name=names)
def test_server_side_apply_never_fails_on_the_server(api: httpx.Client, data: st.DataObject, plural: str,
                                                     name: str) -> None:
    body = data.draw(yaml_texts(data.draw(hostile_objects(plural, name))))
    answer(api, "PATCH", f"{GROUP}/{plural}/{name}?fieldManager=fuzz&force=true", body, APPLY)
    assert_store_valid(api)


@FUZZ
@given(data=st.data(), plural=plurals, name=names,
       method_media=st.sampled_from([("PUT", JSON), ("PATCH", MERGE), ("PATCH", JSON_PATCH)]))
def test_status_writes_never_fail_on_the_server(api: httpx.Client, data: st.DataObject, plural: str, name: str,
                                                method_media: tuple[str, str]) -> None:
    method, media = method_media
    if media == JSON_PATCH:
        document = data.draw(json_patches)
    else:
        current = api.get(f"{GROUP}/{plural}/{name}").json()
        document = with_field(current, data.draw(st.sampled_from([("status",), ("status", "conditions"),
                                                                  ("metadata",), ("kind",)])), data.draw(values))
    answer(api, method, f"{GROUP}/{plural}/{name}/status", data.draw(json_texts(document)), media)
    assert_store_valid(api)


def test_every_field_of_every_wrong_type_is_refused_cleanly(api: httpx.Client) -> None:
    """Systematic where the generated tests sample: each field of each kind, set to a value of
    each JSON type, through each way of writing an object."""
    for plural in BASES:
        for target in TOP_TARGETS + SPEC_FIELDS[plural]:
            for value in WRONG_TYPES:
                obj = with_field(base_object(plural, "fz-a"), target, value)
                body = dumps(obj).encode()
                answer(api, "PUT", f"{GROUP}/{plural}/fz-a", body, JSON)
                created = answer(api, "POST", f"{GROUP}/{plural}", dumps(with_field(obj, ("metadata", "name"), "fz-new")
                                                                      if target[:2] != ("metadata", "name") else obj).encode(), JSON)
                if created.status_code == 201:
                    assert api.delete(f"{GROUP}/{plural}/{created.json()['metadata']['name']}").status_code == 200
                if target[0] != "spec":
                    patch = with_field({}, target, value)
                    answer(api, "PATCH", f"{GROUP}/{plural}/fz-a", dumps(patch).encode(), MERGE)
                    answer(api, "PATCH", f"{GROUP}/{plural}/fz-a?fieldManager=fuzz&force=true", body, APPLY)
                    answer(api, "PUT", f"{GROUP}/{plural}/fz-a/status", body, JSON)
                    answer(api, "PATCH", f"{GROUP}/{plural}/fz-a/status", dumps(patch).encode(), MERGE)
                    pointer = "/" + "/".join(target)
                    answer(api, "PATCH", f"{GROUP}/{plural}/fz-a", dumps([{"op": "add", "path": pointer, "value": value}]).encode(),
                           JSON_PATCH)
        assert_store_valid(api)


QUERY_KEYS = ["limit", "continue", "labelSelector", "fieldSelector", "resourceVersion", "timeoutSeconds", "watch",
              "includeObject", "dryRun", "fieldManager", "force"]
query_values = st.one_of(st.text(max_size=12), st.sampled_from(
    ["1", "0", "-1", "1.5", "true", "a=b", "a in (x)", "!a", "a,b", "metadata.name=x", "9" * 20, "9" * 5000]))


@FUZZ
@given(params=st.dictionaries(st.sampled_from(QUERY_KEYS), query_values, max_size=4), plural=plurals,
       accept=st.sampled_from([None, TABLE, "application/yaml", "*/*", "text/plain;q=0"]))
def test_query_parameters_never_fail_on_the_server(api: httpx.Client, params: dict[str, str], plural: str,
                                                   accept: str | None) -> None:
    if params.get("watch") in ("true", "1"):
        params["timeoutSeconds"] = "1"  # a watch that ends, so the example does
    headers = {"accept": accept} if accept else {}
    for method, url in (("GET", f"{GROUP}/{plural}"), ("GET", f"{GROUP}/{plural}/fz-a"),
                        ("DELETE", f"{GROUP}/{plural}/nothing")):
        response = api.request(method, url, params=params, headers=headers)
        assert response.status_code < 500, (method, url, params, response.text[:300])


# --- events (reported by controllers through a Kubernetes client) ------------------------------

EVENTS = "/api/v1/namespaces/default/events"
EVENT_FIELDS = ["involvedObject", "reason", "message", "type", "count", "firstTimestamp", "lastTimestamp",
                "source", "reportingComponent", "metadata", "kind", "apiVersion"]


def report(client: httpx.Client) -> dict[str, Any]:
    """The event a controller records; recording it again bumps its count."""
    response = client.post(EVENTS, json={"involvedObject": {"kind": "PluginManifest", "name": "fz-a"},
                                         "reason": "Fuzzed", "message": "again", "type": "Normal"})
    assert response.status_code == 201, response.text
    event: dict[str, Any] = response.json()
    return event


@FUZZ
@given(data=st.data(), media=st.sampled_from([MERGE, STRATEGIC, JSON_PATCH, JSON]))
def test_event_writes_never_fail_on_the_server(api: httpx.Client, data: st.DataObject, media: str) -> None:
    name = report(api)["metadata"]["name"]
    if media == JSON_PATCH:
        document = data.draw(json_patches)
    else:
        document = data.draw(st.one_of(values, st.dictionaries(st.sampled_from(EVENT_FIELDS), values, max_size=3)))
    answer(api, "PATCH", f"{EVENTS}/{name}", data.draw(json_texts(document)), media)
    created = data.draw(st.dictionaries(st.sampled_from(EVENT_FIELDS), values, max_size=4))
    answer(api, "POST", EVENTS, data.draw(json_texts(created)), JSON)
    # What was stored can still be listed, shown as a table and recorded again.
    assert api.get(EVENTS).status_code == 200
    assert api.get(EVENTS, headers={"accept": TABLE}).status_code == 200
    report(api)


def test_every_event_field_of_every_wrong_type_is_refused_cleanly(api: httpx.Client) -> None:
    for field in EVENT_FIELDS:
        for value in [*WRONG_TYPES, "2026-13-45T99:00:00Z"]:
            name = report(api)["metadata"]["name"]
            answer(api, "PATCH", f"{EVENTS}/{name}", dumps({field: value}).encode(), MERGE)
            answer(api, "PATCH", f"{EVENTS}/{name}", dumps({"involvedObject": {field: value}}).encode(), MERGE)
            assert api.get(EVENTS, headers={"accept": TABLE}).status_code == 200
            report(api)


# --- the player and plugin calls ------------------------------------------------------------

PLAYER_ENDPOINTS = [("POST", "/play"), ("POST", "/seek"), ("POST", "/queue"), ("POST", "/queue/move"),
                    ("PUT", "/mode"), ("PUT", "/volume"), ("PUT", "/mute")]
player_fields = st.sampled_from(["index", "songs", "playlist", "source", "seconds", "next", "from", "to", "mode",
                                 "volume", "muted"])


@FUZZ
@given(data=st.data(), endpoint=st.sampled_from(PLAYER_ENDPOINTS))
def test_player_bodies_never_fail_on_the_server(services_api: httpx.Client, data: st.DataObject,
                                                endpoint: tuple[str, str]) -> None:
    method, path = endpoint
    # No "songs" with "play": playing a generated song would wait on sources that do not exist.
    fields = player_fields.filter(lambda f: not (path == "/play" and f == "songs"))
    document = data.draw(st.one_of(values, st.dictionaries(fields, values, max_size=3)))
    answer(services_api, method, PLAYER + path, data.draw(json_texts(document)), JSON)


@FUZZ
@given(data=st.data())
def test_plugin_call_bodies_never_fail_on_the_server(services_api: httpx.Client, data: st.DataObject) -> None:
    document = data.draw(st.one_of(values, st.fixed_dictionaries({"method": values}, optional={"params": values})))
    answer(services_api, "POST", f"{GROUP}/pluginmanifests/nobody/call", data.draw(json_texts(document)), JSON)
