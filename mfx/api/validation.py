"""Validation of user objects: what ``mfx apply``, the daemon and GitOps all run.

``validate`` checks one object and reports every problem at once: the kind, the metadata
(as Kubernetes checks it), the spec against the CRD's ``openAPIV3Schema`` with unknown
fields refused and named, and the meaning of the values (semantic versions, version
constraints, durations, quantities, JSON Schema of ``config``, ...). ``validate_all`` does it
for a set of documents, all or nothing.

``status`` in user input is ignored, as the API server ignores it on the main resource.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
from jsonschema.exceptions import SchemaError

from mfx.api.bounded_patterns import MATCH_BUDGET_SECONDS, PatternTooSlow, bounded_validator
from mfx.api.objects import Obj
from mfx.api.schema import INT_OR_STRING, PRESERVE, Schema, Schemas, did_you_mean
from mfx.api.semver import Constraint, Version
from mfx.api.units import DURATION_EXAMPLES, parse_cpu_millis, parse_duration, parse_memory_bytes
from mfx.api.yaml_loader import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    Manifest,
    join_index,
    join_key,
    load_manifests,
)
from mfx.errors import FieldError, ValidationError

__all__ = [
    "MAX_FILE_BYTES", "Manifest", "ValidationError", "decode_manifest", "load_manifests", "validate", "validate_all",
    "validate_object", "dns1123_subdomain_problem", "qualified_key_problem", "config_problems",
]


def decode_manifest(name: str, data: bytes) -> str:
    """The text of a manifest file, which must be UTF-8 (as YAML 1.2 and JSON require).

    Replacing what does not decode would apply something other than what the file says, so a
    file that is not UTF-8 is refused, naming the file, the line and the byte.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValidationError([FieldError(
            path="", file=name, line=line,
            message=f"not UTF-8 text: byte {error.start} (0x{data[error.start]:02x}) does not decode; "
            "save the file as UTF-8",
        )]) from None

# --- Kubernetes name rules -------------------------------------------------------------

# Anchored with \Z: "$" would also match before a trailing newline, and "name\n" is no name.
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_ANNOTATIONS_BYTES = 256 * 1024
# What JSON readers everywhere (and Kubernetes clients) agree an integer can be.
INT64_RANGE = (-(2**63), 2**63 - 1)
# Problems of this kind are listed up to here; a value with thousands of them gets the gist.
MAX_VALUE_PROBLEMS = 20

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
    kind: str | None = None  # once known: the formats of fields depend on it
    items: list[FieldError] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        error = self.source.field_error(path, message) if self.source is not None else FieldError(path, message)
        self.items.append(dataclasses.replace(error, path=path.translate(_ESCAPES), message=message.translate(_ESCAPES)))


# Messages quote the values they are about. A value's control characters, line separators
# and bidirectional overrides are shown escaped, so that every problem stays one line
# ("file:line: field: message") and reads as what it is.
_ESCAPES: dict[int, str] = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    **{c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))},
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
}


def validate(obj: Obj, *, schemas: Schemas, source: Manifest | None = None) -> None:
    """Raise ``ValidationError`` listing every problem of ``obj``; return if it is valid."""
    errors = _Errors(source)
    if not isinstance(obj, dict):
        errors.add("", f"expected an object with apiVersion, kind, metadata and spec, got {_json_type(obj)}")
        raise ValidationError(errors.items)
    if _check_values(obj, errors):
        raise ValidationError(errors.items, kind=_text(obj.get("kind")), name=_name(obj))
    kind = errors.kind = _check_kind(obj, schemas, errors)
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
                _check_formats(kind, obj, errors)
                _SEMANTIC[kind](obj, spec, errors)
    if errors.items:
        errors.items.sort(key=lambda e: e.line or 0)
        raise ValidationError(errors.items, kind=_text(obj.get("kind")), name=_name(obj))


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
        key: tuple[str, str] = (manifest.obj["kind"], manifest.obj["metadata"]["name"])
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
        errors.add("metadata.name", f"must be a string, got {_json_type(name)} {_show(name)}" + _scalar_hint(name, _NAME))
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
    if not DNS1123_SUBDOMAIN.fullmatch(name):
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
            errors.add(item_path, f"value must be a string, got {_json_type(item)} {_show(item)}"
                       + _scalar_hint(item, _LABEL_VALUE if label_values else None))
        elif label_values:
            problem = _label_value_problem(item)
            if problem is not None:
                errors.add(item_path, problem)


