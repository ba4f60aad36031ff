"""Schema defaults, filled in as the API server fills them, from a plan compiled once per kind.

Walking the schema for every object looked at every property the schema names, at every
level, on every write; the plan keeps, per level, only the defaults, the nullable fields
and the sub-plans, so filling an object costs what the object holds. A default that is a map
or a list is kept already filled with the defaults inside it (as JSON, copied by decoding),
so a field the object leaves out costs one copy, not a walk of its subtree.

Objects written together mostly have the same fields at each level (a directory of
manifests written from one template). What filling does to a map depends only on which
fields it has, so a plan remembers it per set of fields met (a ``Shape``): every default
the map lacks, as one JSON map to decode and add, and the fields to walk below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    # What filling does to a map with these fields, in this order (``_shape``); at most
    # ``MAX_SHAPES`` are kept, a map of any other shape is filled as the first of its kind is.
    shapes: dict[tuple[str, ...], Shape] = field(default_factory=dict, compare=False, repr=False)

    @property
    def inert(self) -> bool:
        return not self.defaults and not self.props and self.extra is None and self.items is None


@dataclass(frozen=True)
class Shape:
    """Filling a map with a given set of fields: the defaults it lacks, and where to go on."""

    defaults: bytes | None  # the missing defaults as one JSON map, in the plan's order (None: none)
    below: tuple[tuple[str, DefaultsPlan], ...]  # fields it has whose sub-plan has work to do


MAX_SHAPES = 256


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


def _shape(plan: DefaultsPlan, keys: tuple[str, ...]) -> Shape:
    """What filling does to a map of ``keys`` (nulls pruned already): see ``Shape``."""
    missing = [(key, default) for key, default in plan.defaults if key not in keys]
    parts = [orjson.dumps(key) + b":" + (default.json if type(default) is _Filled else orjson.dumps(default))
             for key, default in missing]
    # A default map or list arrives filled already: only the fields the map had go on.
    below = tuple((key, sub) for key, sub in plan.active.items() if key in keys)
    return Shape(b"{" + b",".join(parts) + b"}" if parts else None, below)


def fill_defaults(value: Any, plan: DefaultsPlan) -> None:
    """Defaults where a field is missing (a null counts as missing and is pruned), in place,
    then the same inside every field, so a defaulted ``{}`` gets its own defaults too."""
    if isinstance(value, dict):
        if plan.preserve_only:
            return
        props = plan.props
        extra = plan.extra
        if props and None in value.values():
            for key in [k for k, v in value.items() if v is None and k in props and k not in plan.nullable]:
                del value[key]
        if extra is None:  # only the named fields have plans: the map's fields decide it all
            if not props:
                return
            keys = tuple(value)
            shape = plan.shapes.get(keys)
            if shape is None:
                shape = _shape(plan, keys)
                if len(plan.shapes) < MAX_SHAPES:
                    plan.shapes[keys] = shape
            if shape.defaults is not None:
                value.update(orjson.loads(shape.defaults))
            for key, sub in shape.below:
                item = value[key]
                if isinstance(item, (dict, list)):
                    fill_defaults(item, sub)
            return
        filled: list[str] = []
        if props:
            for key, default in plan.defaults:
                if key not in value:
                    if type(default) is _Filled:
                        value[key] = orjson.loads(default.json)
                        filled.append(key)
                    else:
                        value[key] = default
        for key, item in value.items():
            sub = props.get(key, extra)
            if sub is not None and isinstance(item, (dict, list)) and key not in filled:
                fill_defaults(item, sub)
    elif isinstance(value, list) and plan.items is not None:
        for item in value:
            fill_defaults(item, plan.items)
