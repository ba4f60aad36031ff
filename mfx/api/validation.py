"""Validation of user objects: what ``mfx apply``, the daemon and GitOps all run.

``validate`` checks one object and reports every problem at once: the kind, the metadata
(as Kubernetes checks it), the spec against the CRD's ``openAPIV3Schema`` with unknown
fields refused and named, and the meaning of the values (semantic versions, version
constraints, durations, quantities, JSON Schema of ``config``, ...). ``validate_all`` does it
for a set of documents, all or nothing.

``status`` in user input is ignored, as the API server ignores it on the main resource.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from mfx.api.objects import Obj
from mfx.api.schema import INT_OR_STRING, PRESERVE, Schema, Schemas, did_you_mean
from mfx.api.semver import Constraint, Version
from mfx.api.units import DURATION_EXAMPLES, parse_cpu_millis, parse_duration, parse_memory_bytes
from mfx.api.yaml_loader import MAX_FILE_BYTES, Manifest, join_index, join_key, load_manifests
from mfx.errors import FieldError, ValidationError

__all__ = [
    "MAX_FILE_BYTES", "Manifest", "ValidationError", "load_manifests", "validate", "validate_all",
    "validate_object", "dns1123_subdomain_problem", "qualified_key_problem",
]

# --- Kubernetes name rules -------------------------------------------------------------

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ANNOTATIONS_BYTES = 256 * 1024

TOP_LEVEL_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")
METADATA_FIELDS = ("name", "labels", "annotations")
# Set by the server; accepted so that `get -o yaml` output can be re-applied, then ignored.
SERVER_METADATA_FIELDS = (
    "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
    "finalizers", "deletionTimestamp",
)

# Durations per kind, by path under spec.
DURATION_FIELDS: dict[str, tuple[str, ...]] = {
    "PluginManifest": (
        "resources.limits.timeout", "healthCheck.interval", "healthCheck.timeout",
        "restartPolicy.backoff.initial", "restartPolicy.backoff.max",
        "restartPolicy.startLimit.interval", "circuitBreaker.openDuration",
    ),
    "GitSource": ("interval", "timeout"),
}
MEMORY_FIELDS = ("resources.limits.memory", "resources.limits.maxMessageSize")
CPU_FIELDS = ("resources.limits.cpu",)


@dataclass
class _Errors:
    """Field errors of one object, placed in its file when the object came from one."""

    source: Manifest | None
    items: list[FieldError] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        if self.source is not None:
            self.items.append(self.source.field_error(path, message))
        else:
            self.items.append(FieldError(path=path, message=message))


def validate(obj: Obj, *, schemas: Schemas, source: Manifest | None = None) -> None:
    """Raise ``ValidationError`` listing every problem of ``obj``; return if it is valid."""
    errors = _Errors(source)
    if not isinstance(obj, dict):
        errors.add("", f"expected an object with apiVersion, kind, metadata and spec, got {_json_type(obj)}")
        raise ValidationError(errors.items)
    kind = _check_kind(obj, schemas, errors)
    for key in obj:
        if key not in TOP_LEVEL_FIELDS:
            errors.add(join_key("", key), f'unknown field "{key}"{did_you_mean(key, list(TOP_LEVEL_FIELDS))} '
                       f"(top-level fields: {', '.join(TOP_LEVEL_FIELDS)})")
    _check_metadata(obj.get("metadata"), errors)
    if kind is not None:
        schema = schemas.openapi(kind)
        spec_schema = schema["properties"]["spec"]
        spec = obj.get("spec")
        if spec is None:
            if "spec" in (schema.get("required") or ()):
                errors.add("spec", "required field is missing: " + _first_sentence(spec_schema))
        else:
            _check_schema(spec, spec_schema, "spec", errors)
            if isinstance(spec, dict):
                # The semantic checks look only at values of the right type, so they can run
                # even when the schema check failed, and every problem is reported at once.
                _SEMANTIC[kind](obj, spec, errors)
    if errors.items:
        errors.items.sort(key=lambda e: e.line or 0)
        raise ValidationError(errors.items, kind=str(obj.get("kind", "")), name=_name(obj))


def validate_object(obj: Obj, *, schemas: Schemas) -> Obj:
    """Validate one object (no file: errors carry field paths) and return a defaulted copy.

    What the API server runs on every write. ``status`` is left as it is: whether to keep it
    is the caller's decision (the main resource ignores it, the status subresource keeps it).
    """
    validate(obj, schemas=schemas)
    return schemas.apply_defaults(obj)


def validate_all(manifests: Iterable[Manifest], schemas: Schemas) -> list[Obj]:
    """Validate every manifest; return them with defaults (and without status) only if all are valid.

    Errors of all documents are collected into one ``ValidationError``, so a multi-document
    apply is all or nothing. The same kind and name twice is an error too.
    """
    problems: list[FieldError] = []
    results: list[Obj] = []
    first_seen: dict[tuple[str, str], Manifest] = {}
    for manifest in manifests:
        try:
            validate(manifest.obj, schemas=schemas, source=manifest)
        except ValidationError as exc:
            problems.extend(exc.errors)
            continue
        key = (manifest.obj["kind"], manifest.obj["metadata"]["name"])
        if key in first_seen:
            first = first_seen[key]
            problems.append(manifest.field_error(
                "metadata.name",
                f"{key[0]} {key[1]!r} is defined twice (first at {first.file}:{first.line_of('metadata.name')}): "
                "keep one definition",
            ))
            continue
        first_seen[key] = manifest
        obj = {k: v for k, v in manifest.obj.items() if k != "status"}
        results.append(schemas.apply_defaults(obj))
    if problems:
        raise ValidationError(problems)
    return results


# --- kind and metadata ------------------------------------------------------------------


def _check_kind(obj: Obj, schemas: Schemas, errors: _Errors) -> str | None:
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    known = ", ".join(schemas.kinds)
    if kind is None:
        errors.add("kind", f"required field is missing (known kinds: {known})")
    elif not isinstance(kind, str):
        errors.add("kind", f"must be a string, got {_json_type(kind)} (known kinds: {known})")
        kind = None
    elif not schemas.has(kind):
        errors.add("kind", f'unknown kind "{kind}"{did_you_mean(kind, list(schemas.kinds))} (known kinds: {known})')
        kind = None
    expected = schemas.api_version(kind) if kind else None
    if api_version is None:
        errors.add("apiVersion", f'required field is missing (use "{expected or schemas.api_version(schemas.kinds[0])}")')
    elif expected is not None and api_version != expected:
        errors.add("apiVersion", f'"{api_version}" does not serve {kind}; use "{expected}"')
    return kind


def _check_metadata(metadata: Any, errors: _Errors) -> None:
    if metadata is None:
        errors.add("metadata.name", "required field is missing: every object needs metadata.name")
        return
    if not isinstance(metadata, dict):
        errors.add("metadata", f"must be an object with name, labels and annotations, got {_json_type(metadata)}")
        return
    for key in metadata:
        if key in METADATA_FIELDS or key in SERVER_METADATA_FIELDS:
            continue
        path = join_key("metadata", key)
        if key == "namespace":
            errors.add(path, "mfx kinds are cluster-scoped: remove metadata.namespace")
        else:
            errors.add(path, f'unknown field "{key}"{did_you_mean(key, list(METADATA_FIELDS))} '
                       f"(fields: {', '.join(METADATA_FIELDS)})")
    name = metadata.get("name")
    if name is None:
        errors.add("metadata.name", "required field is missing: every object needs a name")
    elif not isinstance(name, str):
        errors.add("metadata.name", f"must be a string, got {_json_type(name)} {_show(name)} (quote it)")
    else:
        problem = dns1123_subdomain_problem(name)
        if problem:
            errors.add("metadata.name", problem)
    _check_string_map(metadata.get("labels"), "metadata.labels", errors, label_values=True)
    annotations = metadata.get("annotations")
    _check_string_map(annotations, "metadata.annotations", errors, label_values=False)
    if isinstance(annotations, dict):
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            errors.add("metadata.annotations", f"annotations total {size} bytes; the limit is {MAX_ANNOTATIONS_BYTES}")


def dns1123_subdomain_problem(name: str) -> str | None:
    """Why ``name`` is not a valid object name, or None (Kubernetes' DNS-1123 subdomain)."""
    if not name:
        return "must not be empty"
    if len(name) > 253:
        return f"must be at most 253 characters (it has {len(name)})"
    if not DNS1123_SUBDOMAIN.match(name):
        return (f'"{name}" is not a valid name: use lowercase letters, digits, "-" and ".", '
                "starting and ending with a letter or digit (e.g. codec-flac)")
    return None


def _check_string_map(value: Any, path: str, errors: _Errors, *, label_values: bool) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.add(path, f"must be a map of string keys to string values, got {_json_type(value)}")
        return
    for key, item in value.items():
        item_path = join_key(path, key)
        problem = qualified_key_problem(key)
        if problem:
            errors.add(item_path, problem)
        if not isinstance(item, str):
            errors.add(item_path, f"value must be a string, got {_json_type(item)} {_show(item)} (quote it)")
        elif label_values:
            if len(item) > 63:
                errors.add(item_path, f"label value must be at most 63 characters (it has {len(item)})")
            elif not LABEL_VALUE.match(item):
                errors.add(item_path, f'"{item}" is not a valid label value: use letters, digits, "-", "_" '
                           'and ".", starting and ending with a letter or digit, or leave it empty')


def qualified_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label or annotation key (``[prefix/]name``), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return f'"{key}": the prefix before "/" must not be empty'
    if prefix:
        if len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix):
            return f'"{key}": the prefix "{prefix}" must be a DNS subdomain (e.g. example.com)'
    if not name:
        return f'"{key}": the name part must not be empty'
    if len(name) > 63:
        return f'"{key}": the name part must be at most 63 characters'
    if not QUALIFIED_NAME.match(name):
        return (f'"{key}" is not a valid key: use letters, digits, "-", "_" and ".", starting and '
                'ending with a letter or digit, optionally prefixed by a DNS subdomain and "/"')
    return None