def _label_value_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > 63:
        return f"label value must be at most 63 characters (it has {len(value)})"
    if not LABEL_VALUE.fullmatch(value):
        return (f'"{value}" is not a valid label value: use letters, digits, "-", "_" and ".", '
                "starting and ending with a letter or digit, or leave it empty")
    return None


def qualified_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label or annotation key (``[prefix/]name``), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return f'"{key}": the prefix before "/" must not be empty'
    if prefix:
        if len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix):
            return f'"{key}": the prefix "{prefix}" must be a DNS subdomain (e.g. example.com)'
    if not name:
        return f'"{key}": the name part must not be empty'
    if len(name) > 63:
        return f'"{key}": the name part must be at most 63 characters'
    if not QUALIFIED_NAME.fullmatch(name):
        return (f'"{key}" is not a valid key: use letters, digits, "-", "_" and ".", starting and '
                'ending with a letter or digit, optionally prefixed by a DNS subdomain and "/"')
    return None


# --- structural schema ----------------------------------------------------------------


def _check_schema(value: Any, schema: Schema, path: str, errors: _Errors) -> None:
    """Check ``value`` against a structural schema; unknown fields are errors."""
    fmt = _format_of(errors.kind, path)
    if schema.get(INT_OR_STRING):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            hint = _text_hint(_yaml_text(value), {}, fmt) if isinstance(value, float) else ""
            errors.add(path, f"must be an integer or a string such as 256Mi or 500m, got {_json_type(value)} "
                       f"{_show(value)}{hint}")
        return
    expected = schema.get("type")
    if expected is not None and not _is_type(value, expected):
        errors.add(path, _type_problem(value, expected, schema, fmt))
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
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        errors.add(path, f'"{value}" does not match {schema["pattern"]}: ' + _first_sentence(schema))


@functools.lru_cache(maxsize=64)
def _pattern(pattern: str) -> re.Pattern[str]:
    r"""A CRD ``pattern`` (ECMA 262 flavour) as a Python regex.

    In ECMA 262 (and Go's RE2, which Kubernetes uses) ``$`` matches only at the end of the
    text; in Python it also matches before a final newline, which would let "sha256:...\n"
    through. Unescaped ``$`` outside character classes becomes ``\Z``.
    """
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            out.append(r"\Z")
            continue
        out.append(char)
    return re.compile("".join(out))


def _check_number(value: float, schema: Schema, path: str, errors: _Errors) -> None:
    # Non-finite numbers and integers beyond 64 bits are refused for every field before this.
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
            if not all(isinstance(k, (str, int, float, bool)) for k in key):
                continue  # missing, or of a wrong type that the item's schema reports
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


def _type_problem(value: Any, expected: str, schema: Schema, fmt: _Format | None) -> str:
    article = {"integer": "an integer", "object": "an object", "array": "a list"}.get(expected, f"a {expected}")
    text = f"must be {article}, got {_json_type(value)} {_show(value)}"
    if expected == "string" and isinstance(value, (int, float, bool)):
        text += _text_hint(_yaml_text(value), schema, fmt)
    elif expected in ("integer", "number") and isinstance(value, str):
        text += _number_hint(value, expected, schema)
    elif expected == "integer" and isinstance(value, float):
        text += _number_hint(_yaml_text(value), expected, schema)
    elif expected == "boolean" and isinstance(value, str):
        text += " (remove the quotes)" if value in ("true", "false") else " (use true or false)"
    return text


