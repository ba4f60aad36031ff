"""A ``spec.configSchema`` may refer only inside itself: a ``$ref`` to a URL or a file is
refused at admission and in the controller's own check, naming the ``$ref``; nothing is
fetched, nothing is read, and nothing of a file's content reaches a message."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from controllers.plugin import validate_config
from mfx.api.models import PluginManifestSpec
from mfx.api.schema import Schemas, load_schemas
from mfx.api.validation import validate_object
from mfx.errors import InvalidConfigError, ValidationError
from tests.daemon_harness import ThreadDaemon

BASE = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"
SECRET = "s3cret-content-that-must-stay-on-disk"


class RecordingServer:
    """An HTTP server on localhost that serves a schema and remembers being asked for it."""

    def __init__(self) -> None:
        self.contacted = threading.Event()
        contacted = self.contacted

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
                contacted.set()
                body = b'{"type": "string", "description": "' + SECRET.encode() + b'"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/schema+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/schema.json"


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    server = RecordingServer()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        thread.join()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.json"
    path.write_text('{"type": "string", "description": "' + SECRET + '"}')
    return path


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return load_schemas()


def plugin(config_schema: dict[str, Any], config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "refs"},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m refs",
                 "configSchema": config_schema, "config": config if config is not None else {"token": 1}},
    }


def nested_ref(ref: str) -> dict[str, Any]:
    return {"type": "object", "properties": {"token": {"allOf": [{"$ref": ref}]}}}


REF_PATH = "spec.configSchema.properties.token.allOf[0].$ref"


def refused(obj: dict[str, Any], schemas: Schemas) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validate_object(obj, schemas=schemas)
    return caught.value


def test_http_reference_is_refused_without_contacting_the_server(recorder: RecordingServer, schemas: Schemas) -> None:
    error = refused(plugin(nested_ref(recorder.url)), schemas)
    [problem] = error.errors
    assert problem.path == REF_PATH
    assert recorder.url in problem.message and "refers outside the schema" in problem.message
    assert SECRET not in str(error)
    assert not recorder.contacted.is_set()


def test_file_reference_is_refused_and_its_content_never_shown(secret_file: Path, schemas: Schemas) -> None:
    error = refused(plugin(nested_ref(secret_file.as_uri())), schemas)
    assert [e.path for e in error.errors] == [REF_PATH]
    assert SECRET not in str(error)


def test_relative_reference_under_a_remote_id_is_refused(recorder: RecordingServer, schemas: Schemas) -> None:
    # "$id" makes a relative reference resolve against a URL: it is outside the document too.
    schema = {"$id": recorder.url, "properties": {"token": {"$ref": "other.json"}}}
    error = refused(plugin(schema), schemas)
    assert [e.path for e in error.errors] == ["spec.configSchema.properties.token.$ref"]
    assert not recorder.contacted.is_set()


def test_references_inside_the_schema_still_work(schemas: Schemas) -> None:
    schema = {"$defs": {"token": {"type": "string"}}, "properties": {"token": {"$ref": "#/$defs/token"}}}
    error = refused(plugin(schema, {"token": 1}), schemas)
    assert [(e.path, "is not of type 'string'" in e.message) for e in error.errors] == [("spec.config.token", True)]
    validate_object(plugin(schema, {"token": "abc"}), schemas=schemas)


def test_a_reference_to_nothing_in_the_schema_names_the_ref(schemas: Schemas) -> None:
    error = refused(plugin({"properties": {"token": {"$ref": "#/$defs/missing"}}}), schemas)
    [problem] = error.errors
    assert problem.path == "spec.configSchema.properties.token.$ref" and "points at nothing" in problem.message


def test_the_controller_check_refuses_outside_references_too(recorder: RecordingServer, secret_file: Path) -> None:
    for ref in (recorder.url, secret_file.as_uri()):
        spec = PluginManifestSpec.model_validate(plugin(nested_ref(ref))["spec"])
        with pytest.raises(InvalidConfigError) as caught:
            validate_config(spec)
        assert REF_PATH in str(caught.value) and SECRET not in str(caught.value)
    assert not recorder.contacted.is_set()


def test_the_daemon_answers_422_and_stores_nothing(tmp_path: Path, recorder: RecordingServer,
                                                    secret_file: Path) -> None:
    with ThreadDaemon(tmp_path / "home").running() as daemon:
        transport = httpx.HTTPTransport(uds=str(daemon.socket))
        with httpx.Client(transport=transport, base_url="http://mfx", timeout=30) as api:
            for ref in (recorder.url, secret_file.as_uri()):
                answer = api.post(BASE, json=plugin(nested_ref(ref)))
                assert answer.status_code == 422
                status = answer.json()
                assert [c["field"] for c in status["details"]["causes"]] == [REF_PATH]
                assert SECRET not in answer.text
            assert api.get(f"{BASE}/refs").status_code == 404
    assert not recorder.contacted.is_set()


@pytest.mark.parametrize(("schema", "path", "needle"), [
    ({"properties": {"token": {"$ref": "#missing-anchor"}}}, "spec.configSchema.properties.token.$ref",
     '"#missing-anchor" points at nothing'),
    ({"$defs": {"a": {"$ref": "#/$defs/a"}}, "properties": {"token": {"$ref": "#/$defs/a"}}}, "spec.configSchema",
     "refers to itself without end"),
])
def test_references_that_cannot_be_followed_are_named(schemas: Schemas, schema: dict[str, Any], path: str,
                                                      needle: str) -> None:
    [problem] = refused(plugin(schema), schemas).errors
    assert problem.path == path and needle in problem.message