# --- structural schema ----------------------------------------------------------------


def _check_schema(value: Any, schema: Schema, path: str, errors: _Errors) -> None:
    """Check ``value`` against a structural schema; unknown fields are errors."""
    if schema.get(INT_OR_STRING):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            errors.add(path, f"must be an integer or a string such as 256Mi or 500m, got {_json_type(value)} "
                       f"{value!r}" + (" (quote it)" if isinstance(value, float) else ""))
        return
    expected = schema.get("type")
    if expected is not None and not _is_type(value, expected):
        errors.add(path, _type_problem(value, expected))
        return
    if "enum" in schema and value not in schema["enum"]:
        choices = [str(c) for c in schema["enum"]]
        errors.add(path, f"{_show(value)} is not one of: {', '.join(choices)}"
                   f"{did_you_mean(str(value), choices)}")
        return
    if isinstance(value, str):
        _check_string(value, schema, path, errors)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, errors)
    elif isinstance(value, list):
        _check_array(value, schema, path, errors)
    elif isinstance(value, dict):
        _check_object(value, schema, path, errors)


def _check_string(value: str, schema: Schema, path: str, errors: _Errors) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.add(path, f"must be at least {schema['minLength']} characters long")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.add(path, f"must be at most {schema['maxLength']} characters long (it has {len(value)})")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.add(path, f'"{value}" does not match {schema["pattern"]}: ' + _first_sentence(schema))


