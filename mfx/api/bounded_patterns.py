"""JSON Schema validation whose regular expressions cannot freeze the caller.

A user's ``spec.configSchema`` may hold any ``pattern`` (or ``patternProperties`` key), and
Python's ``re`` backtracks without bound: ``(a+)+$`` against thirty ``a`` and a ``!`` runs
for minutes while holding the event loop. ``bounded_validator`` matches with the ``regex``
module instead, whose matches take a timeout, under one time budget for the whole
validation. When the budget runs out, the value is refused with a message that names the
pattern, so the author can simplify it; the daemon goes on serving.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import jsonschema.validators
import regex
from jsonschema.exceptions import ValidationError as SchemaValidationError

# All pattern matches of one validation share this many seconds.
MATCH_BUDGET_SECONDS = 0.25


class PatternTooSlow(Exception):
    def __init__(self, pattern: str) -> None:
        super().__init__(pattern)
        self.pattern = pattern


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def search(self, pattern: str, text: str) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise PatternTooSlow(pattern)
        try:
            return regex.search(pattern, text, timeout=left) is not None
        except TimeoutError:
            raise PatternTooSlow(pattern) from None
        except regex.error:
            return False  # the schema check reports a pattern that does not compile


def bounded_validator(schema: dict[str, Any], *, registry: Any,
                      budget_seconds: float = MATCH_BUDGET_SECONDS) -> Any:
    """A draft 2020-12 validator for ``schema`` whose pattern matches share a time budget;
    ``iter_errors`` raises ``PatternTooSlow`` when a match would exceed it."""
    budget = _Budget(budget_seconds)

    def pattern(validator: Any, patrn: str, instance: Any, _schema: Any) -> Iterator[SchemaValidationError]:
        if validator.is_type(instance, "string") and not budget.search(patrn, instance):
            yield SchemaValidationError(f"{instance!r} does not match {patrn!r}")

    def pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any,
                           _schema: Any) -> Iterator[SchemaValidationError]:
        if not validator.is_type(instance, "object"):
            return
        for patrn, subschema in patterns.items():
            for key, value in instance.items():
                if budget.search(patrn, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=patrn)

    def additional_properties(validator: Any, additional: Any, instance: Any,
                              schema: dict[str, Any]) -> Iterator[SchemaValidationError]:
        if not validator.is_type(instance, "object"):
            return
        known = schema.get("properties", {})
        patterns = list(schema.get("patternProperties", {}))
        extras = [key for key in instance
                  if key not in known and not any(budget.search(p, key) for p in patterns)]
        if validator.is_type(additional, "object"):
            for extra in extras:
                yield from validator.descend(instance[extra], additional, path=extra)
        elif not additional and extras:
            names = ", ".join(repr(each) for each in sorted(extras))
            if patterns:
                yield SchemaValidationError(
                    f"{names} {'does' if len(extras) == 1 else 'do'} not match any of the regexes: "
                    + ", ".join(repr(p) for p in sorted(patterns)))
            else:
                yield SchemaValidationError(f"Additional properties are not allowed ({names} unexpected)")

    base = jsonschema.Draft202012Validator
    cls = jsonschema.validators.extend(base, {
        "pattern": pattern, "patternProperties": pattern_properties,
        "additionalProperties": additional_properties,
    })
    return cls(schema, registry=registry, format_checker=base.FORMAT_CHECKER)
