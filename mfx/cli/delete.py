"""``mfx delete``: delete objects by name, by manifest or by label selector, and wait until they are gone."""

from __future__ import annotations

import sys
import time

import click

from mfx.api.kinds import KindInfo, kind_for
from mfx.cli import output
from mfx.cli.completers import complete_resources
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.durations import DURATION
from mfx.cli.refs import chosen_objects
from mfx.cli.waiting import wait_deleted
from mfx.errors import BadRequestError, NotFoundError


@click.command()
@click.argument("resources", nargs=-1, shell_complete=complete_resources)
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-", help="Delete what these manifests name.")
@click.option("-R", "--recursive", is_flag=True)
@click.option("-l", "--selector", help="Delete every object of the kind matching this label selector.")
@click.option("--all", "everything", is_flag=True, help="Delete every object of the kinds named.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until the objects are gone (their finalizers have run).")
@click.option("--timeout", type=DURATION, default="60s", show_default=True, help="How long --wait waits.")
@click.option("--dry-run", type=click.Choice(["none", "server"]), default="none")
@pass_cli
def delete(ctx: CliContext, resources: tuple[str, ...], filenames: tuple[str, ...], recursive: bool,
           selector: str | None, everything: bool, wait: bool, timeout: float, dry_run: str) -> None:
    """Delete objects by name, by manifest or by label selector.

    \b
    Examples:
      mfx delete pm hello
      mfx delete -f manifests/hello.yaml
      mfx delete pm -l tier=experimental
      mfx delete pm --all
    """
    from mfx.cli.manifests import load_objects

    if filenames and (everything or selector or resources):
        raise BadRequestError("-f names the objects to delete itself: use it without names, -l and --all")
    client = ctx.client
    targets: list[tuple[KindInfo, str]] = []
    if filenames:
        for manifest in load_objects(filenames, recursive=recursive):
            obj = manifest.obj
            targets.append((kind_for(obj["apiVersion"], obj["kind"]), obj["metadata"]["name"]))
    else:
        targets = chosen_objects(client, resources, selector=selector, everything=everything, action="delete")
    if not targets:  # a selector or --all that matched nothing: as kubectl says it
        click.echo("No resources found", err=True)
        return
    suffix = output.DRY_RUN_SUFFIX.get(dry_run, "")
    failed = False
    for kind, name in targets:
        try:
            client.delete(kind, name, dry_run=dry_run == "server")
        except NotFoundError as error:
            output.error(str(error))
            failed = True
            continue
        click.echo(f'{output.qualified(kind)} "{name}" deleted{suffix}')
    if wait and dry_run == "none":
        deadline = time.monotonic() + timeout
        for kind, name in targets:
            wait_deleted(client, kind, name, deadline)
    if failed:
        sys.exit(1)
