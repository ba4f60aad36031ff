"""``mfx apply``: create or update objects from manifests, as ``kubectl apply`` does."""

from __future__ import annotations

import click

from mfx.api.apply import apply_patch, comparable, desired_state, field_changes, merged_for_apply
from mfx.api.kinds import kind_for
from mfx.api.objects import GITSOURCE_OWNER_LABEL, Obj
from mfx.api.schema import load_schemas
from mfx.cli import output
from mfx.cli.client import Client
from mfx.cli.context import CliContext, pass_cli
from mfx.errors import AlreadyExistsError, ConflictError, MfxError, NotFoundError


def apply_one(client: Client, obj: Obj, *, dry_run: bool, force_conflicts: bool = False) -> str:
    """Create or update one object; returns kubectl's verb: created, configured, unchanged.

    An object a GitSource manages is changed only with ``force_conflicts`` (and the next
    sync reverts it): its desired state lives in git."""
    kind = kind_for(obj["apiVersion"], obj["kind"])
    desired = desired_state(obj)
    name = desired["metadata"]["name"]
    try:
        live = client.get(kind, name)
    except NotFoundError:
        try:
            client.create(desired, kind, dry_run=dry_run)
            return "created"
        except AlreadyExistsError:  # created by someone else in between: apply onto theirs
            live = client.get(kind, name)
    merged = merged_for_apply(live, desired)
    if comparable(merged, annotation=False) == comparable(live, annotation=False):
        # Same spec, labels and annotations: only the record of the applied file would
        # change. Write nothing, so applying `get -o yaml` output is a true no-op.
        return "unchanged"
    owner = (live.get("metadata", {}).get("labels") or {}).get(GITSOURCE_OWNER_LABEL)
    changes = field_changes(live, load_schemas().apply_defaults(merged)) if owner else []
    if changes:
        text = f'{kind.plural} "{name}" is managed by gitsource/{owner}; {"; ".join(changes)}'
        if not force_conflicts:
            raise ConflictError(f"{text}; change it in git, or use --force-conflicts to override "
                                "(the next sync will revert it)")
        output.warn(f"{text}; applied with --force-conflicts: the next sync will revert it")
    patch = apply_patch(live, load_schemas().apply_defaults(merged))
    if not patch:
        return "unchanged"
    result = client.patch(kind, name, patch, dry_run=dry_run)
    return "configured" if comparable(result) != comparable(live) else "unchanged"


@click.command()
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-",
              help="Files or directories of manifests; '-' reads stdin. Repeatable.")
@click.option("-R", "--recursive", is_flag=True, help="Descend into directories given with -f.")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
              help="client: validate locally only; server: validate and admit on the daemon, store nothing.")
@click.option("--force-conflicts", is_flag=True,
              help="Change objects a GitSource manages anyway (its next sync reverts them).")
@pass_cli
def apply(ctx: CliContext, filenames: tuple[str, ...], recursive: bool, dry_run: str,
          force_conflicts: bool) -> None:
    """Create or update objects from manifests (all documents are validated before any is written).

    Every -f argument must hold at least one object: an empty file, one of only comments or
    '---', or a directory without .yaml/.yml/.json files is an error, never a silent success.

    \b
    Examples:
      mfx apply -f manifests/
      mfx apply -f plugins/ -R
      cat pm.yaml | mfx apply -f -
      mfx apply -f manifests/ --dry-run=server
    """
    # Validation pulls in jsonschema: imported by the commands that read manifests only.
    from mfx.cli.manifests import load_objects, located

    manifests = load_objects(filenames, recursive=recursive)
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
    for manifest in manifests:
        obj = manifest.obj
        kind = kind_for(obj["apiVersion"], obj["kind"])
        if dry_run == "client":
            verb = "configured"
        else:
            try:
                verb = apply_one(ctx.client, obj, dry_run=dry_run == "server", force_conflicts=force_conflicts)
            except MfxError as error:
                raise located(error, manifest) from None
        click.echo(f"{output.object_ref(kind, obj['metadata']['name'])} {verb}{suffix}")
