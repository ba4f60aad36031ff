"""``mfx serve``: run the daemon in the foreground."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mfx.cli.daemon_options import no_pin_threads
from mfx.cli.durations import DURATION, POSITIVE_DURATION
from mfx.logs import configure_logging


@click.command()
@click.option("--home", "home", type=click.Path(path_type=Path), envvar="MFX_HOME",
              help="State directory (socket, database, plugins). Default: $MFX_HOME or ~/.local/state/mfx.")
@click.option("--listen", metavar="HOST:PORT",
              help="Also serve the API over HTTPS on TCP, for kubectl ('mfx config kubeconfig') and "
                   "'mfx --server HOST:PORT'. The certificate is signed by the daemon's own CA "
                   "(HOME/tls/ca.crt); requests need the bearer token written to HOME/token.")
@click.option("--listen-http", "listen_http", metavar="HOST:PORT",
              help="Also serve the API over plain HTTP on TCP, for scripts and curl ('mfx --server "
                   "http://HOST:PORT'); requests still need the bearer token, which travels in clear "
                   "text: keep this on 127.0.0.1 or a network you trust. kubectl sends no token over "
                   "plain HTTP: point it at --listen.")
@click.option("--metrics-address", metavar="HOST:PORT", help="Serve /metrics on TCP without a token, for Prometheus.")
@click.option("--ui-address", "ui_address", metavar="HOST:PORT",
              help="Serve the web UI on TCP (open it with 'mfx ui --open'). On a loopback address "
                   "it needs no sign-in; on any other address the page asks for the API token "
                   "(HOME/token) and keeps an HttpOnly session cookie.")
@click.option("--plugin-path", "plugin_paths", multiple=True, type=click.Path(path_type=Path),
              help="Directory holding plugins as NAME/ subdirectories (repeatable).")
@click.option("--allow-unsigned", "allow_unsigned", multiple=True,
              type=click.Choice(["local", "first-party", "none"]),
              help="Sources an unsigned plugin package may come from (repeatable). local: uploaded over "
                   "the unix socket; first-party: identical to the plugin's folder in --plugin-path. "
                   "Default: first-party, plus local while no key is trusted (mfx trust add).")
@click.option("--workers", default=4, show_default=True, help="Reconcile workers per controller.")
@click.option("--resync", type=POSITIVE_DURATION, default="10m", show_default=True,
              help="Periodic resync of every object.")
@click.option("--no-file-tap", "no_file_tap", is_flag=True,
              help="Without a sound card, do not play into an ALSA file tap under HOME/audio (by "
                   "default the daemon sets one up when ALSA_CONFIG_PATH is not set; a set "
                   "ALSA_CONFIG_PATH always wins).")
@click.option("--store", "store_url", metavar="URL",
              help="Where objects live. Default: the SQLite file HOME/state.db. "
                   "etcd://HOST:PORT[,HOST:PORT...][/PREFIX] keeps them in an etcd v3 cluster (keys under "
                   "PREFIX, default /mfx), where several 'mfx serve' processes can serve the same objects.")
@click.option("--etcd-cacert", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="CA certificate that signed the etcd members' certificates: talk to etcd over TLS.")
@click.option("--etcd-cert", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Client certificate for etcd (with --etcd-key), when etcd asks for one.")
@click.option("--etcd-key", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Private key of --etcd-cert.")
@click.option("--etcd-compaction-interval", "etcd_compaction", type=DURATION, default="5m", show_default=True,
              help="With --store etcd://: how often to compact etcd's history, up to the revision of one "
                   "interval before (as kube-apiserver does), so etcd's database does not fill its quota. "
                   "Several daemons on one etcd compact once per interval between them; 0 never compacts.")
@click.option("--node-name", "node_name", metavar="NAME",
              help="Name of this machine's Node ('mfx get nodes'). Default: the host name.")
@click.option("--node-labels", "node_labels", metavar="KEY=VALUE,...", default="",
              help="Labels to put on this machine's Node, besides kubernetes.io/hostname, "
                   "kubernetes.io/os and kubernetes.io/arch (e.g. room=kitchen,zone=ground).")
@click.option("--node-lease-seconds", default=40, show_default=True, type=click.IntRange(min=1),
              help="How long this machine's Node Lease holds after each renewal (renewed every quarter of it).")
@click.option("--leader-lease-seconds", default=15.0, show_default=True, type=click.FloatRange(min=1.0),
              help="How long the 'mfx-controllers' leader Lease holds after each renewal: another "
                   "daemon on the same store takes over this long after the leader dies. The leader "
                   "renews every 2/15 of it and gives up after 2/3 of it without a renewal.")
@click.option("--no-local-agent", "no_local_agent", is_flag=True,
              help="Serve only the control plane (API, store, fleet-wide controllers): run no plugins, "
                   "audio sinks, player or node agent here; each node runs 'mfx agent --server' instead.")
@no_pin_threads
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
def serve(home: Path | None, listen: str | None, listen_http: str | None, metrics_address: str | None,
          ui_address: str | None, plugin_paths: tuple[Path, ...], allow_unsigned: tuple[str, ...], workers: int,
          resync: float, no_file_tap: bool, store_url: str | None, etcd_cacert: Path | None, etcd_cert: Path | None,
          etcd_key: Path | None, etcd_compaction: float, node_name: str | None, node_labels: str, node_lease_seconds: int,
          leader_lease_seconds: float, no_local_agent: bool, no_pin_threads: bool, log_format: str,
          log_level: str) -> None:
    """Run the mfx daemon in the foreground (SIGTERM or Ctrl-C stops it cleanly).

    The audio engine runs beside it as a process of its own (HOME/engine: socket, pid, log),
    started for the first AudioSink or song.
    Stopping or killing the daemon leaves the music playing; the next 'mfx serve' on the same
    home adopts the engine without a gap. Under systemd use KillMode=process for that.

    \b
    Examples:
      mfx serve
      mfx serve --plugin-path plugins --metrics-address 127.0.0.1:9464
      mfx serve --listen 127.0.0.1:6443      # HTTPS, for kubectl; see 'mfx config kubeconfig'
      mfx serve --listen 127.0.0.1:6443 --listen-http 127.0.0.1:8080   # and plain HTTP for curl
      mfx serve --allow-unsigned none        # every plugin package must be signed by a trusted key
      mfx serve --ui-address 127.0.0.1:8765  # the web UI; 'mfx ui --open' opens it
      mfx serve --no-file-tap                # no sound card: fail to open rather than write a file
      mfx serve --store etcd://etcd1:2379,etcd2:2379,etcd3:2379   # objects in etcd
      mfx serve --node-name kitchen --node-labels room=kitchen,floor=ground   # see 'mfx get nodes'
      mfx serve --no-local-agent --listen 0.0.0.0:6443   # control plane only; nodes run 'mfx agent'
    """
    import anyio

    from mfx.cli.node_labels import check_node_name, parse_node_labels
    from mfx.collector import YOUNG_COLLECTION_THRESHOLD
    from mfx.home import default_home
    from mfx.server.daemon import DaemonConfig, DaemonContext, run_daemon
    from mfx.server.services import control_plane_services, default_services
    from mfx.store.etcd_keys import EtcdTLS

    # Checked before anything changes: a typo is a usage error, not a daemon that half started.
    checked_name, labels = check_node_name(node_name), parse_node_labels(node_labels)

    configure_logging(log_format, log_level)
    if (etcd_cert is None) != (etcd_key is None):
        raise click.UsageError("--etcd-cert and --etcd-key go together: give both, or neither")
    if store_url is not None and not store_url.startswith("etcd://"):
        raise click.UsageError(f"--store {store_url!r}: expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX]")
    home = (home or default_home()).resolve()
    # Plugins get MFX_HOME from this process (their configuration may name $MFX_HOME/music),
    # so it must be the home this daemon serves, however it was given.
    os.environ["MFX_HOME"] = str(home)

    def on_ready(context: DaemonContext) -> None:
        tap = context.file_tap
        if tap is not None:
            click.echo(f"No sound card: mfx plays into the ALSA file tap {tap.output}\n"
                       f"  listen with: {tap.listen_command()}\n"
                       "  ('mfx describe sink default' shows it; 'mfx serve --no-file-tap' turns it off)")

    extra_listeners = []
    if ui_address:
        from mfx.webui.listener import ui_listener

        extra_listeners.append(ui_listener(ui_address))
    config = DaemonConfig(
        home=home,
        listen=listen,
        listen_http=listen_http,
        metrics_address=metrics_address,
        extra_listeners=extra_listeners,
        plugin_paths=[p.resolve() for p in plugin_paths],
        allow_unsigned_sources=allow_unsigned or None,
        workers=workers,
        resync_seconds=resync,
        file_tap=not no_file_tap and not no_local_agent,
        freeze_startup_objects=True,  # this process is only the daemon
        young_collection_threshold=YOUNG_COLLECTION_THRESHOLD,
        pin_interpreter_threads=not no_pin_threads,
        engine_outlives_daemon=True,  # music goes on across an upgrade or a crash of the daemon
        store_url=store_url,
        etcd_tls=EtcdTLS(etcd_cacert, etcd_cert, etcd_key),
        etcd_compaction_seconds=etcd_compaction,
        node_name=checked_name,
        node_labels=labels,
        node_lease_seconds=node_lease_seconds,
        # client-go's proportions (15 s lease, 10 s renew deadline, 2 s retry period), scaled.
        leader_lease_seconds=leader_lease_seconds,
        leader_renew_deadline=leader_lease_seconds * 2 / 3,
        leader_retry_period=leader_lease_seconds * 2 / 15,
    )
    services = control_plane_services() if no_local_agent else default_services()
    anyio.run(lambda: run_daemon(config, services=services, on_ready=on_ready))
