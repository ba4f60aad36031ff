"""The compiled spec check validation asks first says yes exactly when ``check_schema``
finds nothing: a yes never lets a problem through, and a valid spec is never walked twice."""

from __future__ import annotations

from typing import Any

from hypothesis import given

from mfx.api.field_problems import FieldProblems
from mfx.api.schema import load_schemas
from mfx.api.structural_schema import check_schema
from tests.test_validation_fuzz import BASES, FUZZ, mutated

SCHEMAS = load_schemas()


def schema_problems(kind: str, spec: Any) -> list[str]:
    errors = FieldProblems(kind=kind)
    check_schema(spec, SCHEMAS.openapi(kind)["properties"]["spec"], "spec", errors)
    return [f"{e.path}: {e.message}" for e in errors.items]


def test_the_specs_of_valid_objects_pass_the_compiled_check() -> None:
    for base in BASES:
        assert schema_problems(base["kind"], base["spec"]) == []
        assert SCHEMAS.spec_check(base["kind"])(base["spec"])


@FUZZ
@given(mutated())
def test_the_compiled_check_passes_a_spec_only_when_check_schema_finds_nothing(obj: Any) -> None:
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind not in SCHEMAS.kinds or obj.get("spec") is None:
        return
    spec = obj["spec"]
    assert SCHEMAS.spec_check(kind)(spec) == (schema_problems(kind, spec) == [])
