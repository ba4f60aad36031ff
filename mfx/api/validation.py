"""Validation of user objects: what ``mfx apply``, the daemon and GitOps all run.

``validate`` checks one object and reports every problem at once: the values JSON can hold
(``json_values``), the kind and the metadata (``metadata_checks``), the spec against the CRD's
``openAPIV3Schema`` with unknown fields refused and named (``structural_schema``), and the
meaning of the values: semantic versions, version constraints, durations, quantities
(``field_formats``), the JSON Schema of ``config`` (``config_schema``) and the rules of each
kind (``kind_checks``). ``validate_all`` does it for a set of documents, all or nothing.

``status`` in user input is ignored, as the API server ignores it on the main resource.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mfx.api.config_checks import config_problems
from mfx.api.field_formats import check_formats, network_problem
from mfx.api.field_paths import join_key
from mfx.api.field_problems import FieldProblems
from mfx.api.json_values import json_type, json_value_problems
from mfx.api.kind_checks import KIND_CHECKS
from mfx.api.metadata_checks import SERVER_METADATA_FIELDS, check_kind, check_metadata
from mfx.api.names import DNS1123_LABEL, dns1123_subdomain_problem, qualified_key_problem
from mfx.api.objects import Obj, name_of
from mfx.api.schema import Schemas, did_you_mean
from mfx.api.structural_schema import check_schema, first_sentence
from mfx.api.yaml_loader import MAX_FILE_BYTES, Manifest, decode_manifest, load_manifests
from mfx.errors import FieldError, ValidationError

__all__ = [
    "MAX_FILE_BYTES", "Manifest", "ValidationError", "decode_manifest", "load_manifests", "check_all", "validate", "validate_all",
    "validate_object", "dns1123_subdomain_problem", "qualified_key_problem", "config_problems",
    "network_problem", "DNS1123_LABEL", "SERVER_METADATA_FIELDS",
]

TOP_LEVEL_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")
_TOP_LEVEL = frozenset(TOP_LEVEL_FIELDS)
# Problems of this kind are listed up to here; a value with thousands of them gets the gist.
MAX_VALUE_PROBLEMS = 20


def validate(obj: Obj, *, schemas: Schemas, source: Manifest | None = None, values_checked: bool = False) -> None:
    """Raise ``ValidationError`` listing every problem of ``obj``; return if it is valid.

    ``values_checked``: ``obj`` holds only what JSON text read by ``load_body`` can hold (its
    reading refused the rest), so the values JSON cannot store need no second look."""
    errors = FieldProblems(source=source)
    if not isinstance(obj, dict):
        errors.add("", f"expected an object with apiVersion, kind, metadata and spec, got {json_type(obj)}")
        raise ValidationError(errors.items)
    for path, problem in () if values_checked else json_value_problems(obj, limit=MAX_VALUE_PROBLEMS):
        errors.add(path, problem)
    if errors.items:
        raise ValidationError(errors.items, kind=_text(obj.get("kind")), name=name_of(obj))
    kind = errors.kind = check_kind(obj, schemas, errors)
    if not _TOP_LEVEL.issuperset(obj):
        for key in obj:
            if key not in _TOP_LEVEL:
                errors.add(join_key("", key), f'unknown field "{key}"{did_you_mean(key, list(TOP_LEVEL_FIELDS))} '
                           f"(top-level fields: {', '.join(TOP_LEVEL_FIELDS)})")
    check_metadata(obj.get("metadata"), errors)
    if kind is not None:
        spec = obj.get("spec")
        if spec is None:
            schema = schemas.openapi(kind)
            if "spec" in (schema.get("required") or ()):
                errors.add("spec", "required field is missing: " + first_sentence(schema["properties"]["spec"]))
        else:
            if not schemas.spec_check(kind)(spec):  # the usual valid spec costs no walk that names paths
                check_schema(spec, schemas.openapi(kind)["properties"]["spec"], "spec", errors)
            if isinstance(spec, dict):
                check_formats(kind, obj, errors)
                KIND_CHECKS[kind](obj, spec, errors)
    if errors.items:
        errors.items.sort(key=lambda e: e.line or 0)
        raise ValidationError(errors.items, kind=_text(obj.get("kind")), name=name_of(obj))


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
    return [schemas.apply_defaults({k: v for k, v in manifest.obj.items() if k != "status"})
            for manifest in check_all(manifests, schemas)]


def check_all(manifests: Iterable[Manifest], schemas: Schemas) -> list[Manifest]:
    """``validate_all`` without the defaults, for a caller that sends the documents as written
    (the daemon defaults them): the valid manifests, only if all are valid."""
    problems: list[FieldError] = []
    valid: list[Manifest] = []
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
        valid.append(manifest)
    if problems:
        raise ValidationError(problems)
    return valid


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
