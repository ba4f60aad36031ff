"""Objects named on the command line: ``KIND [NAME...]``, ``KIND/NAME ...``, as kubectl reads them."""

from __future__ import annotations

from mfx.api.kinds import KindInfo, resolve_kind
from mfx.errors import BadRequestError

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from mfx.cli.client import Client


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


def chosen_objects(client: Client, args: tuple[str, ...], *, selector: str | None, everything: bool,
                   action: str) -> list[tuple[KindInfo, str]]:
    """The objects a command acts on, chosen as kubectl chooses them: ``KIND NAME...`` or
    ``KIND/NAME ...`` by name, ``KIND -l SELECTOR`` by label, ``KIND --all`` every one; each
    once, in the order given. ``action`` (e.g. "delete") completes the messages.

    Refused with kubectl's words, whichever command it is: names together with a selector or
    ``--all`` (kubectl never lets one narrow the other), ``--all`` with a selector, and a kind
    with neither names nor a way to choose them.
    """
    if everything and selector:
        raise BadRequestError("setting 'all' parameter but found a non empty selector: "
                              "give --all or -l SELECTOR, not both")
    refs = parse_refs(args)
    chooser = "--all" if everything else "-l SELECTOR" if selector else None
    named = [(kind, name) for kind, name in refs if name is not None]
    if named and chooser is not None:
        kind, first = named[0]
        raise BadRequestError(f"name cannot be provided when a selector is specified: {action} {kind.plural} "
                              f"by name ({first}) or choose them with {chooser}, not both")
    chosen: list[tuple[KindInfo, str]] = []
    for kind, name in refs:
        if name is not None:
            if not name:
                raise BadRequestError(f"give a name after {kind.typed}/, e.g. {kind.typed}/NAME")
            chosen.append((kind, name))
        elif chooser is None:
            raise BadRequestError(f"resource(s) were provided, but no name was specified: name the "
                                  f"{kind.plural} to {action} ({kind.typed} NAME...), or choose them with "
                                  f"{kind.typed} -l SELECTOR or {kind.typed} --all")
        else:
            chosen.extend((kind, obj["metadata"]["name"])
                          for obj in client.list(kind, label_selector=selector)["items"])
    return list(dict.fromkeys(chosen))
