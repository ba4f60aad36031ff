"""``mfx create -f`` and ``mfx replace -f``: the imperative writes, as kubectl's.

``create`` stores objects that must not exist yet; ``replace`` overwrites objects that must
exist, with the documents as they are (a field left out is removed). Each object is a request
of its own, as kubectl sends them: a refused one is reported with its file and line, the
others are written all the same, and the command exits 1. The daemon validates each object
as for any write. ``--save-config`` records the document as its last applied configuration,
so a later ``mfx apply`` merges into it as into an object it created. ``replace --force``
deletes each object (its finalizers run: a plugin is stopped), waits until it is gone and
creates it again from the document, as ``kubectl replace --force`` does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from mfx.api.kinds import KindInfo, kind_for
from mfx.api.objects import Obj
from mfx.cli import output
from mfx.cli.context import CliContext, options, pass_cli
from mfx.cli.durations import DURATION
from mfx.cli.manifests import located
from mfx.errors import BadRequestError, MfxError, NotFoundError, ValidationError

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
@click.option("--force", is_flag=True,
              help="Delete each object, wait until it is gone, and create it again from the document.")
@click.option("--timeout", type=DURATION, default="60s", show_default=True,
              help="With --force: how long to wait for each object to be gone.")
@pass_cli
def replace(ctx: CliContext, filenames: tuple[str, ...], recursive: bool, save_config: bool, dry_run: str,
            force: bool, timeout: float) -> None:
    """Replace objects with the manifests as they are; a field left out is removed.

    \b
    Examples:
      mfx get pm local-music -o yaml > lm.yaml; $EDITOR lm.yaml; mfx replace -f lm.yaml
      mfx replace --force -f lm.yaml     # delete, wait until gone, create again
    """
    server = dry_run == "server"
    if force and server:
        raise BadRequestError("--force deletes and creates the objects again, which a dry run cannot show: "
                              "drop --dry-run, or --force")
    if force:
        _write_each(ctx, filenames, recursive, save_config, False, "replaced",
                    lambda client, obj, kind: _recreate(client, obj, kind, timeout))
        return
    _write_each(ctx, filenames, recursive, save_config, server, "replaced",
                lambda client, obj, kind: client.replace(obj, kind, dry_run=server))


def _recreate(client: Client, obj: Obj, kind: KindInfo, timeout: float) -> None:
    """``replace --force`` of one object: delete it (absent is fine), wait until it is gone,
    create it from ``obj`` (without the resourceVersion of the object it replaces)."""
    import time

    from mfx.cli.waiting import wait_deleted

    name = obj["metadata"]["name"]
    try:
        client.delete(kind, name)
    except NotFoundError:
        pass
    else:
        click.echo(f'{output.qualified(kind)} "{name}" deleted')
        wait_deleted(client, kind, name, time.monotonic() + timeout)
    fresh = {**obj, "metadata": {k: v for k, v in obj["metadata"].items()
                                 if k not in ("resourceVersion", "uid", "creationTimestamp", "generation")}}
    client.create(fresh, kind)
