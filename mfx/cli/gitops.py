"""GitOps verbs for objects of any kind: ``mfx reconcile``, ``mfx suspend``, ``mfx resume``.

``reconcile`` sets the ``reconcile.mfx.musicfox.io/requestedAt`` annotation with a merge
patch; the controller syncs at once and records the value it handled in
``status.lastHandledReconcileAt``, which ``reconcile`` waits for (Flux's protocol).
``suspend``/``resume`` merge-patch ``spec.suspend``; a resumed GitSource syncs at once.
"""

from __future__ import annotations

import sys
import time

import click

from mfx.api.kinds import KindInfo
from mfx.api.objects import RECONCILE_HANDLED_FIELD, RECONCILE_REQUESTED_ANNOTATION, Obj, condition
from mfx.cli import output
from mfx.cli.client import Client
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.durations import DURATION
from mfx.cli.refs import named_refs
from mfx.cli.stamps import request_stamp
from mfx.cli.waiting import watch_until
from mfx.errors import BadRequestError, MfxError, NotFoundError


@click.command()
@click.argument("resources", nargs=-1, required=True)
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="For a GitSource: wait until the sync ran and report its outcome.")
@click.option("--timeout", type=DURATION, default="2m", show_default=True, help="How long --wait waits.")
@pass_cli
def reconcile(ctx: CliContext, resources: tuple[str, ...], wait: bool, timeout: float) -> None:
    """Ask the controller to reconcile objects now, without waiting for their interval.

    \b
    Examples:
      mfx reconcile gitsource/plugins
      mfx reconcile gs plugins --no-wait
    """
    client = ctx.client
    deadline = time.monotonic() + timeout
    failed = False
    for kind, name in named_refs(resources):
        stamp = request_stamp()
        obj = client.patch(kind, name, {"metadata": {"annotations": {RECONCILE_REQUESTED_ANNOTATION: stamp}}})
        if not wait or kind.kind != "GitSource":
            click.echo(f"{output.object_ref(kind, name)} reconcile requested")
            continue
        obj = _wait_handled(client, kind, obj, stamp, deadline)
        ready = condition(obj, "Ready") or {}
        text = f"{output.object_ref(kind, name)} reconciled: {ready.get('message') or ready.get('reason', '')}"
        if ready.get("status") == "True":
            click.echo(text)
        else:
            output.error(text)
            failed = True
    if failed:
        sys.exit(1)


def _wait_handled(client: Client, kind: KindInfo, obj: Obj, stamp: str, deadline: float) -> Obj:
    name = obj["metadata"]["name"]
    if (obj.get("status") or {}).get(RECONCILE_HANDLED_FIELD) == stamp:
        return obj
    for event in watch_until(client, kind, name, obj["metadata"]["resourceVersion"], deadline):
        if event["type"] == "DELETED":
            raise NotFoundError(f'{kind.plural} "{name}" was deleted while waiting for its reconcile')
        obj = event["object"]
        if (obj.get("status") or {}).get(RECONCILE_HANDLED_FIELD) == stamp:
            return obj
    raise MfxError(f"timed out waiting for {kind.plural}/{name} to reconcile; see 'mfx describe {kind.plural} {name}'")


def _set_suspend(ctx: CliContext, resources: tuple[str, ...], value: bool) -> None:
    client = ctx.client
    verb = "suspended" if value else "resumed"
    for kind, name in named_refs(resources):
        client.patch(kind, name, {"spec": {"suspend": value}})
        click.echo(f"{output.object_ref(kind, name)} {verb}")


@click.command()
@click.argument("resources", nargs=-1, required=True)
@pass_cli
def suspend(ctx: CliContext, resources: tuple[str, ...]) -> None:
    """Stop reconciling objects (spec.suspend=true) until they are resumed.

    \b
    Examples:
      mfx suspend gitsource/plugins
      mfx suspend pm local-music
    """
    _set_suspend(ctx, resources, True)


@click.command()
@click.argument("resources", nargs=-1)
@pass_cli
def resume(ctx: CliContext, resources: tuple[str, ...]) -> None:
    """Reconcile suspended objects again (spec.suspend=false); a GitSource syncs at once.

    It undoes 'mfx suspend'. Playback is no object: 'mfx play' continues a paused song.

    \b
    Examples:
      mfx resume gitsource/plugins
      mfx resume pm/local-music
    """
    if not resources:
        # Other players resume playback with a bare `resume`: say where that lives here.
        raise BadRequestError("name the objects to resume, e.g. mfx resume gitsource/plugins; "
                              "to continue playback, use mfx play")
    _set_suspend(ctx, resources, False)
