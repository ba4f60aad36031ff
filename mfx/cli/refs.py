"""Objects named on the command line: ``KIND [NAME...]``, ``KIND/NAME ...``, as kubectl reads them."""

from __future__ import annotations

from mfx.api.kinds import KindInfo, resolve_kind
from mfx.errors import BadRequestError


def parse_refs(args: tuple[str, ...]) -> list[tuple[KindInfo, str | None]]:
    """``KIND [NAME...]`` or ``KIND/NAME ...`` into (kind, name) pairs; name None means all."""
    if not args:
        raise BadRequestError("you must specify the type of resource (example: mfx get pm)")
    if all("/" in a for a in args):
        refs: list[tuple[KindInfo, str | None]] = []
        for arg in args:
            kind_text, _, name = arg.partition("/")
            refs.append((resolve_kind(kind_text), name))
        return refs
    kinds = [resolve_kind(k) for k in args[0].split(",")]
    names = list(args[1:])
    if names and len(kinds) > 1:
        raise BadRequestError("you may only name objects of one kind at a time")
    if not names:
        return [(kind, None) for kind in kinds]
    return [(kinds[0], name) for name in names]


def named_refs(args: tuple[str, ...]) -> list[tuple[KindInfo, str]]:
    """``KIND/NAME ...`` or ``KIND NAME...``: every object named; a kind alone is an error."""
    if not args:
        raise BadRequestError("name the objects, e.g. gitsource/plugins")
    if all("/" in a for a in args):
        return [(resolve_kind(a.partition("/")[0]), a.partition("/")[2]) for a in args]
    if len(args) < 2:
        raise BadRequestError(f"name the {args[0]} to act on, e.g. {args[0]}/NAME")
    kind = resolve_kind(args[0])
    return [(kind, name) for name in args[1:]]
