"""What every object has whatever its kind: apiVersion, kind and metadata, checked as Kubernetes does."""

from __future__ import annotations

import functools
from typing import Any

from mfx.api.field_formats import LABEL_VALUE_FORMAT, NAME_FORMAT
from mfx.api.field_paths import join_key
from mfx.api.field_problems import FieldProblems
from mfx.api.json_values import json_type, show_value
from mfx.api.names import dns1123_subdomain_problem, label_value_problem, qualified_key_problem
from mfx.api.objects import Obj
from mfx.api.schema import Schemas, did_you_mean
from mfx.api.structural_schema import scalar_hint

MAX_ANNOTATIONS_BYTES = 256 * 1024
METADATA_FIELDS = ("name", "labels", "annotations")
# Set by the server; accepted so that `get -o yaml` output can be re-applied, then ignored.
SERVER_METADATA_FIELDS = (
    "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
    "finalizers", "deletionTimestamp",
)

_KNOWN_FIELDS = frozenset((*METADATA_FIELDS, *SERVER_METADATA_FIELDS))


def check_kind(obj: Obj, schemas: Schemas, errors: FieldProblems) -> str | None:
    """The kind of ``obj`` when it is one ``schemas`` serve (else None), reporting what is wrong."""
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    known = ", ".join(schemas.kinds) if not isinstance(kind, str) or not schemas.has(kind) else ""
    if kind is None:
        errors.add("kind", f"required field is missing (known kinds: {known})")
    elif not isinstance(kind, str):
        errors.add("kind", f"must be a string, got {json_type(kind)} (known kinds: {known})")
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


def check_metadata(metadata: Any, errors: FieldProblems) -> None:
    """Report what is wrong with ``metadata``: its name, labels, annotations and unknown fields."""
    if metadata is None:
        errors.add("metadata.name", "required field is missing: every object needs metadata.name")
        return
    if not isinstance(metadata, dict):
        errors.add("metadata", f"must be an object with name, labels and annotations, got {json_type(metadata)}")
        return
    if not _KNOWN_FIELDS.issuperset(metadata):  # only known fields, as usual: nothing to report
        for key in metadata:
            if key in _KNOWN_FIELDS:
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
        errors.add("metadata.name", f"must be a string, got {json_type(name)} {show_value(name)}" + scalar_hint(name, NAME_FORMAT))
    else:
        problem = dns1123_subdomain_problem(name)
        if problem:
            errors.add("metadata.name", problem)
    _check_string_map(metadata.get("labels"), "metadata.labels", errors, label_values=True)
    annotations = metadata.get("annotations")
    _check_string_map(annotations, "metadata.annotations", errors, label_values=False)
    if isinstance(annotations, dict):
        size = sum(map(len, map(str, annotations))) + sum(map(len, map(str, annotations.values())))
        if size > MAX_ANNOTATIONS_BYTES:
            errors.add("metadata.annotations", f"annotations total {size} bytes; the limit is {MAX_ANNOTATIONS_BYTES}")


def _check_string_map(value: Any, path: str, errors: FieldProblems, *, label_values: bool) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.add(path, f"must be a map of string keys to string values, got {json_type(value)}")
        return
    for key, item in value.items():
        problem = _key_problem(key)
        if problem:
            errors.add(join_key(path, key), problem)
        if not isinstance(item, str):
            errors.add(join_key(path, key), f"value must be a string, got {json_type(item)} {show_value(item)}"
                       + scalar_hint(item, LABEL_VALUE_FORMAT if label_values else None))
        elif label_values:
            problem = _label_value_problem(item)
            if problem is not None:
                errors.add(join_key(path, key), problem)


# The same few keys and label values come with object after object (``app.kubernetes.io/name``,
# the last-applied annotation ...): each is checked once, not once per object.
_key_problem = functools.lru_cache(maxsize=1024)(qualified_key_problem)
_label_value_problem = functools.lru_cache(maxsize=1024)(label_value_problem)