def _check_number(value: float, schema: Schema, path: str, errors: _Errors) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        errors.add(path, "must be a finite number")
        return
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and (value < low or (schema.get("exclusiveMinimum") and value == low)):
        errors.add(path, f"{value} is out of range: must be {_range_text(low, high)}")
    elif high is not None and (value > high or (schema.get("exclusiveMaximum") and value == high)):
        errors.add(path, f"{value} is out of range: must be {_range_text(low, high)}")


def _range_text(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _check_array(value: list[Any], schema: Schema, path: str, errors: _Errors) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.add(path, f"must have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.add(path, f"must have at most {schema['maxItems']} items")
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            if item is None:
                errors.add(join_index(path, i), "list items must not be null")
                continue
            _check_schema(item, items, join_index(path, i), errors)
    if schema.get("x-kubernetes-list-type") == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen: dict[tuple[Any, ...], int] = {}
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key = tuple(item.get(k) for k in keys)
            if None in key:
                continue
            if key in seen:
                shown = ", ".join(f"{k} {_show(item.get(k))}" for k in keys)
                errors.add(join_index(path, i), f"duplicate entry with {shown} (also at {path}[{seen[key]}])")
            else:
                seen[key] = i


def _check_object(value: dict[str, Any], schema: Schema, path: str, errors: _Errors) -> None:
    if schema.get(PRESERVE) and not schema.get("properties"):
        return
    props: dict[str, Schema] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        child = join_key(path, key)
        if key in props:
            if item is not None:
                _check_schema(item, props[key], child, errors)
        elif isinstance(extra, dict):
            if item is None:
                errors.add(child, "value must not be null")
            else:
                _check_schema(item, extra, child, errors)
        elif not schema.get(PRESERVE):
            fields = ", ".join(props) or "none"
            errors.add(child, f'unknown field "{key}"{did_you_mean(key, list(props))} (fields: {fields})')
    for key in schema.get("required") or ():
        if value.get(key) is None:
            errors.add(join_key(path, key), "required field is missing: " + _first_sentence(props.get(key, {})))


def _is_type(value: Any, expected: str) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    return True


def _type_problem(value: Any, expected: str) -> str:
    article = {"integer": "an integer", "object": "an object", "array": "a list"}.get(expected, f"a {expected}")
    text = f"must be {article}, got {_json_type(value)} {_show(value)}"
    if expected == "string" and isinstance(value, (int, float, bool)):
        text += f' (quote it: "{_yaml_text(value)}")'
    elif expected in ("integer", "number", "boolean") and isinstance(value, str):
        text += " (remove the quotes)"
    return text


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "{...}" if isinstance(value, dict) else "[...]"
    return repr(value)


def _first_sentence(schema: Schema) -> str:
    text = " ".join(str(schema.get("description") or "").split())
    return text or "see mfx explain"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _name(obj: Obj) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else ""


# --- semantic checks ------------------------------------------------------------------


def _get(spec: dict[str, Any], dotted: str) -> Any:
    value: Any = spec
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _spec_path(dotted: str) -> str:
    path = "spec"
    for part in dotted.split("."):
        path = join_key(path, part)
    return path


def _check_durations(spec: dict[str, Any], fields: tuple[str, ...], errors: _Errors) -> dict[str, float]:
    parsed: dict[str, float] = {}
    for dotted in fields:
        value = _get(spec, dotted)
        if not isinstance(value, str):
            continue  # absent, or a type error already reported
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            errors.add(_spec_path(dotted), str(exc))
            continue
        if seconds <= 0:
            errors.add(_spec_path(dotted), f'"{value}" must be a positive duration (examples: {DURATION_EXAMPLES})')
            continue
        parsed[dotted] = seconds
    return parsed


def _check_plugin(obj: Obj, spec: dict[str, Any], errors: _Errors) -> None:
    version = spec.get("version")
    if isinstance(version, str):
        try:
            Version.parse(version)
        except ValueError as exc:
            errors.add("spec.version", str(exc))

    name = _name(obj)
    dependencies = spec.get("dependencies")
    if isinstance(dependencies, list):
        for i, dep in enumerate(dependencies):
            if not isinstance(dep, dict):
                continue
            base = join_index("spec.dependencies", i)
            dep_name = dep.get("name")
            if isinstance(dep_name, str):
                if name and dep_name == name:
                    errors.add(base + ".name", f'plugin "{name}" lists itself as a dependency: remove this entry')
                problem = dns1123_subdomain_problem(dep_name)
                if problem:
                    errors.add(base + ".name", problem)
            constraint = dep.get("version")
            if isinstance(constraint, str):
                try:
                    Constraint.parse(constraint)
                except ValueError as exc:
                    errors.add(base + ".version", str(exc))

    durations = _check_durations(spec, DURATION_FIELDS["PluginManifest"], errors)
    initial = durations.get("restartPolicy.backoff.initial")
    longest = durations.get("restartPolicy.backoff.max")
    if initial is not None and longest is not None and longest < initial:
        errors.add("spec.restartPolicy.backoff.max",
                   f"must not be shorter than backoff.initial ({_get(spec, 'restartPolicy.backoff.initial')})")
    _check_quantities(spec, MEMORY_FIELDS, parse_memory_bytes, errors)
    _check_quantities(spec, CPU_FIELDS, parse_cpu_millis, errors)

    env = spec.get("env")
    if isinstance(env, dict):
        for key in env:
            if not ENV_NAME.match(key):
                errors.add(join_key("spec.env", key), f'"{key}" is not an environment variable name '
                           "(letters, digits and _, not starting with a digit)")

    paths = _get(spec, "security.allowedPaths")
    if isinstance(paths, list):
        for i, entry in enumerate(paths):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str) and not entry["path"].startswith("/"):
                errors.add(join_index("spec.security.allowedPaths", i) + ".path",
                           f'"{entry["path"]}" must be an absolute path (e.g. /music)')

    _check_config(spec, errors)


def _check_quantities(spec: dict[str, Any], fields: tuple[str, ...], parse: Callable[[Any], int],
                      errors: _Errors) -> None:
    for dotted in fields:
        value = _get(spec, dotted)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, str)):
            continue
        try:
            amount = parse(value)
        except ValueError as exc:
            errors.add(_spec_path(dotted), str(exc))
            continue
        if amount <= 0:
            errors.add(_spec_path(dotted), f'"{value}" must be more than zero')


