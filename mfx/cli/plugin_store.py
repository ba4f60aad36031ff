"""The daemon's plugin store, over its API: ``mfx plugin install`` and ``mfx plugin list``.

The daemon keeps the packages in ``$MFX_HOME/plugins/<name>/<version>``; progress lines go
to stderr, results to stdout.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import click
import yaml

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.cli import output
from mfx.cli.api_paths import PACKAGES_PATH
from mfx.cli.context import CliContext, pass_cli
from mfx.errors import NotFoundError, ValidationError


def _packed_name(data: bytes) -> str | None:
    """The plugin name in a package's manifest, best effort (only to tell created from configured)."""
    from mfx.api import validation
    from mfx.api.packaging import MANIFEST

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            doc = yaml.safe_load(member.read(1024 * 1024)) if member is not None else None
    except (tarfile.TarError, OSError, EOFError, KeyError, yaml.YAMLError):
        return None
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and not validation.dns1123_subdomain_problem(name) else None


@click.command("install")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", metavar="local|first-party",
              help="Where an unsigned package comes from; the daemon checks the claim and its own "
                   "policy (mfx serve --allow-unsigned): local is accepted over the unix socket while "
                   "no key is trusted, first-party when the files equal the plugin in --plugin-path.")
@pass_cli
def install(ctx: CliContext, file: Path, source: str | None) -> None:
    """Upload a package to the daemon, which verifies, unpacks and applies it.

    The daemon checks the package against its trust store and policy, unpacks it into
    $MFX_HOME/plugins/NAME/VERSION/ and creates or updates the PluginManifest (annotated
    with the package digest). A version already installed with other contents is refused.

    \b
    Examples:
      mfx plugin install my-gain-0.1.0.tgz
      mfx plugin install my-gain-0.1.0.tgz --source local      # unsigned, for development
    """
    from mfx.api.packaging import DIGEST_ANNOTATION, MANIFEST, SIGNER_ANNOTATION
    from mfx.cli.manifests import in_package

    data = file.read_bytes()
    client = ctx.client
    output.progress(f"uploading {file} ({output.human_size(len(data))}) to the daemon at {client.endpoint.describe()}")
    params = {"filename": file.name, **({"source": source} if source else {})}
    before: dict[str, Any] | None = None
    name = _packed_name(data)
    if name:
        try:
            before = client.get(PLUGIN_MANIFEST, name)
        except NotFoundError:
            pass
    try:
        obj = client.request("POST", PACKAGES_PATH, params=params, body=data, content_type="application/gzip")
    except ValidationError as error:
        raise in_package(error, file, MANIFEST) from None
    meta, spec = obj["metadata"], obj["spec"]
    annotations = meta.get("annotations") or {}
    signer = annotations.get(SIGNER_ANNOTATION)
    how = f"signed by {signer!r}" if signer else f"unsigned, from source {source!r}"
    if before is None:
        verb = "created"
    elif before["metadata"]["resourceVersion"] == meta["resourceVersion"]:
        verb = "unchanged"
    else:
        verb = "configured"
    click.echo(f"{output.object_ref(PLUGIN_MANIFEST, meta['name'])} {verb}: version {spec['version']}, "
               f"{annotations.get(DIGEST_ANNOTATION)}, {how}")
    click.echo(f"next: mfx wait --for=condition=Ready pm/{meta['name']} --timeout=60s")


@click.command("list")
@pass_cli
def list_cmd(ctx: CliContext) -> None:
    """List the installed packages (the daemon's plugin store) and which version each plugin uses.

    \b
    Example:
      mfx plugin list
    """
    client = ctx.client
    packages = client.request("GET", PACKAGES_PATH)["items"]
    if not packages:
        click.echo("No packages installed; install one with 'mfx plugin install FILE'.", err=True)
        return
    in_use = {o["metadata"]["name"]: o["spec"].get("version") for o in client.list(PLUGIN_MANIFEST)["items"]}
    rows = [[p["name"], p["version"], in_use.get(p["name"]) == p["version"], p.get("digest")] for p in packages]
    output.render_table(["NAME", "VERSION", "IN USE", "DIGEST"], rows)
