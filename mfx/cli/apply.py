"""``mfx apply``: create or update objects from manifests, as ``kubectl apply`` does."""

from __future__ import annotations

import click

from mfx.cli import apply_run
from mfx.cli.context import CliContext, pass_cli


@click.command()
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-",
              help="Files or directories of manifests; '-' reads stdin. Repeatable.")
@click.option("-R", "--recursive", is_flag=True, help="Descend into directories given with -f.")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
              help="client: validate locally only; server: validate and admit on the daemon, store nothing.")
@click.option("--force-conflicts", is_flag=True,
              help="Change objects a GitSource manages anyway (its next sync reverts them); with "
                   "--server-side, also take over fields another field manager owns.")
@click.option("--server-side", is_flag=True,
              help="Send each object as an apply configuration: the daemon merges it and records the "
                   "fields --field-manager owns (metadata.managedFields), as kubectl apply --server-side.")
@click.option("--field-manager", default="mfx", show_default=True, metavar="NAME",
              help="Who owns the fields a --server-side apply sets.")
@pass_cli
def apply(ctx: CliContext, filenames: tuple[str, ...], recursive: bool, dry_run: str,
          force_conflicts: bool, server_side: bool, field_manager: str) -> None:
    """Create or update objects from manifests (all documents are validated before any is written).

    All objects go to the daemon in one request and are stored in one transaction: all of
    them or, when one is refused, none. The request is sent as the files are read, and the
    daemon checks each object as it arrives; it stores nothing before the last one. Only
    when they exceed the daemon's 3 MiB body limit
    are they sent in several such requests, each all-or-nothing: a refusal then leaves the
    earlier requests' objects applied (they are listed above the error). A daemon without
    the bulk path gets one request per object, as kubectl sends.

    Every -f argument must hold at least one object: an empty file, one of only comments or
    '---', or a directory without .yaml/.yml/.json files is an error, never a silent success.

    \b
    Examples:
      mfx apply -f manifests/
      mfx apply -f plugins/ -R
      cat pm.yaml | mfx apply -f -
      mfx apply -f manifests/ --dry-run=server
      mfx apply --server-side --field-manager=ops -f manifests/
    """
    if server_side:
        if dry_run == "client":
            raise click.UsageError("--dry-run=client does not work with --server-side (did you mean --dry-run=server?)")
        apply_run.run_server_side(ctx, filenames, recursive=recursive, dry_run=dry_run == "server",
                                  force_conflicts=force_conflicts, field_manager=field_manager)
        return
    apply_run.run(ctx, filenames, recursive=recursive, dry_run=dry_run, force_conflicts=force_conflicts)
