"""The compiled defaults plan fills an object as a walk of the schema itself fills it: the
fields with nothing to fill below them are skipped, never anything else."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from mfx.api.schema import load_schemas
from mfx.api.schema_defaults import PRESERVE

SCHEMAS = load_schemas()


def _walk(value: Any, schema: dict[str, Any]) -> None:
    """The defaults as the API server's description reads, straight from the schema."""
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties") or {}
        if schema.get(PRESERVE) and not props:
            return
        for key in [k for k, v in value.items() if v is None and k in props and not props[k].get("nullable")]:
            del value[key]
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                _walk(item, sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _walk(item, schema["items"])


def _manifest(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
            "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {"c": "d"}},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m p", **spec}}


@pytest.mark.parametrize("obj", [
    _manifest(),
    _manifest(healthCheck=None, suspend=None, priority=3),
    _manifest(resources={"limits": {}}, restartPolicy={"backoff": None}),
    _manifest(dependencies=[{"name": "x", "version": ">=1.0.0"}, {"name": "y", "optional": None}]),
    _manifest(config={"anything": None}, circuitBreaker={}),
])
def test_the_plan_fills_as_the_schema_walk_fills(obj: dict[str, Any]) -> None:
    expected = copy.deepcopy(obj)
    _walk(expected, SCHEMAS.openapi("PluginManifest"))
    assert SCHEMAS.apply_defaults(obj) == expected


@pytest.mark.parametrize("kind", SCHEMAS.kinds)
def test_an_empty_object_of_every_kind_fills_as_the_walk_fills(kind: str) -> None:
    obj: dict[str, Any] = {"kind": kind, "metadata": {"name": "x"}, "spec": {}}
    expected = copy.deepcopy(obj)
    _walk(expected, SCHEMAS.openapi(kind))
    assert SCHEMAS.apply_defaults(obj) == expected


def test_maps_of_a_shape_met_before_fill_in_the_same_order_with_defaults_of_their_own() -> None:
    # The plan remembers what filling a map of each set of fields takes; the second object of
    # a shape must come out as the first did, field order included, sharing nothing with it.
    objects = [_manifest(), _manifest(), _manifest(suspend=None, healthCheck={}), _manifest(suspend=None, healthCheck={})]
    filled = [SCHEMAS.apply_defaults(obj) for obj in objects]
    for obj, result in zip(objects, filled, strict=True):
        expected = copy.deepcopy(obj)
        _walk(expected, SCHEMAS.openapi("PluginManifest"))
        assert orjson.dumps(result) == orjson.dumps(expected)  # the same fields in the same order
    filled[0]["spec"]["resources"]["limits"]["timeout"] = "1h"
    filled[2]["spec"]["healthCheck"]["interval"] = "1h"
    assert filled[1]["spec"]["resources"]["limits"]["timeout"] == "5s"
    assert filled[3]["spec"]["healthCheck"]["interval"] == "10s"
