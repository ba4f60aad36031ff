"""Schema defaults, filled in as the API server fills them, from a plan compiled once per kind.

Walking the schema for every object looked at every property the schema names, at every
level, on every write; the plan keeps, per level, only the defaults, the nullable fields
and the sub-plans, so filling an object costs what the object holds. A default that is a map
or a list is kept already filled with the defaults inside it (as JSON, copied by decoding),
so a field the object leaves out costs one copy, not a walk of its subtree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

Schema = dict[str, Any]
PRESERVE = "x-kubernetes-preserve-unknown-fields"


@dataclass(frozen=True)
class DefaultsPlan:
    preserve_only: bool  # unknown fields kept as they are, none named: nothing to fill below
    props: dict[str, DefaultsPlan]
    defaults: tuple[tuple[str, Any], ...]  # scalars as they are; maps and lists as filled JSON
    nullable: frozenset[str]
    extra: DefaultsPlan | None  # additionalProperties
    items: DefaultsPlan | None
    # The sub-plans of ``props`` that have anything to do (a default or a null to prune,
    # somewhere below): a field without one is not walked at all.
    active: dict[str, DefaultsPlan]

    @property
    def inert(self) -> bool:
        return not self.defaults and not self.props and self.extra is None and self.items is None


def compile_defaults(schema: Schema) -> DefaultsPlan:
    props: dict[str, Schema] = schema.get("properties") or {}
    extra, items = schema.get("additionalProperties"), schema.get("items")
    plans = {key: compile_defaults(sub) for key, sub in props.items()}
    return DefaultsPlan(
        preserve_only=bool(schema.get(PRESERVE)) and not props,
        props=plans,
        defaults=tuple((key, _filled(sub["default"], plans[key])) for key, sub in props.items() if "default" in sub),
        nullable=frozenset(key for key, sub in props.items() if sub.get("nullable")),
        extra=compile_defaults(extra) if isinstance(extra, dict) else None,
        items=compile_defaults(items) if isinstance(items, dict) else None,
        active={key: plan for key, plan in plans.items() if not plan.inert and not plan.preserve_only},
    )


@dataclass(frozen=True)
class _Filled:
    """A map or list default, filled with its own defaults, as JSON."""

    json: bytes


def _filled(default: Any, plan: DefaultsPlan) -> Any:
    if not isinstance(default, dict | list):
        return default  # scalars are immutable: shared as they are
    value = orjson.loads(orjson.dumps(default))
    fill_defaults(value, plan)
    return _Filled(orjson.dumps(value))


def fill_defaults(value: Any, plan: DefaultsPlan) -> None:
    """Defaults where a field is missing (a null counts as missing and is pruned), in place,
    then the same inside every field, so a defaulted ``{}`` gets its own defaults too."""
    if isinstance(value, dict):
        if plan.preserve_only:
            return
        props = plan.props
        filled: list[str] = []
        if props:
            if None in value.values():
                for key in [k for k, v in value.items() if v is None and k in props and k not in plan.nullable]:
                    del value[key]
            for key, default in plan.defaults:
                if key not in value:
                    if type(default) is _Filled:
                        value[key] = orjson.loads(default.json)
                        filled.append(key)
                    else:
                        value[key] = default
        extra = plan.extra
        if extra is None:  # only the named fields have plans: walk those present
            for key, sub in plan.active.items():
                item = value.get(key)
                if isinstance(item, (dict, list)) and key not in filled:
                    fill_defaults(item, sub)
            return
        for key, item in value.items():
            sub = props.get(key, extra)
            if sub is not None and isinstance(item, (dict, list)) and key not in filled:
                fill_defaults(item, sub)
    elif isinstance(value, list) and plan.items is not None:
        for item in value:
            fill_defaults(item, plan.items)