def _check_config(spec: dict[str, Any], errors: _Errors) -> None:
    config_schema = spec.get("configSchema")
    if not isinstance(config_schema, dict):
        return
    validator_class = jsonschema.Draft202012Validator
    problem = _schema_problem(json.dumps(config_schema, sort_keys=True))
    if problem is not None:
        where, message = problem
        errors.add(_json_path("spec.configSchema", where), f"not a valid JSON Schema (draft 2020-12): {message}")
        return
    config = spec.get("config")
    if config is None:
        config = {}
    validator = validator_class(config_schema, format_checker=validator_class.FORMAT_CHECKER)
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        errors.add(_json_path("spec.config", error.absolute_path), f"{error.message} (see spec.configSchema)")


@functools.lru_cache(maxsize=512)
def _schema_problem(schema_json: str) -> tuple[tuple[str | int, ...], str] | None:
    """Why a JSON Schema (as canonical JSON text) is invalid, or None.

    Checking against the draft 2020-12 meta-schema costs milliseconds, and GitOps re-validates
    the same manifests every interval, so the (pure) answer is memoised by the schema's text.
    """
    try:
        jsonschema.Draft202012Validator.check_schema(json.loads(schema_json))
    except SchemaError as exc:
        return tuple(exc.absolute_path), exc.message
    return None


