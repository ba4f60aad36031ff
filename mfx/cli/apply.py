"""``mfx apply``: create or update objects from manifests, as ``kubectl apply`` does."""

from __future__ import annotations

import click

from mfx.api.kinds import kind_for
from mfx.cli import output
from mfx.cli.context import CliContext, pass_cli
from mfx.collector import collection_paused
from mfx.errors import MfxError


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

    All objects go to the daemon in one request and are stored in one transaction: all of
    them or, when one is refused, none. Only when they exceed the daemon's 3 MiB body limit
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
    """
    # The manifests read, and their requests and answers, are thousands of objects alive at
    # once and none of them cyclic: the collector would only walk them again and again.
    with collection_paused():
        _apply(ctx, filenames, recursive, dry_run, force_conflicts)


def _apply(ctx: CliContext, filenames: tuple[str, ...], recursive: bool, dry_run: str,
           force_conflicts: bool) -> None:
    # Validation pulls in jsonschema: imported by the commands that read manifests only.
    from mfx.cli.apply_requests import apply_manifests
    from mfx.cli.manifests import check_manifests, load_objects

    # The daemon validates what it is sent: only a client dry run validates here first.
    manifests = load_objects(filenames, recursive=recursive, validate=dry_run == "client")
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
    if dry_run == "client":
        for manifest in manifests:
            obj = manifest.obj
            click.echo(f"{output.object_ref(kind_for(obj['apiVersion'], obj['kind']), obj['metadata']['name'])} "
                       f"configured{suffix}")
        return
    try:
        client = ctx.client
    except MfxError:
        check_manifests(manifests)  # an invalid file is named before a wrong daemon address
        raise
    # The outcome lines go out in one write (each echo is a write of its own, a thousand of
    # them cost milliseconds); a warning goes out in its place, after the lines before it, and
    # after a refusal the lines of what was applied come before the error.
    lines: list[str] = []
    try:
        for outcome in apply_manifests(client, manifests, dry_run=dry_run == "server",
                                       force_conflicts=force_conflicts, validated=False):
            if outcome.warning:
                _echo(lines)
                output.warn(outcome.warning)
            lines.append(f"{output.object_ref(outcome.kind, outcome.name)} {outcome.verb}{suffix}")
    finally:
        _echo(lines)


def _echo(lines: list[str]) -> None:
    if lines:
        click.echo("\n".join(lines))
        lines.clear()
