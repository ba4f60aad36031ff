"""``mfx trust``: the public keys the daemon trusts to sign plugin packages (its trust store, over the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mfx.cli import output
from mfx.cli.api_paths import TRUSTED_KEYS_PATH
from mfx.cli.context import CliContext, pass_cli
from mfx.errors import BadRequestError


@click.group("trust")
def trust_group() -> None:
    """Manage the public keys the daemon trusts to sign plugin packages.

    \b
    Examples:
      mfx trust add alice alice.pub
      mfx trust list
      mfx trust remove alice
    """


def _key_row(key: dict[str, Any]) -> list[Any]:
    return [key["metadata"]["name"], key.get("fingerprint")]


@trust_group.command("add")
@click.argument("name")
@click.argument("keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_cli
def trust_add(ctx: CliContext, name: str, keyfile: Path) -> None:
    """Trust the public key in KEYFILE (PEM, from 'mfx plugin keygen') under NAME.

    \b
    Example:
      mfx trust add alice alice.pub
    """
    from mfx.api.signing import fingerprint, load_public_key

    pem = keyfile.read_bytes()
    if b"PRIVATE KEY-----" in pem:
        raise BadRequestError(
            f"{keyfile} holds a private key; give the public key (the PUBLIC file of "
            "'mfx plugin keygen') and keep the private one secret")
    key_fp = fingerprint(load_public_key(keyfile))
    key = ctx.client.request("POST", TRUSTED_KEYS_PATH, body={"name": name, "publicKeyPem": pem.decode()})
    click.echo(f'trusted key "{key["metadata"]["name"]}" added ({key.get("fingerprint", key_fp)})')


@trust_group.command("list")
@pass_cli
def trust_list(ctx: CliContext) -> None:
    """List the trusted keys with their fingerprints.

    \b
    Example:
      mfx trust list
    """
    items = ctx.client.request("GET", TRUSTED_KEYS_PATH)["items"]
    if not items:
        click.echo("No trusted keys; add one with 'mfx trust add NAME KEYFILE'.", err=True)
        return
    output.render_table(["NAME", "FINGERPRINT"], [_key_row(k) for k in items])


@trust_group.command("remove")
@click.argument("name")
@pass_cli
def trust_remove(ctx: CliContext, name: str) -> None:
    """Stop trusting the key NAME (installed plugins stay; new packages it signed are refused).

    \b
    Example:
      mfx trust remove alice
    """
    ctx.client.request("DELETE", f"{TRUSTED_KEYS_PATH}/{name}")
    click.echo(f'trusted key "{name}" removed')