def _json_path(base: str, parts: Iterable[Any]) -> str:
    path = base
    for part in parts:
        path = join_index(path, part) if isinstance(part, int) else join_key(path, str(part))
    return path


def _check_sink(obj: Obj, spec: dict[str, Any], errors: _Errors) -> None:
    device = spec.get("device")
    if isinstance(device, str) and not device.strip():
        errors.add("spec.device", 'must not be empty (e.g. "default" or "hw:0,0")')


def _check_gitsource(obj: Obj, spec: dict[str, Any], errors: _Errors) -> None:
    url = spec.get("url")
    if isinstance(url, str) and not url.strip():
        errors.add("spec.url", "must not be empty: give a repository URL or a local path")
    ref = spec.get("ref")
    if isinstance(ref, dict):
        given = [k for k in ("branch", "tag", "commit") if ref.get(k) not in (None, "")]
        if len(given) != 1:
            got = "none" if not given else " and ".join(given)
            errors.add("spec.ref", f"set exactly one of branch, tag or commit (got {got})")
    _check_durations(spec, DURATION_FIELDS["GitSource"], errors)
    depends = spec.get("dependsOn")
    name = _name(obj)
    if isinstance(depends, list):
        for i, entry in enumerate(depends):
            if isinstance(entry, dict) and name and entry.get("name") == name:
                errors.add(join_index("spec.dependsOn", i) + ".name",
                           f'GitSource "{name}" depends on itself: remove this entry')


_SEMANTIC: dict[str, Callable[[Obj, dict[str, Any], _Errors], None]] = {
    "PluginManifest": _check_plugin,
    "AudioSink": _check_sink,
    "GitSource": _check_gitsource,
}
