"""``mfx cordon`` and ``mfx uncordon``: mark nodes (un)schedulable, as kubectl does.

Both merge-patch ``spec.unschedulable``; a node that already is in the asked state is left
alone and said to be (``node/NAME already cordoned``). ``mfx get nodes`` shows a cordoned
node as ``Ready,SchedulingDisabled``.
"""

from __future__ import annotations

import click

from mfx.api.kinds import NODE
from mfx.cli.context import CliContext, pass_cli
from mfx.errors import BadRequestError


def _node_names(ctx: CliContext, nodes: tuple[str, ...], selector: str | None) -> list[str]:
    names: list[str] = []
    for arg in nodes:
        kind_text, slash, name = arg.rpartition("/")
        if slash and kind_text.lower() not in NODE.names() and kind_text.lower() != f"nodes.{NODE.group}":
            raise BadRequestError(f'"{arg}" is not a node: name a node, e.g. mfx cordon kitchen or node/kitchen')
        names.append(name)
    if selector:
        names.extend(obj["metadata"]["name"] for obj in ctx.client.list(NODE, label_selector=selector)["items"])
    if not names:
        raise BadRequestError("name the nodes, e.g. mfx cordon kitchen, or select them with -l room=kitchen")
    return names


def _set_unschedulable(ctx: CliContext, nodes: tuple[str, ...], selector: str | None, value: bool) -> None:
    client = ctx.client
    verb = "cordoned" if value else "uncordoned"
    for name in _node_names(ctx, nodes, selector):
        node = client.get(NODE, name)
        ref = f"node/{name}"  # as kubectl words it
        if bool((node.get("spec") or {}).get("unschedulable")) == value:
            click.echo(f"{ref} already {verb}")
            continue
        client.patch(NODE, name, {"spec": {"unschedulable": value}})
        click.echo(f"{ref} {verb}")


@click.command()
@click.argument("nodes", nargs=-1)
@click.option("-l", "--selector", help="Label selector of the nodes (e.g. room=kitchen).")
@pass_cli
def cordon(ctx: CliContext, nodes: tuple[str, ...], selector: str | None) -> None:
    """Mark nodes unschedulable (spec.unschedulable=true): nothing new is placed on them.

    What already runs there keeps running; 'mfx get nodes' shows them as
    Ready,SchedulingDisabled. 'mfx uncordon' undoes it.

    \b
    Examples:
      mfx cordon kitchen
      mfx cordon node/kitchen node/garage
      mfx cordon -l room=kitchen
    """
    _set_unschedulable(ctx, nodes, selector, True)


@click.command()
@click.argument("nodes", nargs=-1)
@click.option("-l", "--selector", help="Label selector of the nodes (e.g. room=kitchen).")
@pass_cli
def uncordon(ctx: CliContext, nodes: tuple[str, ...], selector: str | None) -> None:
    """Mark nodes schedulable again (spec.unschedulable=false), undoing 'mfx cordon'.

    \b
    Examples:
      mfx uncordon kitchen
      mfx uncordon -l room=kitchen
    """
    _set_unschedulable(ctx, nodes, selector, False)
