"""``mfx label`` and ``mfx annotate``: change an object's labels or annotations, as kubectl's do.

``KEY=VALUE`` sets, ``KEY-`` removes; changing a value the object already has a different one
for needs ``--overwrite``. Each object is changed by a JSON merge patch of its metadata that
carries the resourceVersion read (or ``--resource-version``), so a change made meanwhile is a
conflict, not overwritten. The daemon validates the keys and values as for any write: a bad
one is refused with its field path (``metadata.labels.KEY``) and nothing is changed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import click

from mfx.api.kinds import KindInfo
from mfx.cli import output
from mfx.cli.completers import complete_resources
from mfx.cli.context import CliContext, options, pass_cli
from mfx.cli.refs import chosen_objects
from mfx.errors import BadRequestError, MfxError

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from mfx.cli.client import Client


@dataclass(frozen=True)
class Field:
    """What a command edits: ``metadata.labels`` or ``metadata.annotations``."""

    key: str  # labels, annotations
    noun: str  # label, annotation
    done: str  # labeled, annotated


LABELS = Field("labels", "label", "labeled")
ANNOTATIONS = Field("annotations", "annotation", "annotated")


@dataclass(frozen=True)
class Changes:
    sets: dict[str, str]
    removals: tuple[str, ...]


def split_arguments(args: tuple[str, ...], field: Field) -> tuple[tuple[str, ...], Changes]:
    """The resources named and the changes asked for (``KEY=VALUE``, ``KEY-``), in any order."""
    resources: list[str] = []
    sets: dict[str, str] = {}
    removals: list[str] = []
    for arg in args:
        if "=" in arg:
            key, _, value = arg.partition("=")
            if not key:
                raise BadRequestError(f"{arg!r}: a {field.noun} needs a key before '=' (KEY=VALUE)")
            sets[key] = value
        elif arg.endswith("-") and len(arg) > 1:
            removals.append(arg[:-1])
        else:
            resources.append(arg)
    both = sorted(set(sets) & set(removals))
    if both:
        raise BadRequestError(f"{field.noun} {both[0]!r} is both set and removed: give one of them")
    if not sets and not removals:
        raise BadRequestError(f"name at least one {field.noun} to change: KEY=VALUE to set, KEY- to remove")
    return tuple(resources), Changes(sets, tuple(removals))


def _edit(ctx: CliContext, field: Field, args: tuple[str, ...], *, overwrite: bool, everything: bool,
          selector: str | None, resource_version: str | None, dry_run: bool) -> None:
    resources, changes = split_arguments(args, field)
    client = ctx.client
    targets = chosen_objects(client, resources, selector=selector, everything=everything, action=field.noun)
    if resource_version is not None and len(targets) != 1:
        raise BadRequestError("--resource-version names the version of one object: name exactly one")
    if not targets:
        click.echo("No resources found", err=True)
        return
    # As kubectl: an object that cannot be changed is reported, the others are changed all the same.
    failed = False
    for kind, name in targets:
        try:
            click.echo(_edit_one(client, kind, name, field, changes, overwrite=overwrite,
                                 resource_version=resource_version, dry_run=dry_run))
        except MfxError as error:
            output.error(str(error))
            failed = True
    if failed:
        sys.exit(1)


def _edit_one(client: Client, kind: KindInfo, name: str, field: Field, changes: Changes, *, overwrite: bool,
              resource_version: str | None, dry_run: bool) -> str:
    """Change one object; the line that says so."""
    ref = output.object_ref(kind, name)
    obj = client.get(kind, name)
    current: dict[str, str] = obj["metadata"].get(field.key) or {}
    for key, value in changes.sets.items():
        if key in current and current[key] != value and not overwrite:
            raise BadRequestError(f"{ref}: {field.noun} {key!r} already has a value ({current[key]}), "
                                  "and --overwrite is false")
    for key in changes.removals:
        if key not in current:
            output.warn(f"{field.noun} {key!r} not found on {ref}")
    patch: dict[str, str | None] = {k: v for k, v in changes.sets.items() if current.get(k) != v}
    patch.update({k: None for k in changes.removals if k in current})
    if not patch:
        return f"{ref} not {field.done}"
    version = resource_version or obj["metadata"].get("resourceVersion")
    client.patch(kind, name, {"metadata": {field.key: patch, "resourceVersion": version}}, dry_run=dry_run)
    return f"{ref} {field.done}{output.DRY_RUN_SUFFIX['server'] if dry_run else ''}"


# The arguments and options ``label`` and ``annotate`` share (kubectl's).
_edit_options = options(
    click.argument("args", nargs=-1, required=True, shell_complete=complete_resources),
    click.option("--overwrite", is_flag=True, help="Change a key the object already has a value for."),
    click.option("--all", "everything", is_flag=True, help="Every object of the kinds named."),
    click.option("-l", "--selector", help="Every object of the kinds named matching this label selector."),
    click.option("--resource-version", help="Change the object only if it is still at this version."),
    click.option("--dry-run", type=click.Choice(["none", "server"]), default="none",
                 help="server: validated and admitted by the daemon, not stored."),
)


@click.command()
@_edit_options
@pass_cli
def label(ctx: CliContext, args: tuple[str, ...], overwrite: bool, everything: bool, selector: str | None,
          resource_version: str | None, dry_run: str) -> None:
    """Set or remove labels of objects (KEY=VALUE sets, KEY- removes).

    \b
    Examples:
      mfx label pm local-music tier=audio
      mfx label pm local-music tier=core --overwrite
      mfx label pm --all rollout=canary
      mfx label pm/local-music tier-
    """
    _edit(ctx, LABELS, args, overwrite=overwrite, everything=everything, selector=selector,
          resource_version=resource_version, dry_run=dry_run == "server")


@click.command()
@_edit_options
@pass_cli
def annotate(ctx: CliContext, args: tuple[str, ...], overwrite: bool, everything: bool, selector: str | None,
             resource_version: str | None, dry_run: str) -> None:
    """Set or remove annotations of objects (KEY=VALUE sets, KEY- removes).

    \b
    Examples:
      mfx annotate pm local-music owner='ops team'
      mfx annotate pm local-music owner=me --overwrite
      mfx annotate pm -l tier=audio note-
    """
    _edit(ctx, ANNOTATIONS, args, overwrite=overwrite, everything=everything, selector=selector,
          resource_version=resource_version, dry_run=dry_run == "server")
