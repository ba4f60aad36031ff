"""The ``mfx`` group and its commands, in the order ``mfx --help`` lists them.

This module only assembles: the commands live in their own modules and share what they
share through modules that import no command (context, output, refs, ...). Only the entry
point (``main``) imports it, so there is no import cycle through it.
"""

from __future__ import annotations

from pathlib import Path

import click

from mfx.cli.agent import agent
from mfx.cli.apply import apply
from mfx.cli.completion import completion
from mfx.cli.context import CliContext
from mfx.cli.create_replace import create, replace
from mfx.cli.delete import delete
from mfx.cli.demo import demo
from mfx.cli.describe import describe
from mfx.cli.diff import diff
from mfx.cli.discovery import api_resources, explain, version
from mfx.cli.edit import edit
from mfx.cli.events import events
from mfx.cli.get import get
from mfx.cli.gitops import reconcile, resume, suspend
from mfx.cli.graph import graph
from mfx.cli.group import MfxGroup
from mfx.cli.kubeconfig import config_group
from mfx.cli.label import annotate, label
from mfx.cli.logs import logs
from mfx.cli.migrate import migrate
from mfx.cli.nodes import cordon, uncordon
from mfx.cli.patch import patch
from mfx.cli.player_library import library, playlists, search
from mfx.cli.player_now import lyrics, now
from mfx.cli.player_queue import queue
from mfx.cli.player_settings import mode, mute, volume
from mfx.cli.player_transport import next_cmd, pause, play, prev, seek, stop
from mfx.cli.plugin_authoring import init, keygen, pack_cmd, verify_cmd
from mfx.cli.plugin_group import plugin_group
from mfx.cli.plugin_ops import analyze, call, reset_failed, why
from mfx.cli.plugin_store import install, list_cmd
from mfx.cli.rollback import rollback
from mfx.cli.rollout import rollout
from mfx.cli.serve import serve
from mfx.cli.top import top
from mfx.cli.trust import trust_group
from mfx.cli.tui import tui
from mfx.cli.wait import wait_cmd
from mfx.cli.webui_open import ui

# The kubectl verbs come first in `mfx --help`, then the plugin and GitOps verbs, the player,
# and the tools.
KUBECTL_VERBS: tuple[click.Command, ...] = (
    apply, create, replace, get, describe, edit, delete, diff, patch, label, annotate, wait_cmd, explain, events, logs, api_resources, version, completion,
)
OPERATIONS: tuple[click.Command, ...] = (
    why, analyze, graph, reset_failed, rollout, call, reconcile, suspend, resume, cordon, uncordon, top,
)
PLAYER: tuple[click.Command, ...] = (
    search, library, playlists, play, pause, stop, next_cmd, prev, seek, queue, mode, volume, mute, now, lyrics,
    migrate, tui,
)
TOOLS: tuple[click.Command, ...] = (plugin_group, trust_group, rollback, config_group, serve, agent, ui, demo)
PLUGIN_COMMANDS: tuple[click.Command, ...] = (init, keygen, pack_cmd, verify_cmd, install, list_cmd)


@click.group(cls=MfxGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", type=click.Path(path_type=Path), envvar="MFX_HOME",
              help="Daemon home (socket, state). Default: $MFX_HOME or ~/.local/state/mfx.")
@click.option("--server", envvar="MFX_SERVER",
              help="Talk to a daemon's TCP listener instead of the socket: HOST:PORT or https://HOST:PORT "
                   "for its --listen (HTTPS, verified against HOME/tls/ca.crt), http://HOST:PORT for its "
                   "--listen-http.")
@click.option("--token", envvar="MFX_TOKEN", help="Bearer token for --server (default: read HOME/token).")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, server: str | None, token: str | None) -> None:
    """mfx: a declarative control plane for a plugin-based music player.

    \b
    Start the daemon, then manage it the way you use kubectl:
      mfx serve &
      mfx apply -f manifests/
      mfx wait --for=condition=Ready pm --all --timeout=60s
      mfx get all
      mfx describe pm local-music
    """
    ctx.obj = CliContext(home=home, server=server, token=token)
    ctx.call_on_close(ctx.obj.close)


def build_cli() -> click.Group:
    """The ``mfx`` group with every command added (idempotent), in the order --help lists them."""
    for command in PLUGIN_COMMANDS:
        plugin_group.add_command(command)
    for command in (*KUBECTL_VERBS, *OPERATIONS, *PLAYER, *TOOLS):
        cli.add_command(command)
    return cli


def top_help(width: int) -> str:
    """``mfx --help`` as click prints it when the help is ``width`` columns wide."""
    cli = build_cli()
    ctx = click.Context(cli, info_name="mfx", terminal_width=width, **cli.context_settings)
    return cli.get_help(ctx) + "\n"
