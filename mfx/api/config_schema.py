"""A plugin's ``spec.config`` against its ``spec.configSchema`` (JSON Schema, draft 2020-12)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
from jsonschema.exceptions import SchemaError

from mfx.api.bounded_patterns import MATCH_BUDGET_SECONDS, PatternTooSlow, bounded_validator
from mfx.api.field_paths import join_index, join_key
from mfx.errors import FieldError

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
