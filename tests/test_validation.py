"""Bad manifests get every problem reported at once, each with file, line and field path;
good ones pass and come back with their defaults."""

from __future__ import annotations

import json
import textwrap

import pytest

from mfx.api.models import (
    AudioSinkSpec,
    GitSourceSpec,
    PluginManifestSpec,
    PluginType,
    RestartPolicy,
    SampleFormat,
    parse_spec,
)
from mfx.api.schema import Schemas, load_schemas
from mfx.api.semver import Version
from mfx.api.validation import validate, validate_all, validate_object
from mfx.api.yaml_loader import MAX_FILE_BYTES, Manifest, load_manifests
from mfx.errors import BadRequestError, FieldError, ValidationError

FILE = "manifests/bad.yaml"

PLUGIN = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata:
  name: hello
spec:
  version: 1.2.0
  type: rpc
  entryPoint: python -m hello
"""
SINK = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: AudioSink
metadata:
  name: speakers
spec:
  device: default
"""
GIT = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: GitSource
metadata:
  name: desired
spec:
  url: https://example.com/desired.git
"""


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return load_schemas()


def problems(text: str, schemas: Schemas, filename: str = FILE) -> list[FieldError]:
    """Every FieldError of the text, whether it fails to load or to validate."""
    with pytest.raises(ValidationError) as info:
        validate_all(load_manifests(textwrap.dedent(text), filename), schemas)
    return info.value.errors


def lines_of(text: str, schemas: Schemas) -> list[str]:
    return [str(e) for e in problems(text, schemas)]


def the_error(text: str, schemas: Schemas, path: str) -> FieldError:
    found = [e for e in problems(text, schemas) if e.path == path]
    assert found, f"no error at {path}"
    return found[0]


def plugin_with(spec_tail: str) -> str:
    return PLUGIN + textwrap.indent(textwrap.dedent(spec_tail), "  ")


# --- good input -----------------------------------------------------------------------------


def test_a_valid_manifest_of_each_kind_passes_and_gets_defaults(schemas: Schemas) -> None:
    text = "\n---\n".join([PLUGIN, SINK, GIT])
    objs = validate_all(load_manifests(text, "all.yaml"), schemas)
    assert [o["kind"] for o in objs] == ["PluginManifest", "AudioSink", "GitSource"]
    plugin, sink, git = (o["spec"] for o in objs)
    assert plugin["healthCheck"] == {"interval": "10s", "timeout": "2s", "failureThreshold": 3}
    assert plugin["restartPolicy"]["policy"] == "Always" and plugin["suspend"] is False
    assert sink == {"device": "default", "rate": 48000, "channels": 2, "format": "S16_LE",
                    "periodFrames": 1024, "bufferPeriods": 4, "exclusive": False, "default": False,
                    "pacing": "auto"}
    assert git["ref"] == {"branch": "main"} and git["path"] == "./" and git["interval"] == "1m"


def test_reapplying_get_output_is_accepted_and_defaults_are_a_no_op(schemas: Schemas) -> None:
    [first] = validate_all(load_manifests(PLUGIN, "p.yaml"), schemas)
    stored = dict(first)
    stored["metadata"] = {**first["metadata"], "uid": "8c1e", "resourceVersion": "12", "generation": 3,
                          "creationTimestamp": "2024-05-01T10:00:00Z", "finalizers": ["mfx.musicfox.io/finalizer"],
                          "managedFields": []}
    stored["status"] = {"observedGeneration": 3, "conditions": [{"type": "Ready", "status": "True"}],
                        "anything": {"is": "ignored"}}
    [again] = validate_all(load_manifests(json.dumps(stored, indent=2), "get.json"), schemas)
    assert again["spec"] == first["spec"]
    assert "status" not in again
    assert again["metadata"]["creationTimestamp"] == "2024-05-01T10:00:00Z"  # stays a string


def test_json_input_with_tabs_works(schemas: Schemas) -> None:
    text = '{\n\t"apiVersion": "mfx.musicfox.io/v1alpha1",\n\t"kind": "AudioSink",\n\t"metadata": {"name": "s"},\n\t"spec": {"rate": "44100"}\n}\n'
    [error] = problems(text, schemas, "sink.json")
    assert str(error).startswith("sink.json:5: spec.rate: must be an integer")


def test_a_list_document_expands_into_its_items_with_their_lines(schemas: Schemas) -> None:
    text = """\
    apiVersion: v1
    kind: List
    items:
    - apiVersion: mfx.musicfox.io/v1alpha1
      kind: AudioSink
      metadata: {name: a}
    - apiVersion: mfx.musicfox.io/v1alpha1
      kind: AudioSink
      metadata: {name: b}
      spec:
        channels: 0
    """
    manifests = load_manifests(textwrap.dedent(text), FILE)
    assert [(m.obj["metadata"]["name"], m.document, m.item) for m in manifests] == [("a", 0, 0), ("b", 0, 1)]
    assert lines_of(text, schemas) == [f"{FILE}:11: spec.channels: 0 is out of range: must be between 1 and 32"]


def test_empty_documents_are_skipped_and_indexes_count_them(schemas: Schemas) -> None:
    text = "# only a comment\n---\n---\n" + SINK + "---\n"
    [manifest] = load_manifests(text, "s.yaml")
    assert manifest.document == 1  # a comment before the first "---" is no document
    assert manifest.line_of("spec.device") == 9
    assert load_manifests("", "empty.yaml") == []


def test_a_few_aliases_are_fine(schemas: Schemas) -> None:
    text = """\
    apiVersion: mfx.musicfox.io/v1alpha1
    kind: PluginManifest
    metadata: {name: a}
    spec:
      version: 1.0.0
      type: rpc
      healthCheck: &probe {interval: 5s, timeout: 1s}
      circuitBreaker:
        <<: {openDuration: 5s}
      config: {probe: *probe}
    """
    [obj] = validate_all(load_manifests(textwrap.dedent(text), FILE), schemas)
    assert obj["spec"]["config"] == {"probe": {"interval": "5s", "timeout": "1s"}}
    assert obj["spec"]["circuitBreaker"]["openDuration"] == "5s"


# --- the exact message format -------------------------------------------------------------------


def test_bad_constraint_message_names_file_line_and_field(schemas: Schemas) -> None:
    text = plugin_with("""\
        description: >-
          Says hello.
        interfaces:
          - MusicSource
        dependencies:
          - name: codec
            version: "^^1"
        """)
    assert lines_of(text, schemas) == [
        'manifests/bad.yaml:15: spec.dependencies[0].version: "^^1" is not a version constraint '
        "(examples: ^1.2, >=1.0 <2.0, ~> 1.4)"
    ]


def test_unknown_field_is_named_with_the_closest_known_one(schemas: Schemas) -> None:
    error = the_error(plugin_with("dependncies: []\n"), schemas, "spec.dependncies")
    assert str(error).startswith('manifests/bad.yaml:9: spec.dependncies: unknown field "dependncies"; '
                                 'did you mean "dependencies"?')
    nested = the_error(plugin_with("healthCheck: {intervall: 5s}\n"), schemas, "spec.healthCheck.intervall")
    assert nested.line == 9 and 'did you mean "interval"?' in nested.message
    top = the_error(PLUGIN + "spek: {}\n", schemas, "spek")
    assert top.line == 9 and 'did you mean "spec"?' in top.message


def test_every_problem_is_reported_at_once_sorted_by_line(schemas: Schemas) -> None:
    text = plugin_with("""\
        priority: high
        healthCheck: {interval: 10x}
        dependencies:
          - name: hello
        """).replace("type: rpc", "type: grpc")
    errors = problems(text, schemas)
    assert [(e.line, e.path) for e in errors] == [
        (7, "spec.type"), (9, "spec.priority"), (10, "spec.healthCheck.interval"), (12, "spec.dependencies[0].name"),
    ]
    assert all(e.file == FILE and e.document == 0 for e in errors)
    assert '"grpc" is not one of: dynamic_library, rpc, webassembly, hot_reload; did you mean "rpc"?' in errors[0].message
    assert errors[1].message == 'must be an integer, got string "high" (e.g. 0)'
    assert "lists itself as a dependency" in errors[3].message


# --- kind and apiVersion ------------------------------------------------------------------------


def test_unknown_kind_lists_the_known_kinds(schemas: Schemas) -> None:
    error = the_error(PLUGIN.replace("kind: PluginManifest", "kind: Plugin"), schemas, "kind")
    assert error.line == 2
    assert error.message == (
        'unknown kind "Plugin"; did you mean "PluginManifest"? (known kinds: PluginManifest, AudioSink, GitSource, Node, '
        'Lease)'
    )


def test_wrong_api_version_says_which_to_use(schemas: Schemas) -> None:
    error = the_error(SINK.replace("mfx.musicfox.io/v1alpha1", "v1"), schemas, "apiVersion")
    assert error.line == 1 and error.message == '"v1" does not serve AudioSink; use "mfx.musicfox.io/v1alpha1"'


def test_missing_kind_and_api_version(schemas: Schemas) -> None:
    errors = problems("metadata: {name: a}\n", schemas)
    assert {e.path for e in errors} == {"kind", "apiVersion"}
    assert all(e.line == 1 for e in errors)


# --- metadata -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "path", "needle"),
    [
        ("{}", "metadata.name", "required field is missing"),
        ("{name: Hello_World}", "metadata.name", '"Hello_World" is not a valid name'),
        ("{name: " + "a" * 254 + "}", "metadata.name", "at most 253 characters"),
        ("{name: 5}", "metadata.name", "must be a string"),
        ("{name: a, namespace: default}", "metadata.namespace", "cluster-scoped"),
        ("{name: a, lables: {}}", "metadata.lables", 'unknown field "lables"; did you mean "labels"?'),
        ('{name: a, labels: {"bad key!": x}}', 'metadata.labels["bad key!"]', "is not a valid key"),
        ('{name: a, labels: {"-x.com/a": x}}', 'metadata.labels["-x.com/a"]', "must be a DNS subdomain"),
        ("{name: a, labels: {app: true}}", "metadata.labels.app", "value must be a string, got boolean true"),
        ('{name: a, labels: {app: "has space"}}', "metadata.labels.app", "is not a valid label value"),
        ("{name: a, labels: {app: " + "v" * 64 + "}}", "metadata.labels.app", "at most 63 characters"),
        ("{name: a, annotations: {note: 5}}", "metadata.annotations.note", "value must be a string"),
    ],
)
def test_metadata_is_checked_like_kubernetes(schemas: Schemas, metadata: str, path: str, needle: str) -> None:
    text = SINK.replace("metadata:\n  name: speakers\n", f"metadata: {metadata}\n")
    error = the_error(text, schemas, path)
    assert error.line == 3 and error.file == FILE
    assert needle in error.message


def test_annotations_may_hold_any_text(schemas: Schemas) -> None:
    text = SINK.replace("name: speakers\n", 'name: speakers\n  annotations: {"example.com/note": "any text: at all!"}\n')
    validate_all(load_manifests(text, FILE), schemas)


def test_missing_metadata(schemas: Schemas) -> None:
    error = the_error("apiVersion: mfx.musicfox.io/v1alpha1\nkind: AudioSink\n", schemas, "metadata.name")
    assert error.line == 1


# --- schema checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "path", "line", "needle"),
    [
        ("suspend: maybe\n", "spec.suspend", 9, 'must be a boolean, got string "maybe"'),
        ("interfaces: [musicSource]\n", "spec.interfaces[0]", 9, "does not match ^[A-Z]"),
        ("security: {checksum: 'md5:0'}\n", "spec.security.checksum", 9, '"md5:0" does not match ^sha256:[0-9a-f]{64}$'),
        ("circuitBreaker: {failureRatio: 1.5}\n", "spec.circuitBreaker.failureRatio", 9, "must be between 0 and 1"),
        ("dependencies: [{version: ^1}]\n", "spec.dependencies[0].name", 9, "required field is missing"),
        ("resources: {limits: {cpu: 1.5}}\n", "spec.resources.limits.cpu", 9, '(quote it: "1.5")'),
        ("env: {A: 1}\n", "spec.env.A", 9, 'must be a string, got number 1 (quote it: "1")'),
        ("restartPolicy:\n  policy: always\n", "spec.restartPolicy.policy", 10, 'did you mean "Always"?'),
    ],
)
def test_schema_violations_name_the_field(schemas: Schemas, tail: str, path: str, line: int, needle: str) -> None:
    error = the_error(plugin_with(tail), schemas, path)
    assert (error.file, error.line) == (FILE, line)
    assert needle in error.message


def test_required_spec_fields(schemas: Schemas) -> None:
    text = PLUGIN.replace("  version: 1.2.0\n", "").replace("  type: rpc\n", "")
    errors = problems(text, schemas)
    assert [(e.path, e.line) for e in errors] == [("spec.version", 5), ("spec.type", 5)]
    missing_spec = the_error(GIT.split("spec:")[0], schemas, "spec")
    assert "required field is missing" in missing_spec.message


def test_version_must_be_semver_and_a_string(schemas: Schemas) -> None:
    error = the_error(PLUGIN.replace("version: 1.2.0", "version: 1.2"), schemas, "spec.version")
    assert error.message == 'must be a string, got number 1.2 (e.g. "1.2.0")'
    error = the_error(PLUGIN.replace("version: 1.2.0", 'version: "1.2"'), schemas, "spec.version")
    assert (error.line, error.message.startswith('"1.2" is not a semantic version')) == (6, True)


def test_audiosink_ranges_and_format(schemas: Schemas) -> None:
    text = SINK + "  rate: 1000\n  channels: 64\n  format: S8\n  bufferPeriods: 1\n"
    errors = {e.path: e for e in problems(text, schemas)}
    assert errors["spec.rate"].line == 7 and "must be between 8000 and 768000" in errors["spec.rate"].message
    assert errors["spec.channels"].line == 8 and "between 1 and 32" in errors["spec.channels"].message
    assert "is not one of: S16_LE, S24_LE, S32_LE, FLOAT_LE" in errors["spec.format"].message
    assert "between 2 and 64" in errors["spec.bufferPeriods"].message


# --- semantic checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    ["resources.limits.timeout", "healthCheck.interval", "healthCheck.timeout", "restartPolicy.backoff.initial",
     "restartPolicy.backoff.max", "restartPolicy.startLimit.interval", "circuitBreaker.openDuration"],
)
def test_durations_are_checked_where_they_live(schemas: Schemas, field: str) -> None:
    parts = field.split(".")
    tail = "".join(f"{'  ' * i}{p}:\n" for i, p in enumerate(parts[:-1])) + f"{'  ' * (len(parts) - 1)}{parts[-1]}: 10 seconds\n"
    error = the_error(plugin_with(tail), schemas, f"spec.{field}")
    assert error.line == 8 + len(parts)
    assert error.message.startswith('"10 seconds" is not a duration') and "examples: 500ms" in error.message


def test_zero_durations_and_backoff_order(schemas: Schemas) -> None:
    text = plugin_with("healthCheck: {timeout: 0s}\nrestartPolicy: {backoff: {initial: 1m, max: 10s}}\n")
    errors = {e.path: e.message for e in problems(text, schemas)}
    assert errors["spec.healthCheck.timeout"].startswith('"0s" must be a positive duration')
    assert errors["spec.restartPolicy.backoff.max"] == "must not be shorter than backoff.initial (1m)"


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [("memory", "256MB", '"256MB" is not a quantity'), ("maxMessageSize", "lots", "is not a quantity"),
     ("cpu", "-1", "is not a CPU amount: it is negative"), ("memory", "0", "must be more than zero")],
)
def test_quantities_are_checked(schemas: Schemas, field: str, value: str, needle: str) -> None:
    error = the_error(plugin_with(f"resources:\n  limits:\n    {field}: '{value}'\n"), schemas,
                      f"spec.resources.limits.{field}")
    assert error.line == 11 and needle in error.message


def test_config_schema_must_be_a_json_schema(schemas: Schemas) -> None:
    error = the_error(plugin_with("configSchema:\n  type: object\n  properties:\n    rate: {type: integr}\n"),
                      schemas, "spec.configSchema.properties.rate.type")
    assert error.line == 12 and error.message.startswith("not a valid JSON Schema (draft 2020-12):")


def test_config_is_validated_against_config_schema_with_paths(schemas: Schemas) -> None:
    text = plugin_with("""\
        configSchema:
          type: object
          required: [bitrate, name]
          properties:
            bitrate: {type: integer, maximum: 320}
            outputs: {type: array, items: {type: string}}
            name: {type: string}
        config:
          bitrate: 999
          outputs: [a, 5]
        """)
    errors = {e.path: e for e in problems(text, schemas)}
    assert errors["spec.config.bitrate"].line == 17
    assert "999 is greater than the maximum of 320" in errors["spec.config.bitrate"].message
    assert errors["spec.config.outputs[1]"].line == 18
    assert "'name' is a required property" in errors["spec.config"].message
    assert errors["spec.config"].line == 16


def test_duplicate_dependency_names(schemas: Schemas) -> None:
    text = plugin_with("dependencies:\n- name: codec\n- name: codec\n  version: ^2\n")
    error = the_error(text, schemas, "spec.dependencies[1]")
    assert error.line == 11 and error.message == 'duplicate entry with name "codec" (also at spec.dependencies[0])'


def test_env_names_and_allowed_paths(schemas: Schemas) -> None:
    text = plugin_with("env: {1X: a}\nsecurity:\n  allowedPaths: [{path: music}]\n")
    errors = {e.path: e for e in problems(text, schemas)}
    assert "is not an environment variable name" in errors['spec.env["1X"]'].message
    assert errors["spec.security.allowedPaths[0].path"].line == 11


@pytest.mark.parametrize(
    ("ref", "needle"),
    [("{}", "got none"), ("{branch: main, tag: v1}", "got branch and tag"),
     ("{commit: XYZ}", "does not match ^[0-9a-f]{7,40}$")],
)
def test_gitsource_needs_exactly_one_ref(schemas: Schemas, ref: str, needle: str) -> None:
    errors = problems(GIT + f"  ref: {ref}\n", schemas)
    assert len(errors) == 1 and errors[0].line == 7 and needle in errors[0].message


def test_gitsource_durations_and_self_dependency(schemas: Schemas) -> None:
    text = GIT + "  interval: often\n  timeout: 5\n  dependsOn: [{name: desired}]\n"
    errors = {e.path: e for e in problems(text, schemas)}
    assert errors["spec.interval"].line == 7 and "is not a duration" in errors["spec.interval"].message
    assert "must be a string" in errors["spec.timeout"].message
    assert "depends on itself" in errors["spec.dependsOn[0].name"].message


def test_status_in_user_input_is_ignored(schemas: Schemas) -> None:
    [obj] = validate_all(load_manifests(SINK + "status:\n  bogus: [1, 2]\n", FILE), schemas)
    assert "status" not in obj


def test_validate_without_a_file_reports_paths_only(schemas: Schemas) -> None:
    with pytest.raises(ValidationError) as info:
        validate({"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink",
                  "metadata": {"name": "s"}, "spec": {"rate": "fast"}}, schemas=schemas)
    assert str(info.value) == 'spec.rate: must be an integer, got string "fast" (e.g. 48000)'
    assert info.value.kind == "AudioSink" and info.value.name == "s"


# --- all or nothing -------------------------------------------------------------------------


def test_multi_document_apply_is_all_or_nothing(schemas: Schemas) -> None:
    good = load_manifests(PLUGIN + "---\n" + SINK, "good.yaml")
    bad = load_manifests(GIT.replace("url: ", "uri: "), "bad.yaml")
    with pytest.raises(ValidationError) as info:
        validate_all([*good, *bad], schemas)
    assert [str(e).split(": ")[0:2] for e in info.value.errors] == [["bad.yaml:5", "spec.url"], ["bad.yaml:6", "spec.uri"]]
    assert len(validate_all(good, schemas)) == 2


def test_errors_of_several_documents_are_collected(schemas: Schemas) -> None:
    text = SINK.replace("device: default", "rate: 1") + "---\n" + SINK.replace("speakers", "b").replace("device: default", "channels: 99")
    errors = problems(text, schemas)
    assert [(e.document, e.line, e.path) for e in errors] == [(0, 6, "spec.rate"), (1, 13, "spec.channels")]


def test_the_same_object_twice_is_an_error(schemas: Schemas) -> None:
    errors = problems(SINK + "---\n" + SINK, schemas)
    assert len(errors) == 1
    assert str(errors[0]) == (f"{FILE}:11: metadata.name: AudioSink 'speakers' is defined twice "
                              f"(first at {FILE}:4): keep one definition")


# --- reading files --------------------------------------------------------------------------


def test_malformed_yaml_reports_line_and_column(schemas: Schemas) -> None:
    text = "apiVersion: v1\nkind: AudioSink\nmetadata:\n  name: [a, b\nspec: {}\n"
    [error] = problems(text, schemas)
    assert str(error).startswith(f"{FILE}:5:5: invalid YAML:")
    [bad_indent] = problems("a: 1\n  b: 2\n", schemas)
    assert (bad_indent.line, bad_indent.column) == (2, 4)
    assert str(bad_indent).startswith(f"{FILE}:2:4: invalid YAML: mapping values are not allowed")


def test_duplicate_keys_are_refused(schemas: Schemas) -> None:
    [error] = problems(SINK + "  device: hw:0\n", schemas)
    assert str(error) == f'{FILE}:7:3: spec.device: duplicate key "device" (the first is on line 6)'


def test_alias_bomb_is_refused(schemas: Schemas) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for name, prev in zip("bcdefghi", "abcdefgh", strict=True):
        bomb += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    [error] = problems(bomb, schemas)
    assert error.file == FILE and error.line is not None
    assert "expands YAML aliases more than 100 times" in error.message


def test_recursive_alias_is_refused(schemas: Schemas) -> None:
    [error] = problems("a: &a [1, *a]\n", schemas)
    assert "recursive YAML alias" in error.message and error.line == 1


def test_files_over_1_mib_are_refused(schemas: Schemas) -> None:
    text = SINK + "# " + "x" * MAX_FILE_BYTES + "\n"
    [error] = problems(text, schemas)
    size = len(text.encode())
    assert str(error) == (f"{FILE}: file is {size} bytes (1.0 MiB); the limit is 1048576 bytes (1 MiB): "
                          "split it into several files")
    just_under = SINK + "# " + "x" * (MAX_FILE_BYTES - len(SINK) - 4) + "\n"
    assert len(load_manifests(just_under, FILE)) == 1


def test_documents_that_are_not_mappings(schemas: Schemas) -> None:
    [error] = problems(SINK + "---\n- a\n- b\n", schemas)
    assert (error.line, error.document) == (8, 1)
    assert "document 1 is a list; expected a mapping" in error.message


def test_non_json_yaml_values_are_refused(schemas: Schemas) -> None:
    [error] = problems(SINK + "  x: !!binary aGk=\n", schemas)
    assert error.line == 7 and "unsupported YAML tag" in error.message
    [error] = problems(SINK + "  rate: .inf\n", schemas)
    assert "not a JSON number" in error.message


def test_manifest_finds_the_line_of_missing_fields_through_parents() -> None:
    [m] = load_manifests(PLUGIN, FILE)
    assert isinstance(m, Manifest)
    assert m.line_of("spec.type") == 7
    assert m.line_of("spec.healthCheck.interval") == 5  # absent: its nearest ancestor, spec
    assert m.line_of("metadata.labels[\"a/b\"]") == 3


# --- typed access for controllers ---------------------------------------------------------------


def test_validated_objects_parse_into_typed_specs_with_parsed_values(schemas: Schemas) -> None:
    text = plugin_with("""\
        dependencies: [{name: codec, version: "^1.2"}]
        resources: {limits: {memory: 256Mi, cpu: 500m, timeout: 1500ms}}
        healthCheck: {interval: 1m}
        restartPolicy: {policy: OnFailure, backoff: {max: 1h}, startLimit: {interval: 2m}}
        circuitBreaker: {openDuration: 45s}
        """) + "---\n" + SINK + "  format: FLOAT_LE\n  periodFrames: 512\n---\n" + GIT + "  interval: 5m\n"
    plugin_obj, sink_obj, git_obj = validate_all(load_manifests(text, FILE), schemas)
    plugin = parse_spec(plugin_obj)
    assert isinstance(plugin, PluginManifestSpec)
    assert plugin.type is PluginType.RPC and plugin.entry_point == "python -m hello"
    assert plugin.parsed_version == Version(1, 2, 0)
    assert plugin.dependencies[0].constraint.satisfied_by("1.9.0")
    assert (plugin.limits.memory_bytes, plugin.limits.cpu_millis, plugin.limits.timeout_seconds) == (268435456, 500, 1.5)
    assert plugin.limits.max_message_bytes == 16 * 2**20
    assert plugin.health_check.interval_seconds == 60 and plugin.health_check.timeout_seconds == 2
    assert plugin.restart_policy.policy is RestartPolicy.ON_FAILURE
    assert (plugin.restart_policy.backoff.initial_seconds, plugin.restart_policy.backoff.max_seconds) == (1, 3600)
    assert plugin.restart_policy.start_limit.interval_seconds == 120
    assert plugin.circuit_breaker.open_duration_seconds == 45
    sink = parse_spec(sink_obj)
    assert isinstance(sink, AudioSinkSpec)
    assert sink.format is SampleFormat.FLOAT_LE and sink.buffer_frames == 512 * 4
    git = parse_spec(git_obj)
    assert isinstance(git, GitSourceSpec)
    assert git.interval_seconds == 300 and git.timeout_seconds == 300 and str(git.ref) == "branch main"


def test_parse_spec_refuses_unknown_kinds_and_invalid_specs() -> None:
    with pytest.raises(BadRequestError, match="known kinds: PluginManifest, AudioSink, GitSource"):
        parse_spec({"kind": "Event"})
    with pytest.raises(ValidationError) as info:
        parse_spec({"kind": "PluginManifest", "metadata": {"name": "p"}, "spec": {"version": "1.0.0", "type": "jar"}})
    assert info.value.errors[0].path == "spec.type" and info.value.name == "p"


def test_validate_object_returns_a_defaulted_copy(schemas: Schemas) -> None:
    obj = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink", "metadata": {"name": "s"}}
    admitted = validate_object(obj, schemas=schemas)
    assert admitted["spec"]["rate"] == 48000 and "spec" not in obj
    with pytest.raises(ValidationError, match="metadata.name: required field is missing"):
        validate_object({**obj, "metadata": {}}, schemas=schemas)


@pytest.mark.parametrize(("operator", "values", "says"), [
    ("In", None, "must list at least one value when operator is In"),
    ("NotIn", "[]", "must list at least one value when operator is NotIn"),
    ("Exists", '["kitchen"]', "must be empty when operator is Exists"),
])
def test_a_node_selector_requirement_with_values_its_operator_cannot_take_is_refused(
    schemas: Schemas, operator: str, values: str | None, says: str
) -> None:
    given = f"\n            values: {values}" if values is not None else ""
    error = the_error(plugin_with(f"""\
        nodeSelector:
          matchExpressions:
          - key: room
            operator: {operator}{given}
        """), schemas, "spec.nodeSelector.matchExpressions[0].values")
    assert says in error.message
