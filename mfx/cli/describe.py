"""``mfx describe``: an object in detail, its spec, status, conditions and recent events."""

from __future__ import annotations

import io
import re
from typing import Any

import click

from mfx.api.kinds import KindInfo
from mfx.api.objects import LAST_APPLIED_ANNOTATION, Obj, human_age
from mfx.cli import output
from mfx.cli.client import Client
from mfx.cli.completers import complete_resources
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.event_rows import event_age, event_kind, event_order
from mfx.cli.refs import parse_refs


def _title(key: str) -> str:
    """``entryPoint`` -> ``Entry Point``, as kubectl describe prints field names."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key)
    return words[:1].upper() + words[1:]


def _describe_value(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            title = _title(key)
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{title}:")
                lines.extend(_describe_value(item, indent + 1))
            else:
                lines.append(f"{pad}{title}:  {output.cell_text(item) if item not in ({}, []) else '<none>'}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                sub = _describe_value(item, indent + 1)
                if sub:
                    sub[0] = pad + "  " + sub[0].lstrip()
                    lines.extend(sub)
            else:
                lines.append(f"{pad}  {item}")
    return lines


@click.command()
@click.argument("resources", nargs=-1, required=True, shell_complete=complete_resources)
@pass_cli
def describe(ctx: CliContext, resources: tuple[str, ...]) -> None:
    """Show an object in detail: spec, conditions and recent events.

    The events are those of the object as it is now (its uid): an object deleted and created
    again under the same name starts without the old one's events (mfx events lists them all).

    \b
    Examples:
      mfx describe pm local-music
      mfx describe sink/default
    """
    client = ctx.client
    first = True
    for kind, name in parse_refs(resources):
        objects = [client.get(kind, name)] if name else client.list(kind)["items"]
        for obj in objects:
            if not first:
                click.echo("\n")
            first = False
            click.echo(describe_text(client, kind, obj))


def describe_text(client: Client, kind: KindInfo, obj: Obj) -> str:
    meta = obj.get("metadata", {})
    lines = [
        f"Name:         {meta.get('name')}",
        "Labels:       " + (", ".join(f"{k}={v}" for k, v in (meta.get("labels") or {}).items()) or "<none>"),
    ]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED_ANNOTATION}
    lines.append("Annotations:  " + (", ".join(f"{k}: {v}" for k, v in annotations.items()) or "<none>"))
    lines += [
        f"API Version:  {obj.get('apiVersion')}",
        f"Kind:         {obj.get('kind')}",
        "Metadata:",
        f"  Creation Timestamp:  {meta.get('creationTimestamp')}",
        f"  Generation:          {meta.get('generation')}",
        f"  Resource Version:    {meta.get('resourceVersion')}",
        f"  UID:                 {meta.get('uid')}",
    ]
    if meta.get("deletionTimestamp"):
        lines.append(f"  Deletion Timestamp:  {meta['deletionTimestamp']}")
    if meta.get("finalizers"):
        lines.append("  Finalizers:          " + ", ".join(meta["finalizers"]))
    lines.append("Spec:")
    lines.extend(_describe_value(obj.get("spec") or {}, 1))
    status = dict(obj.get("status") or {})
    conditions = status.pop("conditions", None) or []
    lines.append("Status:")
    lines.extend(_describe_value(status, 1))
    if conditions:
        lines.append("  Conditions:")
        rows = [[c.get("type"), c.get("status"), c.get("reason"), human_age(c.get("lastTransitionTime")),
                 c.get("message")] for c in conditions]
        lines.extend(_table_lines(["Type", "Status", "Reason", "Age", "Message"], rows, indent=4))
    # Events belong to one incarnation of the object: a re-created object of the same name has
    # a new uid and none of the old one's history.
    selector = f"involvedObject.kind={kind.kind},involvedObject.name={meta.get('name')}"
    if meta.get("uid"):
        selector += f",involvedObject.uid={meta['uid']}"
    events = client.list(event_kind(), field_selector=selector)["items"]
    events.sort(key=event_order)
    if events:
        lines.append("Events:")
        rows = [[e.get("type"), e.get("reason"), event_age(e), (e.get("source") or {}).get("component", ""),
                 e.get("message")] for e in events[-20:]]
        lines.extend(_table_lines(["Type", "Reason", "Age", "From", "Message"], rows, indent=2, rule=True))
    else:
        lines.append("Events:       <none>")
    return "\n".join(lines)


def _table_lines(headers: list[str], rows: list[list[Any]], *, indent: int, rule: bool = False) -> list[str]:
    buffer = io.StringIO()
    if rule:
        rows = [["-" * len(h) for h in headers], *rows]
    output.render_table(headers, rows, out=buffer)
    return [" " * indent + line for line in buffer.getvalue().splitlines()]
