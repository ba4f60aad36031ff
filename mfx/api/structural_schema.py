"""A value against a CRD's structural schema, as the API server checks it, with hints that pass.

Unknown fields are errors, named with the fields that exist. A message that suggests a value
(quote it, remove the quotes, an example) suggests only one that passes the same checks.
"""

from __future__ import annotations

import re
from typing import Any

from mfx.api.field_formats import Format, format_of
from mfx.api.field_paths import join_index, join_key
from mfx.api.field_problems import FieldProblems
from mfx.api.json_values import json_type, json_value_problems, show_value
from mfx.api.schema import INT_OR_STRING, PRESERVE, Schema, did_you_mean
from mfx.api.schema_check import ecma_pattern


def check_schema(value: Any, schema: Schema, path: str, errors: FieldProblems) -> None:
    """Check ``value`` at ``path`` against a structural schema; unknown fields are errors."""
    # The field's format only words the hints of a problem: looked up when there is one.
    if schema.get(INT_OR_STRING):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            hint = _text_hint(_yaml_text(value), {}, format_of(errors.kind, path)) if isinstance(value, float) else ""
            errors.add(path, f"must be an integer or a string such as 256Mi or 500m, got {json_type(value)} "
                       f"{show_value(value)}{hint}")
        return
    expected = schema.get("type")
    if expected is not None and not _is_type(value, expected):
        errors.add(path, _type_problem(value, expected, schema, format_of(errors.kind, path)))
        return
    if "enum" in schema and value not in schema["enum"]:
        choices = [str(c) for c in schema["enum"]]
        errors.add(path, f"{show_value(value)} is not one of: {', '.join(choices)}"
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


def _check_string(value: str, schema: Schema, path: str, errors: FieldProblems) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.add(path, f"must be at least {schema['minLength']} characters long")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.add(path, f"must be at most {schema['maxLength']} characters long (it has {len(value)})")
    if "pattern" in schema and not ecma_pattern(schema["pattern"]).search(value):
        errors.add(path, f'"{value}" does not match {schema["pattern"]}: ' + first_sentence(schema))


def _check_number(value: float, schema: Schema, path: str, errors: FieldProblems) -> None:
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


def _check_array(value: list[Any], schema: Schema, path: str, errors: FieldProblems) -> None:
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
            check_schema(item, items, join_index(path, i), errors)
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
                shown = ", ".join(f"{k} {show_value(item.get(k))}" for k in keys)
                errors.add(join_index(path, i), f"duplicate entry with {shown} (also at {path}[{seen[key]}])")
            else:
                seen[key] = i


def _check_object(value: dict[str, Any], schema: Schema, path: str, errors: FieldProblems) -> None:
    if schema.get(PRESERVE) and not schema.get("properties"):
        return
    props: dict[str, Schema] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        child = join_key(path, key)
        if key in props:
            if item is not None:
                check_schema(item, props[key], child, errors)
        elif isinstance(extra, dict):
            if item is None:
                errors.add(child, "value must not be null")
            else:
                check_schema(item, extra, child, errors)
        elif not schema.get(PRESERVE):
            fields = ", ".join(props) or "none"
            errors.add(child, f'unknown field "{key}"{did_you_mean(key, list(props))} (fields: {fields})')
    for key in schema.get("required") or ():
        if value.get(key) is None:
            errors.add(join_key(path, key), "required field is missing: " + first_sentence(props.get(key, {})))


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


def _type_problem(value: Any, expected: str, schema: Schema, fmt: Format | None) -> str:
    article = {"integer": "an integer", "object": "an object", "array": "a list"}.get(expected, f"a {expected}")
    text = f"must be {article}, got {json_type(value)} {show_value(value)}"
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


def _passes(value: Any, schema: Schema, fmt: Format | None = None) -> bool:
    if any(json_value_problems(value, limit=1)):
        return False
    scratch = FieldProblems()
    check_schema(value, schema, "", scratch)
    return not scratch.items and (fmt is None or fmt.check(value) is None)


def _text_hint(text: str, schema: Schema, fmt: Format | None) -> str:
    """How to write a bare YAML scalar as a string that passes, or "" when no guess fits."""
    for reading in fmt.readings(text) if fmt is not None else (text,):
        if _passes(reading, schema, fmt):
            return f' (quote it: "{reading}")' if reading == text else f' (e.g. "{reading}")'
    if schema.get("enum"):
        return " (one of: " + ", ".join(str(c) for c in schema["enum"]) + ")"
    if fmt is not None and _passes(fmt.example, schema, fmt):
        return f' (e.g. "{fmt.example}")'
    return ""


def scalar_hint(value: Any, fmt: Format | None) -> str:
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


def first_sentence(schema: Schema) -> str:
    """The description of a field on one line, for messages about it."""
    text = " ".join(str(schema.get("description") or "").split())
    return text or "see mfx explain"
