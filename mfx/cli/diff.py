"""``mfx diff``: what ``mfx apply -f`` (or a GitSource's next sync) would change, as a unified diff."""

from __future__ import annotations

import sys

import click

from mfx.api.apply import desired_state, merged_for_apply
from mfx.api.kinds import kind_for
from mfx.api.objects import Obj
from mfx.cli import output
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.object_diff import diff_view, print_diff
from mfx.errors import BadRequestError, NotFoundError

# Exit codes, as kubectl diff: 1 is "there are changes", so errors take 2.
CHANGES, ERROR = 1, 2


@click.command()
@click.argument("resources", nargs=-1)
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-")
@click.option("-R", "--recursive", is_flag=True)
@pass_cli
def diff(ctx: CliContext, resources: tuple[str, ...], filenames: tuple[str, ...], recursive: bool) -> None:
    """Show what 'mfx apply' (or a GitSource's next sync) would change (exit 0: no change, 1: changes, >1: error).

    \b
    Examples:
      mfx diff -f manifests/
      mfx diff gitsource/plugins
    """
    if resources and filenames:
        raise BadRequestError("give either -f FILE or gitsource/NAME, not both")
    with output.exit_on_error(ERROR):
        changed = _diff_gitsources(ctx, resources) if resources else _diff_files(ctx, filenames, recursive)
    sys.exit(CHANGES if changed else 0)


def _diff_gitsources(ctx: CliContext, resources: tuple[str, ...]) -> bool:
    # Rendering a GitSource fetches with git and parses its spec: imported for this form only.
    from mfx.cli.gitsource_diff import diff_gitsources

    return diff_gitsources(ctx.client, resources)


def _diff_files(ctx: CliContext, filenames: tuple[str, ...], recursive: bool) -> bool:
    from mfx.cli.manifests import load_objects

    manifests = load_objects(filenames, recursive=recursive)
    client = ctx.client
    changed = False
    for manifest in manifests:
        obj = manifest.obj
        kind = kind_for(obj["apiVersion"], obj["kind"])
        name = obj["metadata"]["name"]
        desired = desired_state(obj)
        try:
            live: Obj | None = client.get(kind, name)
        except NotFoundError:
            live = None
        if live is None:
            after = client.create(desired, kind, dry_run=True)
        else:
            after = client.replace(merged_for_apply(live, desired), kind, dry_run=True)
        changed |= print_diff(kind, name, diff_view(live), diff_view(after), source="merged")
    return changed
