"""Every value a validation message suggests passes validation: following a hint never leads
to the next error. Each case breaks one field of a valid object, takes every value the
message offers (quote it: "x", e.g. "x", did you mean "x"?, examples: a, b, ...), puts each
back in place and validates again."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from mfx.api.schema import Schemas, load_schemas
from mfx.api.validation import validate_object
from mfx.api.yaml_loader import join_index, join_key
from mfx.errors import ValidationError

Path = tuple[str | int, ...]


def plugin() -> dict[str, Any]:
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
        "metadata": {"name": "hinted", "labels": {"tier": "core"}, "annotations": {"note": "x"}},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m hinted", "env": {"A": "x"},
                 "interfaces": ["MusicSource"],
                 "dependencies": [{"name": "base", "version": "^1.0"}], "suspend": False, "priority": 1,
                 "healthCheck": {"interval": "10s"}, "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                 "circuitBreaker": {"failureRatio": 0.5},
                 "security": {"allowedNetworks": ["10.0.0.0/8"], "allowedPaths": [{"path": "/music"}]},
                 "restartPolicy": {"policy": "Always"}},
    }


def sink() -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink", "metadata": {"name": "speakers"},
            "spec": {"device": "default", "rate": 48000}}


def git() -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "GitSource", "metadata": {"name": "desired"},
            "spec": {"url": "https://example.com/desired.git", "interval": "1m", "ref": {"commit": "abcdef0"}}}


VERSION = ("spec", "version")
INTERVAL = ("spec", "healthCheck", "interval")
LIMITS = ("spec", "resources", "limits")

# (case, object, field, a wrong value)
CASES: list[tuple[str, Any, Path, Any]] = [
    ("version-int", plugin, VERSION, 1),
    ("version-float", plugin, VERSION, 1.2),
    ("version-short", plugin, VERSION, "1"),
    ("version-spaces", plugin, VERSION, " 1.0.0"),
    ("version-v", plugin, VERSION, "v1.2.3"),
    ("version-four-parts", plugin, VERSION, "1.2.3.4"),
    ("version-negative", plugin, VERSION, -1),
    ("interval-int", plugin, INTERVAL, 10),
    ("interval-no-unit", plugin, INTERVAL, "10"),
    ("interval-spaces", plugin, INTERVAL, " 10s"),
    ("interval-half-unit", plugin, INTERVAL, "1h30"),
    ("interval-zero", plugin, INTERVAL, "0s"),
    ("interval-unknown-unit", plugin, INTERVAL, "5x"),
    ("interval-float", plugin, INTERVAL, 1.5),
    ("gitsource-interval-int", git, ("spec", "interval"), 10),
    ("gitsource-timeout-bool", git, ("spec", "timeout"), True),
    ("constraint-int", plugin, ("spec", "dependencies", 0, "version"), 1),
    ("constraint-bad", plugin, ("spec", "dependencies", 0, "version"), "^^1"),
    ("dependency-name-int", plugin, ("spec", "dependencies", 0, "name"), -5),
    ("cpu-float", plugin, (*LIMITS, "cpu"), 1.5),
    ("memory-float", plugin, (*LIMITS, "memory"), 1.5),
    ("memory-bad", plugin, (*LIMITS, "memory"), "1 Gi"),
    ("memory-spaces", plugin, (*LIMITS, "memory"), " 1Gi"),
    ("memory-negative", plugin, (*LIMITS, "memory"), "-1Gi"),
    ("env-int", plugin, ("spec", "env", "A"), 1),
    ("priority-quoted", plugin, ("spec", "priority"), "5"),
    ("priority-word", plugin, ("spec", "priority"), "high"),
    ("rate-word", sink, ("spec", "rate"), "fast"),
    ("rate-quoted-out-of-range", sink, ("spec", "rate"), "1000"),
    ("channels-float", sink, ("spec", "channels"), 2.5),
    ("suspend-quoted", plugin, ("spec", "suspend"), "true"),
    ("suspend-yes", plugin, ("spec", "suspend"), "yes"),
    ("ratio-quoted", plugin, ("spec", "circuitBreaker", "failureRatio"), "0.5"),
    ("type-typo", plugin, ("spec", "type"), "grpc"),
    ("type-int", plugin, ("spec", "type"), 1),
    ("policy-case", plugin, ("spec", "restartPolicy", "policy"), "always"),
    ("network-host-bits", plugin, ("spec", "security", "allowedNetworks", 0), "10.1.2.3/8"),
    ("network-bad", plugin, ("spec", "security", "allowedNetworks", 0), "example.com"),
    ("path-relative", plugin, ("spec", "security", "allowedPaths", 0, "path"), "music"),
    ("name-int", plugin, ("metadata", "name"), 5),
    ("name-negative", plugin, ("metadata", "name"), -1),
    ("name-list", plugin, ("metadata", "name"), ["a"]),
    ("name-uppercase", plugin, ("metadata", "name"), "Bad_Name"),
    ("label-int", plugin, ("metadata", "labels", "tier"), 1),
    ("label-negative", plugin, ("metadata", "labels", "tier"), -1),
    ("label-list", plugin, ("metadata", "labels", "tier"), ["a"]),
    ("annotation-int", plugin, ("metadata", "annotations", "note"), 1),
    ("cpu-negative", plugin, (*LIMITS, "cpu"), "-1"),
    ("cpu-bad", plugin, (*LIMITS, "cpu"), "1 core"),
    ("memory-int-zero", plugin, (*LIMITS, "memory"), 0),
    ("commit-short", git, ("spec", "ref", "commit"), "abc"),
    ("interface-lowercase", plugin, ("spec", "interfaces", 0), "musicSource"),
    ("api-version", plugin, ("apiVersion",), "v1"),
    ("sink-device-empty", sink, ("spec", "device"), " "),
]

_QUOTED = re.compile(r'(?:quote it: |e\.g\. |did you mean |use |the network is |remove the spaces around it: |or )"([^"]*)"')
_BARE_EXAMPLE = re.compile(r"e\.g\. ([^\s\")]+)(?: or ([^\s\")]+))?\)")
_LISTS = re.compile(r"\((?:examples|one of): ([^)]*)\)")


def render(path: Path) -> str:
    text = ""
    for part in path:
        text = join_index(text, part) if isinstance(part, int) else join_key(text, part)
    return text


def put(obj: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    here: Any = result
    for part in path[:-1]:
        here = here[part]
    here[path[-1]] = value
    return result


def suggestions(message: str, wrong: Any) -> list[Any]:
    """Every value the message offers in place of ``wrong``."""
    found: list[Any] = [m for m in _QUOTED.findall(message)]
    for m in _BARE_EXAMPLE.finditer(message):
        found += [_scalar(text) for text in m.groups() if text]
    for m in _LISTS.finditer(message):
        found += [text.strip() for text in m[1].split(",")]
    if "(remove the quotes)" in message:
        found.append(_scalar(wrong))
    if "(use true or false)" in message:
        found += [True, False]
    return found


def _scalar(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return load_schemas()


@pytest.mark.parametrize(("make", "path", "wrong"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_suggested_value_passes(schemas: Schemas, make: Any, path: Path, wrong: Any) -> None:
    valid = make()
    validate_object(valid, schemas=schemas)
    with pytest.raises(ValidationError) as caught:
        validate_object(put(valid, path, wrong), schemas=schemas)
    [error] = [e for e in caught.value.errors if e.path == render(path)]
    offered = suggestions(error.message, wrong)
    assert offered, f"no suggestion in: {error.message}"
    for value in offered:
        try:
            validate_object(put(valid, path, value), schemas=schemas)
        except ValidationError as exc:
            pytest.fail(f"{error.message!r} suggests {value!r}, which fails: {exc}")


def test_unknown_fields_suggest_a_field_that_exists(schemas: Schemas) -> None:
    obj = plugin()
    obj["spec"]["dependecies"] = obj["spec"].pop("dependencies")
    with pytest.raises(ValidationError) as caught:
        validate_object(obj, schemas=schemas)
    [error] = caught.value.errors
    [name] = _QUOTED.findall(error.message)
    obj["spec"][name] = obj["spec"].pop("dependecies")
    validate_object(obj, schemas=schemas)
