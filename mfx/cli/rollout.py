"""``mfx rollout restart``: restart plugins on request, the way ``kubectl rollout restart`` does.

The command only sets the ``mfx.musicfox.io/restartedAt`` annotation to the time now, with a
JSON merge patch (the same patch any other client, such as a UI, sends); the PluginManifest
controller restarts a running plugin once for each new value and records the value it acted
on in ``status.restartedAt``.
"""

from __future__ import annotations

import sys

import click

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.api.objects import RESTARTED_AT_ANNOTATION
from mfx.cli import output
from mfx.cli.completers import complete_resources
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.refs import chosen_objects, parse_refs
from mfx.cli.stamps import request_stamp
from mfx.errors import BadRequestError, NotFoundError


def restart_patch(stamp: str) -> dict[str, object]:
    """The merge patch that asks for a restart."""
    return {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: stamp}}}


@click.group("rollout")
def rollout() -> None:
    """Manage the rollout of plugins (like kubectl rollout)."""


def _targets(ctx: CliContext, resources: tuple[str, ...], selector: str | None, every: bool) -> list[str]:
    for kind, _ in parse_refs(resources):
        if kind.kind != PLUGIN_MANIFEST.kind:
            raise BadRequestError(f"rollout restart works on plugins (pm/NAME), not {kind.plural}")
    chosen = chosen_objects(ctx.client, resources, selector=selector, everything=every, action="restart")
    if not chosen and (selector or every):
        raise NotFoundError(f"no plugins match the selector {selector!r}" if selector
                            else "no plugins to restart: 'mfx get pm' lists none")
    return [name for _, name in chosen]


@rollout.command("restart")
@click.argument("resources", nargs=-1, required=True, shell_complete=complete_resources)
@click.option("-l", "--selector", help="Restart every plugin matching this label selector (with 'pm').")
@click.option("--all", "every", is_flag=True, help="Restart every plugin (with 'pm').")
@pass_cli
def restart(ctx: CliContext, resources: tuple[str, ...], selector: str | None, every: bool) -> None:
    """Restart plugins: each running one gets a new instance, once per request.

    It sets the annotation mfx.musicfox.io/restartedAt to the time now. The controller starts
    a new instance of the same spec beside the running one (an rpc plugin gets a new process,
    an in-process or hot-reload plugin is loaded and initialised again), switches to it once
    it is Ready, then stops the old one, so the plugin stays Ready throughout. If the new
    instance fails to start, the old one keeps running and a RestartFailed event says why.
    The value handled is recorded in status.restartedAt, so a daemon restart does not restart
    the plugin again. A plugin that is not running (suspended, failed, stalled, waiting for
    its dependencies) only records the request. status.restartCount counts crashes and failed
    health checks only: a restart on request leaves it as it is.

    \b
    Examples:
      mfx rollout restart pm/local-music
      mfx rollout restart pm/local-music pm/codec-soundfile
      mfx rollout restart pm -l tier=audio
      mfx rollout restart pm --all
    \b
    The same with kubectl:
      kubectl annotate pm/NAME mfx.musicfox.io/restartedAt=$(date -u +%FT%TZ) --overwrite
    """
    client = ctx.client
    failed = False
    for name in _targets(ctx, resources, selector, every):
        try:
            client.patch(PLUGIN_MANIFEST, name, restart_patch(request_stamp()))
        except NotFoundError:
            output.error(f'pluginmanifests "{name}" not found; \'mfx get pm\' lists the plugins there are')
            failed = True
            continue
        click.echo(f"{output.object_ref(PLUGIN_MANIFEST, name)} restarted")
    if failed:
        sys.exit(1)