# --- hints: each suggested value is checked to pass before it is suggested -------------------


def _passes(value: Any, schema: Schema, fmt: _Format | None = None) -> bool:
    scratch = _Errors(None)
    if _check_values(value, scratch):
        return False
    _check_schema(value, schema, "", scratch)
    return not scratch.items and (fmt is None or fmt.check(value) is None)


def _text_hint(text: str, schema: Schema, fmt: _Format | None) -> str:
    """How to write a bare YAML scalar as a string that passes, or "" when no guess fits."""
    for reading in fmt.readings(text) if fmt is not None else (text,):
        if _passes(reading, schema, fmt):
            return f' (quote it: "{reading}")' if reading == text else f' (e.g. "{reading}")'
    if schema.get("enum"):
        return " (one of: " + ", ".join(str(c) for c in schema["enum"]) + ")"
    if fmt is not None and _passes(fmt.example, schema, fmt):
        return f' (e.g. "{fmt.example}")'
    return ""


def _scalar_hint(value: Any, fmt: _Format | None) -> str:
    """The hint for a number or boolean where a string belongs; nothing for lists and objects."""
    if isinstance(value, (int, float, bool)):
        return _text_hint(_yaml_text(value), {}, fmt)
    return f' (e.g. "{fmt.example}")' if fmt is not None else ""


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _number_hint(text: str, expected: str, schema: Schema) -> str:
    """How to write a quoted number so that it passes, or an example that does."""
    number: int | float | None = None
    if len(text) > 40:
        pass  # no number that long passes (and Python will not read an integer of 4300 digits)
    elif expected == "integer" and _INTEGER_TEXT.fullmatch(text):
        number = int(text)
    elif expected == "number" and _NUMBER_TEXT.fullmatch(text):
        number = float(text)
    if number is not None and _passes(number, schema):
        return " (remove the quotes)"
    for example in (schema.get("default"), schema.get("minimum"), schema.get("maximum"), 0):
        if example is not None and _passes(example, schema):
            return f" (e.g. {example})"
    return ""


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


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _name(obj: Obj) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else ""


# --- values every field must hold ---------------------------------------------------------


def _check_values(obj: Obj, errors: _Errors) -> bool:
    """Report what no JSON encoder (nor a Kubernetes client) can write back; True if any.

    The rest of validation runs only on objects that pass: it recurses (too deep a value
    would overflow the stack), formats values into messages (Python will not print an
    integer of over 4300 digits) and hashes them. Iterative, so depth itself is reported.
    Objects reach here from files, request bodies, patches and code alike, so nothing is
    assumed of them.
    """
    found = 0
    stack: list[tuple[Any, str, int]] = [(obj, "", 0)]
    while stack and found < MAX_VALUE_PROBLEMS:
        value, path, depth = stack.pop()
        problem: str | None = None
        if isinstance(value, dict | list) and depth >= MAX_DEPTH:
            problem = f"nested more than {MAX_DEPTH} levels deep: flatten the structure"
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if not isinstance(key, str):
                    errors.add(path, f"keys must be strings, got {_json_type(key)}")
                    found += 1
                elif _text_problem(key) is not None:
                    errors.add(path, f"a key {_text_problem(key)}")
                    found += 1
                else:
                    stack.append((item, join_key(path, key), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, join_index(path, i), depth + 1) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, str):
            problem = _text_problem(value)
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if not INT64_RANGE[0] <= value <= INT64_RANGE[1]:
                digits = len(str(abs(value))) if abs(value) < 10**100 else "over 100"
                problem = (f"an integer of {digits} digits is outside the 64-bit range "
                           f"({INT64_RANGE[0]} to {INT64_RANGE[1]})")
        elif isinstance(value, float):
            if not math.isfinite(value):
                problem = f"must be a finite number, got {value}"
        else:
            problem = f"a {type(value).__name__} is not a JSON value"
        if problem is not None:
            errors.add(path, problem)
            found += 1
    return found > 0


