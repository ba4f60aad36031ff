"""``mfx agent``: run a node's controllers against a remote API server, in the foreground."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mfx.cli.daemon_options import no_pin_threads
from mfx.logs import configure_logging


@click.command(short_help="Run this node's plugins and player against an API server.")
@click.option("--server", "servers", metavar="URL[,URL...]",
              help="The API server(s): https://HOST:PORT ('mfx serve --listen'), http://HOST:PORT "
                   "('--listen-http') or unix:///PATH/mfx.sock. Several are tried in turn: when one "
                   "cannot be reached the next takes over. Overrides the kubeconfig's server.")
@click.option("--token-file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="File holding the bearer token (a copy of the API server's HOME/token).")
@click.option("--kubeconfig", type=click.Path(path_type=Path, exists=True, dir_okay=False), metavar="FILE",
              help="Take server, CA and credentials from a kubeconfig's current context "
                   "('mfx config kubeconfig' writes one; a Kubernetes cluster's works too).")
@click.option("--ca-file", type=click.Path(path_type=Path, exists=True, dir_okay=False), metavar="FILE",
              help="CA certificate to verify https servers with (a copy of the API server's "
                   "HOME/tls/ca.crt). Default: the kubeconfig's, else the system's CAs.")
@click.option("--node-name", "node_name", required=True, metavar="NAME",
              help="Name of this machine's Node ('mfx get nodes').")
@click.option("--node-labels", "node_labels", metavar="KEY=VALUE,...", default="",
              help="Labels to put on the Node, besides kubernetes.io/hostname, os and arch.")
@click.option("--node-lease-seconds", default=40, show_default=True, type=click.IntRange(min=1),
              help="How long the Node's Lease holds after each renewal (renewed every quarter of it).")
@click.option("--home", "home", type=click.Path(path_type=Path), envvar="MFX_HOME",
              help="The agent's state directory (its socket, plugins, logs, audio engine). "
                   "Default: $MFX_HOME or ~/.local/state/mfx; not the API server's home.")
@click.option("--plugin-path", "plugin_paths", multiple=True, type=click.Path(path_type=Path),
              help="Directory holding plugins as NAME/ subdirectories (repeatable).")
@click.option("--workers", default=4, show_default=True, help="Reconcile workers per controller.")
@click.option("--no-file-tap", "no_file_tap", is_flag=True,
              help="Without a sound card, do not play into an ALSA file tap under HOME/audio.")
@no_pin_threads
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
def agent(servers: str | None, token_file: Path | None, kubeconfig: Path | None, ca_file: Path | None,
          node_name: str, node_labels: str, node_lease_seconds: int, home: Path | None,
          plugin_paths: tuple[Path, ...], workers: int, no_file_tap: bool, no_pin_threads: bool, log_format: str,
          log_level: str) -> None:
    """Run this machine's node agent: its plugins, audio sinks and player, with every object
    read and written through a remote API server (it holds no store credentials).

    The agent registers its Node and renews the Node's Lease. Cut off from every API server it
    keeps its plugins and its music running and retries with backoff; when a server answers
    again it picks up where it was, without restarting what is healthy. Its own socket in
    HOME serves the player: 'mfx --home HOME now', 'mfx --home HOME tui'.

    Run one agent per control plane whose 'mfx serve' has --no-local-agent: until plugins
    are placed on nodes, every agent runs every plugin.

    \b
    Examples:
      mfx serve --no-local-agent --listen 0.0.0.0:6443          # on the control plane
      mfx agent --server https://cp:6443 --ca-file ca.crt --token-file token --node-name kitchen
      mfx agent --server https://cp1:6443,https://cp2:6443 --ca-file ca.crt --token-file token \\
                --node-name kitchen --node-labels room=kitchen
      mfx agent --kubeconfig ~/.kube/config --node-name kitchen  # kubeconfig from 'mfx config kubeconfig'
    """
    import anyio

    from mfx.cli.agent_connection import agent_connection
    from mfx.cli.node_labels import check_node_name, parse_node_labels
    from mfx.collector import YOUNG_COLLECTION_THRESHOLD
    from mfx.errors import MfxError
    from mfx.home import default_home
    from mfx.server.agent_daemon import run_agent
    from mfx.server.daemon import DaemonConfig

    checked_name, labels = check_node_name(node_name), parse_node_labels(node_labels)
    home = (home or default_home()).resolve()
    try:
        connection = agent_connection(servers, token_file, kubeconfig, ca_file, home)
    except MfxError as error:
        raise click.UsageError(str(error)) from None
    configure_logging(log_format, log_level)
    # Plugins get MFX_HOME from this process: it must be the home this agent serves.
    os.environ["MFX_HOME"] = str(home)
    config = DaemonConfig(
        home=home,
        plugin_paths=[p.resolve() for p in plugin_paths],
        workers=workers,
        file_tap=not no_file_tap,
        freeze_startup_objects=True,  # this process is only the agent
        young_collection_threshold=YOUNG_COLLECTION_THRESHOLD,
        pin_interpreter_threads=not no_pin_threads,
        engine_outlives_daemon=True,  # music goes on across a restart of the agent
        node_name=checked_name,
        node_labels=labels,
        node_lease_seconds=node_lease_seconds,
    )
    anyio.run(lambda: run_agent(config, connection))
