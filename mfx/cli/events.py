"""``mfx events``: the events of every object, or of one, oldest first; with ``-w``, new ones as they come."""

from __future__ import annotations

from typing import Any

import click

from mfx.api.kinds import resolve_kind
from mfx.api.objects import Obj
from mfx.cli import output
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.event_rows import event_age, event_kind, event_order


@click.command()
@click.option("--for", "for_ref", metavar="KIND/NAME", help="Only events about this object.")
@click.option("-w", "--watch", is_flag=True, help="Keep printing new events.")
@click.option("--types", help="Comma-separated event types to show (Normal,Warning).")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "yaml", "json"]), default="table")
@pass_cli
def events(ctx: CliContext, for_ref: str | None, watch: bool, types: str | None, fmt: str) -> None:
    """List events, oldest first; with -w, keep printing new ones under them.

    \b
    Examples:
      mfx events
      mfx events --for pm/local-music -w
      mfx events --types Warning -o yaml
    """
    client = ctx.client
    kind_of_events = event_kind()
    field_selector = None
    if for_ref:
        kind_text, _, name = for_ref.partition("/")
        kind = resolve_kind(kind_text)
        field_selector = f"involvedObject.kind={kind.kind}" + (f",involvedObject.name={name}" if name else "")
    listing = client.list(kind_of_events, field_selector=field_selector)
    wanted = {t.strip().lower() for t in types.split(",")} if types else None
    items = [e for e in listing["items"] if wanted is None or str(e.get("type", "")).lower() in wanted]
    items.sort(key=event_order)
    if fmt != "table":
        output.print_objects(items, fmt, single=False)
        return
    headers = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]

    def row(event: Obj) -> list[Any]:
        involved = event.get("involvedObject") or {}
        return [event_age(event), event.get("type"), event.get("reason"),
                f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}", event.get("message")]

    texts = [output.cell_texts(row(e)) for e in items]
    widths = output.column_widths(headers, texts)
    if items:
        click.echo("\n".join(output.format_row(line, widths) for line in [headers, *texts]))
    elif not watch:
        click.echo("No events found.", err=True)
    if watch:
        header_printed = bool(items)
        for event in client.watch(kind_of_events, resource_version=listing["metadata"]["resourceVersion"],
                                  field_selector=field_selector):
            obj = event["object"]
            if event["type"] == "DELETED" or (wanted is not None and str(obj.get("type", "")).lower() not in wanted):
                continue
            # New events line up under the ones listed, widening a column only when they must.
            cells = output.cell_texts(row(obj))
            widths = [max(w, output.display_width(c)) for w, c in zip(widths, cells, strict=True)]
            if not header_printed:
                click.echo(output.format_row(headers, widths))
                header_printed = True
            click.echo(output.format_row(cells, widths))
