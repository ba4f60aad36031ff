"""What admission refuses is never stored: each invalid value is reported with its field
path, by validation itself and by the daemon as a 422, and the object does not exist after.

Values here are built in code, as the API receives them after parsing a body, so they also
cover what a file reader would already have refused (infinities, huge integers)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mfx.api.objects import (
    annotations_of,
    conditions,
    generation,
    is_deleting,
    is_ready,
    labels_of,
    name_of,
)
from mfx.api.schema import Schemas, load_schemas
from mfx.api.validation import validate_object
from mfx.errors import ValidationError
from tests.daemon_harness import ThreadDaemon

BASE = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"
SIGNATURE = base64.b64encode(bytes(range(64))).decode()


def plugin() -> dict[str, Any]:
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "held"},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m held"},
    }


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def spec(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj["spec"].update(fields)


# (case, change to a valid object, the field path that must be named)
CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("cidr-prefix", spec(security={"allowedNetworks": ["10.0.0.0/33"]}), "spec.security.allowedNetworks[0]"),
    ("cidr-garbage", spec(security={"allowedNetworks": ["10.0.0.0/8", "not a network"]}),
     "spec.security.allowedNetworks[1]"),
    ("cidr-host-bits", spec(security={"allowedNetworks": ["10.1.2.3/8"]}), "spec.security.allowedNetworks[0]"),
    ("port", spec(security={"allowedNetworks": ["example.com:70000"]}), "spec.security.allowedNetworks[0]"),
    ("signature", spec(security={"signature": "not base64!"}), "spec.security.signature"),
    ("signature-newline", spec(security={"signature": SIGNATURE + "\n"}), "spec.security.signature"),
    ("checksum-newline", spec(security={"checksum": "sha256:" + "0" * 64 + "\n"}), "spec.security.checksum"),
    ("version-spaces", spec(version=" 1.0.0"), "spec.version"),
    ("version-newline", spec(version="1.0.0\n"), "spec.version"),
    ("version-digits", spec(version="\u0661.0.0"), "spec.version"),
    ("version-long-number", spec(version="1.0." + "9" * 5000), "spec.version"),
    ("prerelease-long-number", spec(version="1.0.0-" + "9" * 30), "spec.version"),
    ("constraint-long-number", spec(dependencies=[{"name": "b", "version": "^1.0.0-" + "9" * 30}]),
     "spec.dependencies[0].version"),
    ("priority-long-text", spec(priority="9" * 5000), "spec.priority"),
    ("duration-digits", spec(healthCheck={"interval": "\u0661\u0660s"}), "spec.healthCheck.interval"),
    ("duration-spaces", spec(healthCheck={"timeout": "2s "}), "spec.healthCheck.timeout"),
    ("duration-huge", spec(healthCheck={"interval": "9999999999h"}), "spec.healthCheck.interval"),
    ("memory-huge", spec(resources={"limits": {"memory": "9Ei"}}), "spec.resources.limits.memory"),
    ("cpu-digits", spec(resources={"limits": {"cpu": "\u0661"}}), "spec.resources.limits.cpu"),
    ("config-inf", spec(config={"gain": float("inf")}), "spec.config.gain"),
    ("config-nan", spec(config={"gain": [1.0, float("nan")]}), "spec.config.gain[1]"),
    ("config-bigint", spec(config={"n": 2**64}), "spec.config.n"),
    ("priority-bigint", spec(priority=-(2**63) - 1), "spec.priority"),
    ("memory-bigint", spec(resources={"limits": {"memory": 2**63}}), "spec.resources.limits.memory"),
    # The object is level 0, so the 100th level is 98 keys under spec.config.
    ("config-deep", spec(config=deep(150)), "spec.config" + ".a" * 98),
    ("metadata-string", lambda obj: obj.update(metadata="x"), "metadata"),
    ("name-newline", lambda obj: obj["metadata"].update(name="held\n"), "metadata.name"),
    ("dependency-name-list", spec(dependencies=[{"name": ["a", "b"]}]), "spec.dependencies[0].name"),
    ("dependency-name-map", spec(dependencies=[{"name": {"a": 1}}, {"name": {"a": 1}}]),
     "spec.dependencies[1].name"),
]


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return load_schemas()


def broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    obj = plugin()
    change(obj)
    return obj


@pytest.mark.parametrize(("change", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation_names_the_field(schemas: Schemas, change: Callable[[dict[str, Any]], None], path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_object(broken(change), schemas=schemas)
    assert path in [e.path for e in caught.value.errors], str(caught.value)


@pytest.mark.parametrize("field", ["version", "priority", "config"])
def test_integers_python_will_not_print_are_refused(schemas: Schemas, field: str) -> None:
    # No JSON body carries these (the reader stops at 4300 digits), but code can build them.
    with pytest.raises(ValidationError) as caught:
        validate_object(broken(spec(**{field: -(10**5000)})), schemas=schemas)
    assert [e.path for e in caught.value.errors] == [f"spec.{field}"]


def test_valid_neighbours_of_the_refused_values_pass(schemas: Schemas) -> None:
    obj = plugin()
    obj["spec"].update(
        security={"allowedNetworks": ["10.0.0.0/8", "fd00::/8", "192.168.1.7", "example.com:443", "[::1]:8080"],
                  "signature": SIGNATURE, "checksum": "sha256:" + "0" * 64},
        healthCheck={"interval": "1h30m", "timeout": "500ms"},
        resources={"limits": {"memory": "7Ei", "cpu": "500m"}},
        config={"gain": 1.5, "n": 2**63 - 1, "deep": deep(90)}, priority=-(2**63),
    )
    validate_object(obj, schemas=schemas)


def test_readers_of_metadata_accept_what_validation_will_refuse() -> None:
    for obj in ({"metadata": "x", "status": "y"}, {"metadata": ["x"], "status": {"conditions": "z"}}, {}):
        assert (name_of(obj), labels_of(obj), annotations_of(obj), generation(obj)) == ("", {}, {}, 0)
        assert (is_deleting(obj), conditions(obj), is_ready(obj)) == (False, [], False)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with ThreadDaemon(tmp_path_factory.mktemp("admission") / "home").running() as daemon:
        transport = httpx.HTTPTransport(uds=str(daemon.socket))
        with httpx.Client(transport=transport, base_url="http://mfx", timeout=30) as client:
            yield client


def body(obj: dict[str, Any]) -> bytes:
    # What a client that does not check its input sends: Python's encoder writes NaN and
    # Infinity, which no strict JSON reader accepts.
    return json.dumps(obj).encode()


@pytest.mark.parametrize(("change", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_daemon_refuses_and_stores_nothing(api: httpx.Client, change: Callable[[dict[str, Any]], None],
                                               path: str) -> None:
    answer = api.post(BASE, content=body(broken(change)), headers={"Content-Type": "application/json"})
    assert answer.status_code in (400, 422), answer.text
    assert "Traceback" not in answer.text
    if answer.status_code == 422:
        status = answer.json()
        assert path in [c.get("field") for c in status["details"]["causes"]], answer.text
    assert api.get(f"{BASE}/held").status_code == 404
