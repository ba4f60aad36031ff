"""Validation under generated input: valid manifests mutated at any path (a wrong type, a
huge integer, inf or nan, odd text, deep nesting, an extra field) go through the entry
points ``mfx apply`` and the API use. Whatever comes in, the only exception out is mfx's
ValidationError; whatever passes parses into the typed models the controllers read and
survives JSON unchanged."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfx.api.models import SPEC_MODELS, parse_spec
from mfx.api.schema import load_schemas
from mfx.api.validation import load_manifests, validate_all, validate_object
from mfx.errors import ValidationError
from mfx.server.admission import Admission

SCHEMAS = load_schemas()
ADMISSION = Admission(SCHEMAS)

PLUGIN = {
    "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
    "metadata": {"name": "fuzzed", "labels": {"tier": "core"}, "annotations": {"note": "x"}},
    "spec": {
        "version": "1.2.0", "type": "rpc", "entryPoint": "python -m fuzzed", "interfaces": ["MusicSource"],
        "priority": 5, "env": {"LEVEL": "debug"},
        "config": {"folders": ["/music"], "depth": 2, "ratio": 0.5},
        "configSchema": {"type": "object", "$defs": {"folder": {"type": "string"}},
                         "properties": {"folders": {"type": "array", "items": {"$ref": "#/$defs/folder"}},
                                        "depth": {"type": "integer"}}},
        "dependencies": [{"name": "codec-flac", "version": "^1.0", "optional": True}],
        "resources": {"limits": {"memory": "256Mi", "cpu": "500m", "timeout": "5s", "maxMessageSize": 1048576}},
        "security": {"allowedPaths": [{"path": "/music", "writable": False}],
                     "allowedNetworks": ["10.0.0.0/8", "example.com:443"]},
        "healthCheck": {"interval": "10s", "timeout": "2s", "failureThreshold": 3},
        "restartPolicy": {"policy": "OnFailure", "backoff": {"initial": "1s", "max": "1m"},
                          "startLimit": {"burst": 5, "interval": "1m"}},
        "circuitBreaker": {"failureRatio": 0.5, "minimumRequests": 10, "openDuration": "30s"},
    },
}
SINK = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink", "metadata": {"name": "speakers"},
        "spec": {"device": "default", "rate": 48000, "channels": 2, "format": "S16_LE"}}
GIT = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "GitSource", "metadata": {"name": "desired"},
       "spec": {"url": "https://example.com/desired.git", "ref": {"branch": "main"}, "interval": "1m",
                "dependsOn": [{"name": "base"}]}}
BASES = (PLUGIN, SINK, GIT)

Path = tuple[str | int, ...]


def paths(value: Any, here: Path = ()) -> list[Path]:
    """Every path into ``value``, the root included."""
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*here, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths(item, (*here, i))
    return found


PATHS = [(base, path) for base in BASES for path in paths(base) if path]
# Fields that take (nearly) anything: changes here mostly stay valid, so that what passes
# is exercised as much as what fails.
FREE: list[tuple[dict[str, Any], Path]] = [
    (PLUGIN, ("spec", "config", "free")), (PLUGIN, ("spec", "config", "ratio")), (PLUGIN, ("spec", "description")),
    (PLUGIN, ("metadata", "annotations", "note")), (PLUGIN, ("spec", "entryPoint")), (PLUGIN, ("spec", "priority")),
    (PLUGIN, ("spec", "env", "LEVEL")), (SINK, ("spec", "device")), (GIT, ("spec", "url")),
]

ODD_TEXT = ["", " ", "\n", " 1.0.0", "1.0.0\n", "\u0661.\u0660.\u0660", "\u0661\u0660s", "10", "10s", "-1", "9Ei",
            "1e400", "\ufffd", "\ud800", "\u202e", "a\x00b", "NaN", ".inf", "#/$defs/x", "http://127.0.0.1:9/x",
            "10.0.0.0/33", "[::1]:0", "^^1", "\u00b5s", "1.5", "true", "null", "x" * 300, "9" * 5000]


def nested(depth: int, leaf: Any) -> Any:
    for i in range(depth):
        leaf = [leaf] if i % 2 else {"a": leaf}
    return leaf


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63 - 2, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-(2**63) + 2), st.floats(), st.sampled_from(ODD_TEXT),
    st.text(st.characters(codec="utf-8"), max_size=12),
)
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=6)), inner, max_size=3), max_leaves=8)
values = st.one_of(json_like, json_like, st.builds(nested, st.integers(min_value=90, max_value=400), scalars))


def alike(value: Any) -> st.SearchStrategy[Any]:
    """Values of the same JSON type as ``value``: the changes most likely to stay valid."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if isinstance(value, float):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(value, str):
        return st.one_of(st.text(max_size=12), st.sampled_from(ODD_TEXT))
    return values


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid object with one to three changes, each at an existing path or a new key."""
    base, path = draw(st.sampled_from(PATHS if draw(st.booleans()) else FREE))
    obj = copy.deepcopy(base)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        targets = [p for b, p in PATHS if b is base] if path is None else [path]
        where = draw(st.sampled_from(targets))
        path = None
        parent: Any = obj
        try:
            for part in where[:-1]:
                parent = parent[part]
            value = draw(st.one_of(values, alike(parent.get(where[-1]) if isinstance(parent, dict) else None)))
            if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
                parent[draw(st.sampled_from(["extra", "name", "spec", "$ref", "version"]))] = value
            else:
                parent[where[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced what this path went through
    return obj if draw(st.integers(min_value=0, max_value=9)) else draw(values)


def check_admitted(admitted: Any) -> None:
    """What passed is what the controllers can read and what JSON carries unchanged."""
    text = json.dumps(admitted, allow_nan=False)
    assert json.loads(text) == admitted
    model = parse_spec(admitted)
    assert type(model) is SPEC_MODELS[admitted["kind"]]
    assert type(model).model_validate_json(model.model_dump_json()) == model
    assert validate_object(admitted, schemas=SCHEMAS) == admitted  # defaults are idempotent


FUZZ = settings(max_examples=250, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(mutated())
def test_api_admission_raises_only_validation_errors(obj: Any) -> None:
    try:
        admitted = ADMISSION.admit(obj)
    except ValidationError as error:
        assert error.errors and all(isinstance(e.path, str) for e in error.errors)
        return
    check_admitted(admitted)


def as_text(obj: Any) -> str | None:
    """The manifest as a file would hold it: YAML, or JSON when YAML cannot write a value."""
    try:
        return yaml.safe_dump(obj, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, ValueError, RecursionError):
        try:
            return json.dumps(obj)
        except (ValueError, RecursionError):
            return None  # e.g. an integer of more digits than Python writes out


@FUZZ
@given(mutated())
def test_apply_reads_and_validates_raising_only_validation_errors(obj: Any) -> None:
    text = as_text(obj)
    if text is None:
        return
    try:
        results = validate_all(load_manifests(text, "fuzzed.yaml"), SCHEMAS)
    except ValidationError as error:
        assert error.errors and all(e.file == "fuzzed.yaml" for e in error.errors)
        return
    for admitted in results:
        check_admitted(admitted)


@FUZZ
@given(st.text(st.sampled_from(list("{}[]:,-&*!|>'\"#%@` \n\tabc019.") + ["\u0661", "\ufffd", "\u2028"]),
               max_size=80))
def test_apply_of_arbitrary_text_raises_only_validation_errors(text: str) -> None:
    try:
        validate_all(load_manifests(text, "fuzzed.yaml"), SCHEMAS)
    except ValidationError:
        pass
