"""``mfx create -f`` and ``mfx replace -f``: the imperative writes, as kubectl's.

``create`` stores objects that must not exist yet; ``replace`` overwrites objects that must
exist, with the documents as they are (a field left out is removed). Each object is a request
of its own, as kubectl sends them: a refused one is reported with its file and line, the
others are written all the same, and the command exits 1. The daemon validates each object
as for any write. ``--save-config`` records the document as its last applied configuration,
so a later ``mfx apply`` merges into it as into an object it created.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from mfx.api.kinds import KindInfo, kind_for
from mfx.api.objects import Obj
from mfx.cli import output
from mfx.cli.context import CliContext, options, pass_cli
from mfx.cli.manifests import located
from mfx.errors import MfxError, ValidationError

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from mfx.cli.client import Client


def _write_each(ctx: CliContext, filenames: tuple[str, ...], recursive: bool, save_config: bool, dry_run: bool,
                verb: str, write: Callable[[Client, Obj, KindInfo], object]) -> None:
    from mfx.api.apply import desired_state
    from mfx.cli.manifests import load_objects

    manifests = load_objects(filenames, recursive=recursive, validate=False)  # the daemon validates
    client = ctx.client
    suffix = output.DRY_RUN_SUFFIX["server"] if dry_run else ""
    failed = False
    for manifest in manifests:
        obj = manifest.obj
        kind = kind_for(obj["apiVersion"], obj["kind"])
        sent = desired_state(obj) if save_config else obj
        try:
            write(client, sent, kind)
        except ValidationError as error:  # each field error names its file and line
            output.error(str(located(error, manifest)))
            failed = True
            continue
        except MfxError as error:
            output.error(f"{manifest.file}: {error}")
            failed = True
            continue
        click.echo(f"{output.object_ref(kind, obj['metadata']['name'])} {verb}{suffix}")
    if failed:
        sys.exit(1)


_file_options = options(
    click.option("-f", "--filename", "filenames", multiple=True, required=True, metavar="FILE|DIR|-",
                 help="Files or directories of manifests; '-' reads stdin. Repeatable."),
    click.option("-R", "--recursive", is_flag=True, help="Descend into directories given with -f."),
    click.option("--save-config", is_flag=True,
                 help="Record each document as its last applied configuration, for a later mfx apply."),
    click.option("--dry-run", type=click.Choice(["none", "server"]), default="none",
                 help="server: validated and admitted by the daemon, not stored."),
)


@click.command()
@_file_options
@pass_cli
def create(ctx: CliContext, filenames: tuple[str, ...], recursive: bool, save_config: bool, dry_run: str) -> None:
    """Create objects from manifests; one that exists already is an error (mfx apply updates it).

    \b
    Examples:
      mfx create -f manifests/audiosink.yaml
      mfx create -f plugins/ -R --save-config
    """
    server = dry_run == "server"
    _write_each(ctx, filenames, recursive, save_config, server, "created",
                lambda client, obj, kind: client.create(obj, kind, dry_run=server))


@click.command()
@_file_options
@pass_cli
def replace(ctx: CliContext, filenames: tuple[str, ...], recursive: bool, save_config: bool, dry_run: str) -> None:
    """Replace objects with the manifests as they are; a field left out is removed.

    \b
    Examples:
      mfx get pm local-music -o yaml > lm.yaml; $EDITOR lm.yaml; mfx replace -f lm.yaml
    """
    server = dry_run == "server"
    _write_each(ctx, filenames, recursive, save_config, server, "replaced",
                lambda client, obj, kind: client.replace(obj, kind, dry_run=server))