def _text_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"contains a lone UTF-16 surrogate (U+{ord(text[error.start]):04X}), which is not text"
    return None


# --- formats of string fields -----------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    """What a string field means beyond its schema: how to check it, and what to suggest.

    Every suggestion in a message is checked against the same ``check`` before it is made,
    so following a hint never leads to the next error.
    """

    check: Callable[[Any], str | None]  # why a value is wrong, or None
    example: str  # a value that passes, offered when nothing closer to the input does
    readings: Callable[[str], tuple[str, ...]] = lambda text: (text,)  # what a bare value meant
    integers: bool = False  # an int-or-string field: integers are checked too


def _version_problem(value: Any) -> str | None:
    try:
        Version.parse(value)
    except ValueError as exc:
        return str(exc)
    return None


def _version_readings(text: str) -> tuple[str, ...]:
    # version: 1 or 1.2 is a number in YAML; as a version it means 1.0.0 or 1.2.0.
    parts = text.split(".")
    return (text, ".".join(parts + ["0"] * (3 - len(parts)))) if len(parts) < 3 else (text,)


def _constraint_problem(value: Any) -> str | None:
    try:
        Constraint.parse(value)
    except ValueError as exc:
        return str(exc)
    return None


def _duration_problem(value: Any) -> str | None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        return str(exc)
    if seconds <= 0:
        return f'"{value}" must be a positive duration (examples: {DURATION_EXAMPLES})'
    return None


def _quantity_problem(parse: Callable[[Any], int], example: str) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        try:
            amount = parse(value)
        except ValueError as exc:
            return str(exc)
        return f'"{value}" must be more than zero (e.g. "{example}")' if amount <= 0 else None
    return problem


def _name_problem(value: Any) -> str | None:
    return dns1123_subdomain_problem(value) if isinstance(value, str) else "must be a string"


_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})")
_NETWORK_EXAMPLES = "a CIDR, an address or host:port (examples: 10.0.0.0/8, fd00::/8, 192.168.1.7, example.com:443)"


def network_problem(text: str) -> str | None:
    """Why ``text`` is not an allowed network (a CIDR, an address or host:port), or None."""
    if "/" in text:
        try:
            ipaddress.ip_network(text, strict=True)
        except ValueError:
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                return f'"{text}" is not a CIDR: use {_NETWORK_EXAMPLES}'
            return f'"{text}" has bits set after the prefix: the network is "{network}"'
        return None
    m = _HOST_PORT.fullmatch(text)
    if m is None:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return f'"{text}" is not a network: use {_NETWORK_EXAMPLES}'
        return None
    host, port = m["host"], int(m["port"])
    if not 1 <= port <= 65535:
        return f'"{text}": port {port} is out of range (1 to 65535)'
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    except ValueError:
        if host.startswith("[") or dns1123_subdomain_problem(host.lower()) is not None:
            return f'"{text}": "{host}" is neither an address nor a host name: use {_NETWORK_EXAMPLES}'
    return None


def _network_format_problem(value: Any) -> str | None:
    return network_problem(value) if isinstance(value, str) else "must be a string"


_VERSION = _Format(_version_problem, "1.0.0", _version_readings)
_CONSTRAINT = _Format(_constraint_problem, "^1.0")
_DURATION = _Format(_duration_problem, "10s", lambda text: (text, text + "s"))
_MEMORY = _Format(_quantity_problem(parse_memory_bytes, "256Mi"), "256Mi", integers=True)
_CPU = _Format(_quantity_problem(parse_cpu_millis, "500m"), "500m", integers=True)
_NAME = _Format(_name_problem, "codec-flac")
_NETWORK = _Format(_network_format_problem, "10.0.0.0/8")
_LABEL_VALUE = _Format(_label_value_problem, "v1")

# Formats by field path, "[]" standing for every item of a list.
_FORMATS: dict[str, dict[str, _Format]] = {
    "PluginManifest": {
        "spec.version": _VERSION,
        "spec.dependencies[].name": _NAME,
        "spec.dependencies[].version": _CONSTRAINT,
        **{"spec." + dotted: _DURATION for dotted in DURATION_FIELDS["PluginManifest"]},
        **{"spec." + dotted: _MEMORY for dotted in MEMORY_FIELDS},
        **{"spec." + dotted: _CPU for dotted in CPU_FIELDS},
        "spec.security.allowedNetworks[]": _NETWORK,
    },
    "AudioSink": {},
    "GitSource": {
        **{"spec." + dotted: _DURATION for dotted in DURATION_FIELDS["GitSource"]},
        "spec.dependsOn[].name": _NAME,
    },
}
_INDEX = re.compile(r"\[[0-9]+\]")


def _format_of(kind: str | None, path: str) -> _Format | None:
    if path == "metadata.name":
        return _NAME
    return _FORMATS.get(kind or "", {}).get(_INDEX.sub("[]", path))


def _values_at(value: Any, pattern: str, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every value the pattern (``spec.dependencies[].version``) names."""
    if not pattern:
        yield path, value
        return
    head, _, rest = pattern.partition(".")
    listed = head.endswith("[]")
    key = head.removesuffix("[]")
    if not isinstance(value, dict) or value.get(key) is None:
        return
    child, child_path = value[key], join_key(path, key)
    if not listed:
        yield from _values_at(child, rest, child_path)
    elif isinstance(child, list):
        for i, item in enumerate(child):
            yield from _values_at(item, rest, join_index(child_path, i))


