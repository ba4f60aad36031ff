"""Schema defaults, filled in as the API server fills them, from a plan compiled once per kind.

Walking the schema for every object looked at every property the schema names, at every
level, on every write; the plan keeps, per level, only the defaults, the nullable fields
and the sub-plans, so filling an object costs what the object holds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]
PRESERVE = "x-kubernetes-preserve-unknown-fields"


@dataclass(frozen=True)
class DefaultsPlan:
    preserve_only: bool  # unknown fields kept as they are, none named: nothing to fill below
    props: dict[str, DefaultsPlan]
    defaults: tuple[tuple[str, Any], ...]
    nullable: frozenset[str]
    extra: DefaultsPlan | None  # additionalProperties
    items: DefaultsPlan | None


def compile_defaults(schema: Schema) -> DefaultsPlan:
    props: dict[str, Schema] = schema.get("properties") or {}
    extra, items = schema.get("additionalProperties"), schema.get("items")
    return DefaultsPlan(
        preserve_only=bool(schema.get(PRESERVE)) and not props,
        props={key: compile_defaults(sub) for key, sub in props.items()},
        defaults=tuple((key, sub["default"]) for key, sub in props.items() if "default" in sub),
        nullable=frozenset(key for key, sub in props.items() if sub.get("nullable")),
        extra=compile_defaults(extra) if isinstance(extra, dict) else None,
        items=compile_defaults(items) if isinstance(items, dict) else None,
    )


def _copy(default: dict[str, Any] | list[Any]) -> Any:
    if not default:
        return {} if isinstance(default, dict) else []
    return copy.deepcopy(default)


def fill_defaults(value: Any, plan: DefaultsPlan) -> None:
    """Defaults where a field is missing (a null counts as missing and is pruned), in place,
    then the same inside every field, so a defaulted ``{}`` gets its own defaults too."""
    if isinstance(value, dict):
        if plan.preserve_only:
            return
        props = plan.props
        if props:
            for key in [k for k, v in value.items() if v is None and k in props and k not in plan.nullable]:
                del value[key]
            for key, default in plan.defaults:
                if key not in value:
                    # Scalars are immutable: only a map or list default needs a copy of its own.
                    value[key] = _copy(default) if isinstance(default, dict | list) else default
        extra = plan.extra
        for key, item in value.items():
            sub = props.get(key, extra)
            if sub is not None and isinstance(item, dict | list):
                fill_defaults(item, sub)
    elif isinstance(value, list) and plan.items is not None:
        for item in value:
            fill_defaults(item, plan.items)
