"""GitOps verbs: ``mfx reconcile``, ``mfx suspend``, ``mfx resume`` (any kind), and the
``mfx diff gitsource/NAME`` preview.

``reconcile`` sets the ``reconcile.mfx.musicfox.io/requestedAt`` annotation with a merge
patch; the controller syncs at once and records the value it handled in
``status.lastHandledReconcileAt``, which ``reconcile`` waits for (Flux's protocol).
``suspend``/``resume`` merge-patch ``spec.suspend``; a resumed GitSource syncs at once.

``mfx diff gitsource/NAME`` is computed by the CLI: it reads the GitSource from the daemon,
fetches the same ref into a temporary repository with its own ``git`` (with the same
credential files, which it must be able to read), renders the desired objects exactly as
the controller does (``controllers.gitsource_render``), and diffs each against the live
object through the daemon's server-side dry run, like ``mfx diff -f``. That needs no new API
and never touches the daemon's git cache; the price is one fetch per diff.
"""

from __future__ import annotations

import difflib
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio
import click

from mfx.api.apply import merged_for_apply
from mfx.api.kinds import KindInfo, kind_for, resolve_kind
from mfx.api.models import GitSourceSpec, parse_spec
from mfx.api.objects import (
    GITSOURCE_OWNER_LABEL,
    RECONCILE_HANDLED_FIELD,
    RECONCILE_REQUESTED_ANNOTATION,
    Obj,
    condition,
)
from mfx.api.schema import load_schemas
from mfx.api.units import parse_duration
from mfx.cli import output
from mfx.cli.client import Client
from mfx.cli.main import CliContext
from mfx.errors import BadRequestError, MfxError, NotFoundError, ValidationError

pass_cli = click.make_pass_decorator(CliContext)


def _refs(args: tuple[str, ...]) -> list[tuple[KindInfo, str]]:
    """``KIND/NAME ...`` or ``KIND NAME...``: every object named."""
    if not args:
        raise BadRequestError("name the objects, e.g. gitsource/plugins")
    if all("/" in a for a in args):
        return [(resolve_kind(a.partition("/")[0]), a.partition("/")[2]) for a in args]
    if len(args) < 2:
        raise BadRequestError(f"name the {args[0]} to act on, e.g. {args[0]}/NAME")
    kind = resolve_kind(args[0])
    return [(kind, name) for name in args[1:]]


@click.command()
@click.argument("resources", nargs=-1, required=True)
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="For a GitSource: wait until the sync ran and report its outcome.")
@click.option("--timeout", default="2m", show_default=True, help="How long --wait waits.")
@pass_cli
def reconcile(ctx: CliContext, resources: tuple[str, ...], wait: bool, timeout: str) -> None:
    """Ask the controller to reconcile objects now, without waiting for their interval.

    \b
    Examples:
      mfx reconcile gitsource/plugins
      mfx reconcile gs plugins --no-wait
    """
    client = ctx.client
    deadline = time.monotonic() + parse_duration(timeout)
    failed = False
    for kind, name in _refs(resources):
        stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
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
    from mfx.cli.commands import _watch_until

    name = obj["metadata"]["name"]
    if (obj.get("status") or {}).get(RECONCILE_HANDLED_FIELD) == stamp:
        return obj
    for event in _watch_until(client, kind, name, obj["metadata"]["resourceVersion"], deadline):
        if event["type"] == "DELETED":
            raise NotFoundError(f'{kind.plural} "{name}" was deleted while waiting for its reconcile')
        obj = event["object"]
        if (obj.get("status") or {}).get(RECONCILE_HANDLED_FIELD) == stamp:
            return obj
    raise MfxError(f"timed out waiting for {kind.plural}/{name} to reconcile; see 'mfx describe {kind.plural} {name}'")


def _set_suspend(ctx: CliContext, resources: tuple[str, ...], value: bool) -> None:
    client = ctx.client
    verb = "suspended" if value else "resumed"
    for kind, name in _refs(resources):
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


# --- diff gitsource/NAME ----------------------------------------------------------------------------


def diff_gitsources(client: Client, resources: tuple[str, ...]) -> bool:
    """Print what the next sync of each GitSource would change; True if anything would."""
    from mfx.cli.commands import _diff_view

    changed = False
    schemas = load_schemas()
    for kind, name in _refs(resources):
        if kind.kind != "GitSource":
            raise BadRequestError(f"mfx diff KIND/NAME works for gitsources; for {kind.plural} use mfx diff -f FILE")
        source = client.get(kind, name)
        spec = parse_spec(source)
        assert isinstance(spec, GitSourceSpec)
        with tempfile.TemporaryDirectory(prefix=f"mfx-diff-{name}-") as tmp:
            # Rendering fetches with git like the controller does: import it only for this command.
            from controllers.gitsource_render import render, repository

            rendered = anyio.run(render, repository(Path(tmp), spec), spec, name, schemas)
        wanted = set(rendered.keys())
        for obj in rendered.objects:
            okind = kind_for(obj["apiVersion"], obj["kind"])
            try:
                live: Obj | None = client.get(okind, obj["metadata"]["name"])
            except NotFoundError:
                live = None
            after = (client.create(obj, okind, dry_run=True) if live is None
                     else client.replace(merged_for_apply(live, obj), okind, dry_run=True))
            changed |= _print_diff(okind, obj["metadata"]["name"], _diff_view(live), _diff_view(after))
        if spec.prune:
            for entry in ((source.get("status") or {}).get("inventory") or {}).get("entries") or []:
                if (entry["kind"], entry["name"]) in {(k.kind, k.name) for k in wanted}:
                    continue
                okind = resolve_kind(entry["kind"])
                try:
                    live = client.get(okind, entry["name"])
                except NotFoundError:
                    continue
                if ((live["metadata"].get("labels") or {}).get(GITSOURCE_OWNER_LABEL)) == name:
                    changed |= _print_diff(okind, entry["name"], _diff_view(live), [])
    return changed


def _print_diff(kind: KindInfo, name: str, before: list[str], after: list[str]) -> bool:
    if before == after:
        return False
    label = f"{kind.api_version}.{kind.kind}.{name}"
    sys.stdout.writelines(difflib.unified_diff(before, after, f"live/{label}", f"gitsource/{label}"))
    return True


def run_diff(ctx: CliContext, resources: tuple[str, ...]) -> None:
    """``mfx diff gitsource/NAME``: exit 0 no change, 1 changes, 2 error (like ``mfx diff -f``)."""
    try:
        changed = diff_gitsources(ctx.client, resources)
    except ValidationError as error:
        for item in error.errors:
            output.error(str(item))
        sys.exit(2)
    except MfxError as error:
        output.error(str(error))
        sys.exit(2)
    sys.exit(1 if changed else 0)


COMMANDS: tuple[click.Command, ...] = (reconcile, suspend, resume)