def _check_formats(kind: str, obj: Obj, errors: _Errors) -> None:
    """Each formatted field that has the right type (type errors are reported already)."""
    for pattern, fmt in _FORMATS[kind].items():
        for path, value in _values_at(obj, pattern):
            if not (isinstance(value, str) or (fmt.integers and type(value) is int)):
                continue
            problem = fmt.check(value)
            if problem is not None:
                errors.add(path, problem)


# --- semantic checks ------------------------------------------------------------------


def _get(spec: dict[str, Any], dotted: str) -> Any:
    value: Any = spec
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _check_plugin(obj: Obj, spec: dict[str, Any], errors: _Errors) -> None:
    name = _name(obj)
    dependencies = spec.get("dependencies")
    if isinstance(dependencies, list):
        for i, dep in enumerate(dependencies):
            if isinstance(dep, dict) and name and dep.get("name") == name:
                errors.add(join_index("spec.dependencies", i) + ".name",
                           f'plugin "{name}" lists itself as a dependency: remove this entry')

    initial = _seconds(_get(spec, "restartPolicy.backoff.initial"))
    longest = _seconds(_get(spec, "restartPolicy.backoff.max"))
    if initial is not None and longest is not None and longest < initial:
        errors.add("spec.restartPolicy.backoff.max",
                   f"must not be shorter than backoff.initial ({_get(spec, 'restartPolicy.backoff.initial')})")

    env = spec.get("env")
    if isinstance(env, dict):
        for key in env:
            if not ENV_NAME.fullmatch(key):
                errors.add(join_key("spec.env", key), f'"{key}" is not an environment variable name '
                           "(letters, digits and _, not starting with a digit)")

    paths = _get(spec, "security.allowedPaths")
    if isinstance(paths, list):
        for i, entry in enumerate(paths):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str) and not entry["path"].startswith("/"):
                errors.add(join_index("spec.security.allowedPaths", i) + ".path",
                           f'"{entry["path"]}" must be an absolute path (e.g. /music)')

    for error in config_problems(spec.get("configSchema"), spec.get("config")):
        errors.add(error.path, error.message)


def _seconds(value: Any) -> float | None:
    """A valid duration in seconds, or None (an invalid one is reported by its format)."""
    if not isinstance(value, str) or _duration_problem(value) is not None:
        return None
    return parse_duration(value)


# --- spec.config against spec.configSchema ----------------------------------------------------

