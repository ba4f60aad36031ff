"""The CRDs in crds/: valid for Kubernetes, structural, in line with kinds.py and the models,
and usable for defaults and ``mfx explain``."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from mfx.api.kinds import GROUP, USER_KINDS, VERSION, KindInfo
from mfx.api.model_drift import spec_model_drift
from mfx.api.models import SPEC_MODELS, GitSourceSpec, RestartPolicy
from mfx.api.schema import load_schemas
from mfx.api.validation import validate
from mfx.errors import NotFoundError

SCHEMA_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
PRESERVE = "x-kubernetes-preserve-unknown-fields"

SAMPLES: dict[str, dict[str, Any]] = {
    "PluginManifest": {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "PluginManifest",
        "metadata": {"name": "hello", "labels": {"app.kubernetes.io/part-of": "mfx"}},
        "spec": {
            "version": "1.2.0", "type": "rpc", "entryPoint": "python -m hello",
            "interfaces": ["MusicSource"], "config": {"greeting": "hi"},
            "configSchema": {"type": "object", "properties": {"greeting": {"type": "string"}}},
            "env": {"HELLO": "1"},
            "dependencies": [{"name": "codec-soundfile", "version": "^1.0"}],
            "resources": {"limits": {"memory": "256Mi", "cpu": "500m", "timeout": "5s", "fuel": 10000000}},
            "security": {"checksum": "sha256:" + "a" * 64, "allowedPaths": [{"path": "/music"}]},
            "healthCheck": {"interval": "10s"},
        },
    },
    "AudioSink": {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "AudioSink",
        "metadata": {"name": "speakers"},
        "spec": {"device": "hw:0,0", "rate": 44100, "format": "S24_LE", "default": True},
    },
    "GitSource": {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "GitSource",
        "metadata": {"name": "desired"},
        "spec": {"url": "https://example.com/music/desired.git", "ref": {"tag": "v1.0.0"}, "prune": True},
    },
    "Node": {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Node",
        "metadata": {"name": "player-1", "labels": {"kubernetes.io/hostname": "player-1", "room": "kitchen"}},
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "AgentReady"}],
                   "nodeInfo": {"agentVersion": "0.1.0", "os": "linux", "arch": "amd64"},
                   "soundDevices": ["default", "hw:0,0"], "lastHeartbeatTime": "2026-12-06T02:00:00Z"},
    },
    "Lease": {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lease",
        "metadata": {"name": "player-1"},
        "spec": {"holderIdentity": "player-1", "leaseDurationSeconds": 40,
                 "acquireTime": "2026-12-06T02:00:00.000000Z", "renewTime": "2026-12-06T02:00:30.123456Z",
                 "leaseTransitions": 0},
    },
}
MINIMAL_SPECS: dict[str, dict[str, Any]] = {
    "PluginManifest": {"version": "1.0.0", "type": "rpc"},
    "AudioSink": {},
    "GitSource": {"url": "/srv/git/desired"},
}


def _crd_files() -> dict[str, dict[str, Any]]:
    folder = resources.files("crds")
    docs = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            docs[entry.name] = yaml.safe_load(entry.read_text(encoding="utf-8"))
    return docs


CRDS = _crd_files()
BY_KIND = {doc["spec"]["names"]["kind"]: doc for doc in CRDS.values()}


def _schema(kind: str) -> dict[str, Any]:
    return BY_KIND[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from _nodes(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], path + "[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], path + "{}")


def test_there_is_one_crd_file_per_kind() -> None:
    assert sorted(CRDS) == sorted(f"{k.plural}.yaml" for k in USER_KINDS)


@pytest.mark.parametrize("filename", sorted(CRDS))
def test_crd_is_valid_for_kubernetes(filename: str) -> None:
    kubernetes_validate.validate(CRDS[filename], "1.37.0", strict=True)


@pytest.mark.parametrize("info", USER_KINDS, ids=lambda k: k.kind)
def test_crd_identity_matches_kinds_py(info: KindInfo) -> None:
    crd = BY_KIND[info.kind]
    spec = crd["spec"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
    assert spec["group"] == info.group == GROUP
    assert spec["scope"] == ("Namespaced" if info.namespaced else "Cluster")
    names = spec["names"]
    assert names["kind"] == info.kind
    assert names["listKind"] == info.list_kind
    assert names["plural"] == info.plural
    assert names["singular"] == info.singular
    assert tuple(names.get("shortNames", ())) == info.short_names
    assert tuple(names["categories"]) == info.categories
    # Like kubectl's nodes and leases, the fleet's bookkeeping stays out of `get all`.
    fleet = info.kind in ("Node", "Lease")
    assert info.categories == (("mfx",) if fleet else ("all", "mfx"))
    [version] = spec["versions"]
    assert version["name"] == info.version == VERSION
    assert version["served"] is True and version["storage"] is True
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_schema_is_structural_and_documented(kind: str) -> None:
    preserved = []
    for path, node in _nodes(_schema(kind)):
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path
        else:
            assert node.get("type") in SCHEMA_TYPES, f"{kind} {path}: type {node.get('type')!r}"
        if node.get(PRESERVE):
            preserved.append(path)
            assert node["type"] == "object"
        assert node.get("description", "").strip(), f"{kind} {path} has no description (mfx explain prints it)"
    allowed = {"spec.config", "spec.configSchema", "status.runtime", "status.history[]"}
    assert set(preserved) <= allowed, f"{kind}: preserve-unknown-fields only on config, configSchema and free-form status"


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_defaults_are_valid_for_their_own_schema(kind: str) -> None:
    found = 0
    for _path, node in _nodes(_schema(kind)):
        if "default" in node:
            found += 1
            jsonschema.Draft202012Validator(node).validate(node["default"])
    assert found > 0


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_a_valid_object_of_each_kind_passes_the_schema(kind: str) -> None:
    sample = SAMPLES[kind]
    jsonschema.Draft202012Validator(_schema(kind)).validate(sample)
    validate(sample, schemas=load_schemas())


PRINTER_COLUMNS = {
    "PluginManifest": [
        ("Version", ".status.resolvedVersion", 0), ("Type", ".spec.type", 0),
        ("Ready", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("Reason", '.status.conditions[?(@.type=="Ready")].reason', 0),
        ("Desired", ".status.desiredNumberScheduled", 0), ("Nodes-Ready", ".status.numberReady", 0),
        ("Up-To-Date", ".status.updatedNumberScheduled", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Dependencies", ".spec.dependencies[*].name", 1), ("Restarts", ".status.restartCount", 1),
        ("Healthy", '.status.conditions[?(@.type=="Healthy")].status', 1),
    ],
    "AudioSink": [
        ("Device", ".spec.device", 0), ("Rate", ".spec.rate", 0), ("Format", ".spec.format", 0),
        ("Default", ".spec.default", 0), ("Ready", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("Xruns", ".status.xruns", 0),
        ("Desired", ".status.desiredNumberScheduled", 1), ("Nodes-Ready", ".status.numberReady", 1),
        ("Up-To-Date", ".status.updatedNumberScheduled", 1), ("Age", ".metadata.creationTimestamp", 0),
        ("Latency", ".status.latencySeconds", 1), ("Period", ".status.periodSeconds", 1),
        ("Fill", ".status.bufferFill", 1), ("Paced", ".status.paced", 1), ("Engine", ".status.engine.pid", 1),
    ],
    "GitSource": [
        ("URL", ".spec.url", 0), ("Revision", ".status.lastAppliedRevision", 0),
        ("Ready", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("Status", '.status.conditions[?(@.type=="Ready")].message', 0),
        ("Age", ".metadata.creationTimestamp", 0),
    ],
    "Node": [
        ("Status", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("Age", ".metadata.creationTimestamp", 0), ("Version", ".status.nodeInfo.agentVersion", 0),
        ("Sound-Devices", ".status.soundDevices[*]", 1), ("Last-Heartbeat", ".status.lastHeartbeatTime", 1),
        ("Agent-Version", ".status.nodeInfo.agentVersion", 1), ("OS", ".status.nodeInfo.os", 1),
        ("Arch", ".status.nodeInfo.arch", 1), ("Labels", ".metadata.labels", 1),
    ],
    "Lease": [
        ("Holder", ".spec.holderIdentity", 0), ("Duration", ".spec.leaseDurationSeconds", 0),
        ("Renewed", ".spec.renewTime", 0), ("Age", ".metadata.creationTimestamp", 0),
    ],
}


@pytest.mark.parametrize("kind", sorted(PRINTER_COLUMNS))
def test_printer_columns(kind: str) -> None:
    columns = load_schemas().printer_columns(kind)
    assert [(c["name"], c["jsonPath"], c.get("priority", 0)) for c in columns] == PRINTER_COLUMNS[kind]
    assert next(c for c in columns if c["name"] == "Age")["type"] == "date"
    assert all(c.get("description") for c in columns)


# --- defaults: CRD, apply_defaults and the pydantic models agree -----------------------------


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{path}.{key}" if path else key))
        return out
    if isinstance(value, list) and not value:
        return {}
    return {path: value}


@pytest.mark.parametrize("kind", sorted(MINIMAL_SPECS))
def test_pydantic_defaults_equal_crd_defaults(kind: str) -> None:
    minimal = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": "x"},
               "spec": MINIMAL_SPECS[kind]}
    defaulted = load_schemas().apply_defaults(minimal)["spec"]
    model = SPEC_MODELS[kind].model_validate(MINIMAL_SPECS[kind])
    assert _leaves(model.to_dict()) == _leaves(defaulted)


@pytest.mark.parametrize("kind", sorted(SPEC_MODELS))
def test_spec_models_have_the_fields_types_and_enums_of_their_crd(kind: str) -> None:
    spec_schema = load_schemas().openapi(kind)["properties"]["spec"]
    assert spec_model_drift(SPEC_MODELS[kind], spec_schema) == []


def test_a_model_that_drifts_from_its_crd_is_told_field_by_field() -> None:
    spec_schema = load_schemas().openapi("GitSource")["properties"]["spec"]

    class Drifted(GitSourceSpec):
        url: str | None = None  # the CRD requires it
        prune: int = 0  # the CRD says boolean
        interval: RestartPolicy = RestartPolicy.ALWAYS  # an enum the CRD does not have
        branch: str = "main"  # not in the CRD at all

    problems = spec_model_drift(Drifted, spec_schema)
    assert "spec.url: required only in the CRD" in problems
    assert "spec.prune: the CRD says boolean, the model int" in problems
    assert any(p.startswith("spec.interval: the model allows ['Always', 'Never', 'OnFailure']") for p in problems)
    assert "spec.branch: in Drifted, not in the CRD" in problems
    del spec_schema["properties"]["ref"]["properties"]["tag"]
    assert "spec.ref.tag: in GitRef, not in the CRD" in spec_model_drift(GitSourceSpec, spec_schema)


def test_apply_defaults_fills_nested_defaults_and_is_idempotent() -> None:
    schemas = load_schemas()
    obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PluginManifest", "metadata": {"name": "x"},
           "spec": {"version": "1.0.0", "type": "rpc", "description": None,
                    "healthCheck": {"interval": "1m"}, "dependencies": [{"name": "a"}]}}
    once = schemas.apply_defaults(obj)
    spec = once["spec"]
    assert spec["healthCheck"] == {"interval": "1m", "timeout": "2s", "failureThreshold": 3}
    assert spec["restartPolicy"]["backoff"] == {"initial": "1s", "max": "5m"}
    assert spec["dependencies"] == [{"name": "a", "version": "*", "optional": False}]
    assert "description" not in spec  # a null is pruned like the API server does
    assert obj["spec"]["healthCheck"] == {"interval": "1m"}  # the input is left alone
    assert schemas.apply_defaults(once) == once
    sink = schemas.apply_defaults({"kind": "AudioSink", "metadata": {"name": "s"}})
    assert sink["spec"]["rate"] == 48000 and sink["spec"]["format"] == "S16_LE"
    git = schemas.apply_defaults({"kind": "GitSource", "spec": {"url": "u"}})
    assert git["spec"]["ref"] == {"branch": "main"} and git["spec"]["interval"] == "1m"


def test_each_load_gives_independent_schemas() -> None:
    first, second = load_schemas(), load_schemas()
    first.openapi("AudioSink")["properties"]["spec"]["properties"]["rate"]["default"] = 1
    assert second.openapi("AudioSink")["properties"]["spec"]["properties"]["rate"]["default"] == 48000
    assert load_schemas().openapi("AudioSink")["properties"]["spec"]["properties"]["rate"]["default"] == 48000


# --- explain ------------------------------------------------------------------------------------


def test_explain_a_list_field_like_kubectl() -> None:
    text = load_schemas().explain("pm", "spec.dependencies")
    lines = text.splitlines()
    assert lines[:3] == ["GROUP:      mfx.musicfox.io", "KIND:       PluginManifest", "VERSION:    v1alpha1"]
    assert "FIELD: dependencies <[]Object>" in lines
    assert "DESCRIPTION:" in lines and "FIELDS:" in lines
    assert "  name\t<string> -required-" in lines
    assert "  optional\t<boolean>" in lines
    assert any("Plugins that must be Ready" in line for line in lines)


def test_explain_a_leaf_shows_type_enum_default_and_description() -> None:
    text = load_schemas().explain("PluginManifest", "pluginmanifest.spec.restartPolicy.policy")
    assert "FIELD: policy <string>" in text
    assert "ENUM:\n    Always\n    OnFailure\n    Never" in text
    assert 'DEFAULT: "Always"' in text
    assert "FIELDS:" not in text


def test_explain_the_kind_lists_top_level_fields_and_types() -> None:
    text = load_schemas().explain("sinks")
    assert "KIND:       AudioSink" in text and "FIELD:" not in text
    for line in ("  spec\t<Object>", "  status\t<Object>", "  apiVersion\t<string>"):
        assert line in text.splitlines()
    env = load_schemas().explain("pm", "spec.env")
    assert "FIELD: env <map[string]string>" in env
    memory = load_schemas().explain("pm", "spec.resources.limits.memory")
    assert "FIELD: memory <IntOrString>" in memory


def test_explain_recursive_lists_nested_fields() -> None:
    lines = load_schemas().explain("gs", "spec", recursive=True).splitlines()
    assert "  ref\t<Object>" in lines and "    branch\t<string>" in lines
    assert "  dependsOn\t<[]Object>" in lines and "    name\t<string> -required-" in lines


def test_explain_a_wrong_field_names_the_nearest_valid_ones() -> None:
    with pytest.raises(NotFoundError) as info:
        load_schemas().explain("pm", "spec.healthCheck.intervall")
    message = str(info.value)
    assert 'field "intervall" does not exist in PluginManifest.spec.healthCheck' in message
    assert 'did you mean "interval"?' in message
    assert "fields: interval, timeout, failureThreshold" in message
    with pytest.raises(NotFoundError, match="free-form"):
        load_schemas().explain("pm", "spec.config.bitrate")
