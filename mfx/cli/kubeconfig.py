"""``mfx config kubeconfig``: a kubeconfig for kubectl and the Kubernetes client libraries."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from mfx.cli.context import CliContext, pass_cli
from mfx.errors import MfxError
from mfx.home import default_home

CONTEXT = "mfx"


def _server_url(home: Path, server: str | None) -> str:
    if server:
        return server if "://" in server else f"https://{server}"
    address_file = home / "listen-address"
    if not address_file.exists():
        raise MfxError(
            f"the daemon of {home} has no HTTPS listener (kubectl sends its token only over TLS, "
            "so --listen-http does not serve it); start it with "
            "'mfx serve --listen 127.0.0.1:6443', or pass --server URL"
        )
    address = address_file.read_text().strip()
    host, _, port = address.rpartition(":")
    if host in ("0.0.0.0", "[::]", ""):
        host = "127.0.0.1"
    return f"https://{host}:{port}"


def kubeconfig(home: Path, server: str | None = None) -> dict[str, Any]:
    """The kubeconfig document for the daemon of ``home`` (its token and TLS CA)."""
    url = _server_url(home, server)
    token_file = home / "token"
    if not token_file.exists():
        raise MfxError(f"no token in {token_file}: the daemon writes it when started with --listen")
    cluster: dict[str, Any] = {"server": url}
    ca_file = home / "tls" / "ca.crt"
    if url.startswith("https://"):
        if not ca_file.exists():
            raise MfxError(f"no CA certificate in {ca_file}: the daemon writes it when started with --listen")
        cluster["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": {"token": token_file.read_text().strip()}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
        "current-context": CONTEXT,
        "preferences": {},
    }


@click.group("config")
def config_group() -> None:
    """Configuration for other clients of the daemon."""


@config_group.command("kubeconfig")
@click.option("--server", "server", metavar="URL",
              help="API address to put in the kubeconfig. Default: https:// + the address the daemon "
                   "listens on (HOME/listen-address).")
@click.option("--output", "output", type=click.Path(path_type=Path), metavar="FILE",
              help="Write the kubeconfig to FILE (mode 0600) instead of stdout.")
@pass_cli
def kubeconfig_cmd(ctx: CliContext, server: str | None, output: Path | None) -> None:
    """Print a kubeconfig that points kubectl at the daemon's TCP listener.

    The daemon must run with --listen; the kubeconfig carries its bearer token and the CA
    of its TLS certificate (kubectl sends credentials only over https).

    \b
    Examples:
      mfx serve --listen 127.0.0.1:6443 &
      mfx config kubeconfig > ~/.kube/mfx.yaml && chmod 600 ~/.kube/mfx.yaml
      kubectl --kubeconfig ~/.kube/mfx.yaml get pluginmanifests
      KUBECONFIG=~/.kube/mfx.yaml kubectl apply -f manifests/
    """
    home = ctx.home or default_home()
    server = server or (f"https://{ctx.server}" if ctx.server and "://" not in ctx.server else ctx.server)
    document = kubeconfig(home, server)
    if document["clusters"][0]["cluster"]["server"].startswith("http://"):
        click.echo("warning: kubectl sends no credentials over plain http (only the Python client does); "
                   "use an https:// server for kubectl", err=True)
    text = yaml.safe_dump(document, sort_keys=False)
    if output is None:
        sys.stdout.write(text)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(output, 0o600)
    click.echo(f"kubeconfig written to {output}", err=True)
