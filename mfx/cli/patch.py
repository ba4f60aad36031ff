"""``mfx patch``: change fields of a live object, like ``kubectl patch``."""

from __future__ import annotations

import click

from mfx.cli import output
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.refs import parse_refs
from mfx.errors import BadRequestError, MfxError

PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json"}


@click.command()
@click.argument("resources", nargs=-1, required=True)
@click.option("-p", "--patch", "patch_text", required=True, help="The patch, as JSON.")
@click.option("--type", "patch_type", type=click.Choice(sorted(PATCH_TYPES)), default="merge", show_default=True,
              help="merge: a JSON merge patch (RFC 7386); json: a JSON patch (RFC 6902).")
@click.option("--subresource", type=click.Choice(["status"]), help="Patch the status instead of the object.")
@pass_cli
def patch(ctx: CliContext, resources: tuple[str, ...], patch_text: str, patch_type: str,
          subresource: str | None) -> None:
    """Update fields of an object in place (the result is validated like apply).

    \b
    Examples:
      mfx patch pm local-music -p '{"spec":{"config":{"folders":["/srv/music"]}}}'
      mfx patch pm/hello --type json -p '[{"op":"replace","path":"/spec/suspend","value":true}]'
    """
    from mfx.api.yaml_loader import load_body

    refs = parse_refs(resources)
    # The daemon's own strict reader: a duplicate key is refused here, not silently dropped.
    try:
        body = load_body(patch_text.encode(), yaml_allowed=True)
    except MfxError as error:
        text = str(error)
        raise BadRequestError(text.replace("the body", "--patch", 1) if "the body" in text
                              else f"--patch: {text}") from None
    for kind, name in refs:
        if name is None:
            raise BadRequestError(f"name the {kind.plural} to patch (example: mfx patch {kind.plural} NAME -p ...)")
        before = ctx.client.get(kind, name)
        after = ctx.client.patch(kind, name, body, subresource=subresource or "", patch_type=PATCH_TYPES[patch_type])
        unchanged = after["metadata"].get("resourceVersion") == before["metadata"].get("resourceVersion")
        click.echo(f"{output.object_ref(kind, name)} patched{' (no change)' if unchanged else ''}")
