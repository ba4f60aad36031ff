"""What the daemon serves and is: ``mfx explain`` (a kind's schema), ``mfx api-resources``, ``mfx version``."""

from __future__ import annotations

import click

from mfx.api.kinds import USER_KINDS, resolve_kind
from mfx.api.schema import load_schemas
from mfx.cli import output, versions
from mfx.cli.context import CliContext, pass_cli


@click.command()
@click.argument("field_path")
@click.option("--recursive", is_flag=True, help="Print every nested field.")
def explain(field_path: str, recursive: bool) -> None:
    """Describe a kind or one of its fields, from the CRD schema.

    \b
    Examples:
      mfx explain pm
      mfx explain pm.spec.healthCheck
      mfx explain gitsource.spec.ref
    """
    kind_text, _, path = field_path.partition(".")
    kind = resolve_kind(kind_text)
    click.echo(load_schemas().explain(kind.kind, path, recursive=recursive))


@click.command("api-resources")
@pass_cli
def api_resources(ctx: CliContext) -> None:
    """List the kinds the daemon serves, with their short names.

    \b
    Examples:
      mfx api-resources
      mfx api-resources | grep -i plugin       # the short names to type for a kind
    """
    client = ctx.client
    rows = []
    for group_path, api_version in (("/api/v1", "v1"), (f"/apis/{USER_KINDS[0].group}/{USER_KINDS[0].version}",
                                                        USER_KINDS[0].api_version)):
        listing = client.request("GET", group_path)
        for resource in listing.get("resources", []):
            if "/" in resource["name"]:
                continue
            rows.append([resource["name"], ",".join(resource.get("shortNames") or []), api_version,
                         str(resource.get("namespaced", False)).lower(), resource["kind"]])
    output.render_table(["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"], rows)


@click.command()
@click.option("--client", "client_only", is_flag=True, help="Only the client version.")
@pass_cli
def version(ctx: CliContext, client_only: bool) -> None:
    """Print the client and daemon versions.

    \b
    Examples:
      mfx version
      mfx version --client      # without asking the daemon
    """
    versions.show(ctx, client_only=client_only)
