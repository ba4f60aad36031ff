"""``mfx tui``: the full-screen terminal player.

textual and the TUI's modules are imported when the command runs, never at ``mfx`` start.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mfx.cli.context import CliContext, pass_cli
from mfx.errors import MfxError

if TYPE_CHECKING:
    from mfx.tui.client import Connection

KEYS_HELP = """\b
Keys (? shows them in the player):
  1 2 / 4 5 6    Library, Playlists, Search, Queue, Now playing, Plugins
  space          play / pause          [ ]   previous / next song
  - =            volume down / up      p     next play mode      m  mute
  , .            seek back / forward 5 s
  h j k l, arrows  move; Enter / l opens or plays; Esc / h goes back
  d  K  J        queue: remove, move up, move down
  r  s           plugins: restart, suspend / resume
  t              next theme (UIExtension plugins add themes)
  q              quit"""


def _from_kubeconfig(path: Path) -> dict[str, Any]:
    import yaml

    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise MfxError(f"cannot read kubeconfig {path}: {error}; write one with `mfx config kubeconfig`") from None
    wanted = document.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in document.get("contexts") or []}
    context = contexts.get(wanted) or next(iter(contexts.values()), {})
    clusters = {c.get("name"): c.get("cluster") or {} for c in document.get("clusters") or []}
    users = {u.get("name"): u.get("user") or {} for u in document.get("users") or []}
    cluster = clusters.get(context.get("cluster")) or {}
    if not cluster.get("server"):
        raise MfxError(f"kubeconfig {path} names no server for context {wanted!r}; "
                       "write one with `mfx config kubeconfig`")
    ca = cluster.get("certificate-authority-data")
    return {"url": str(cluster["server"]).rstrip("/"), "token": (users.get(context.get("user")) or {}).get("token"),
            "ca_data": base64.b64decode(ca).decode() if ca else None}


def connection_for(ctx: CliContext, kubeconfig: Path | None) -> Connection:
    """Where ``mfx tui`` connects: a kubeconfig if given, else as every mfx command does."""
    from mfx.cli.client import Endpoint
    from mfx.tui.client import Connection

    if kubeconfig is not None:
        return Connection(**_from_kubeconfig(kubeconfig))
    endpoint = Endpoint.from_env(ctx.home, ctx.server, ctx.token)
    return Connection(socket=endpoint.socket, url=endpoint.url, token=endpoint.token, ca_file=endpoint.ca_file)


@click.command("tui", epilog=KEYS_HELP)
@click.option("--kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              help="Connect with this kubeconfig (from `mfx config kubeconfig`) instead of --home/--server.")
@pass_cli
def tui(ctx: CliContext, kubeconfig: Path | None) -> None:
    """Full-screen terminal player and plugin console.

    Library, playlists, type-ahead search, the queue, now playing with lyrics, and every
    plugin's state, live. It stays up across daemon restarts (the status line says when it
    reconnects). UIExtension plugins add panels, keys and themes.

    \b
    Examples:
      mfx tui                                   # the daemon of $MFX_HOME (unix socket)
      mfx --server 10.0.0.5:6443 tui            # a remote daemon's --listen (token + CA)
      mfx tui --kubeconfig ~/.kube/mfx.yaml     # what `mfx config kubeconfig` wrote
    """
    connection = connection_for(ctx, kubeconfig)
    from mfx.tui.app import MfxTui

    MfxTui(connection).run()