# Keywords of draft 2020-12 whose values are schemas, maps of schemas, or lists of schemas.
_SUBSCHEMA = ("not", "if", "then", "else", "items", "additionalProperties", "additionalItems", "contains",
              "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_REFERENCES = ("$ref", "$dynamicRef")


def config_problems(config_schema: Any, config: Any) -> list[FieldError]:
    """Every problem of ``spec.configSchema`` and of ``spec.config`` against it, with field paths.

    What admission and the plugin controller both run. A schema may refer only inside itself
    (``#...``): anything else would have mfx fetch a URL or read a file on behalf of whoever
    may write manifests, so it is refused, and nothing is ever retrieved.
    """
    if not isinstance(config_schema, dict):
        return []
    problems = [FieldError(path=path, message=message) for path, message in _outside_references(config_schema)]
    if problems:
        return problems
    problem = _schema_problem(json.dumps(config_schema, sort_keys=True))
    if problem is not None:
        where, message = problem
        return [FieldError(path=_json_path("spec.configSchema", where),
                           message=f"not a valid JSON Schema (draft 2020-12): {message}")]
    validator = bounded_validator(config_schema, registry=_NO_RETRIEVAL)
    try:
        found = sorted(validator.iter_errors({} if config is None else config),
                       key=lambda e: list(map(str, e.absolute_path)))
    except PatternTooSlow as slow:
        return [FieldError(path="spec.config", message=(
            f"matching the pattern {slow.pattern!r} of spec.configSchema took longer than "
            f"{MATCH_BUDGET_SECONDS * 1000:.0f} ms (it backtracks without bound on this value); "
            "simplify the pattern, e.g. without a repeated group whose branches overlap, such as (a|aa)+"))]
    except referencing.exceptions.Unresolvable as exc:
        ref = _unresolved(exc)
        return [FieldError(path=_reference_path(config_schema, ref),
                           message=f'the reference "{ref}" points at nothing in the schema')]
    except RecursionError:
        return [FieldError(path="spec.configSchema", message="the schema refers to itself without end")]
    return [FieldError(path=_json_path("spec.config", e.absolute_path), message=f"{e.message} (see spec.configSchema)")
            for e in found]


def _refuse_retrieval(uri: str) -> referencing.Resource[Any]:
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]


# Immutable: every validator may share it.
_NO_RETRIEVAL: referencing.Registry[Any] = referencing.Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


def _references(schema: Any, path: str = "spec.configSchema") -> Iterator[tuple[str, str]]:
    """(field path, reference) of every ``$ref`` and ``$dynamicRef`` in a schema."""
    if not isinstance(schema, dict):
        return
    for keyword in _REFERENCES:
        if isinstance(schema.get(keyword), str):
            yield join_key(path, keyword), schema[keyword]
    for keyword in _SUBSCHEMA:
        yield from _references(schema.get(keyword), join_key(path, keyword))
    for keyword in _SUBSCHEMA_MAPS:
        children = schema.get(keyword)
        if isinstance(children, dict):
            for name, child in children.items():
                yield from _references(child, join_key(join_key(path, keyword), name))
    for keyword in _SUBSCHEMA_LISTS:
        children = schema.get(keyword)
        if isinstance(children, list):
            for i, child in enumerate(children):
                yield from _references(child, join_index(join_key(path, keyword), i))


def _outside_references(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [(path, f'"{ref}" refers outside the schema: only references within it ("#/$defs/name") are allowed')
            for path, ref in _references(schema) if not ref.startswith("#")]


def _unresolved(exc: referencing.exceptions.Unresolvable) -> str:
    """The reference as written: a missing anchor is reported by its name, a pointer as is."""
    anchor = getattr(exc, "anchor", None)  # NoSuchAnchor (jsonschema's wrapper passes it on)
    return f"#{anchor}" if isinstance(anchor, str) else "#" + str(exc.ref).lstrip("#")


def _reference_path(schema: dict[str, Any], ref: str) -> str:
    for path, text in _references(schema):
        if text.lstrip("#") == ref.lstrip("#"):
            return path
    return "spec.configSchema"


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
