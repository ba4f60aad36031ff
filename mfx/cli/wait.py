"""``mfx wait``: block until objects meet a condition, or are deleted."""

from __future__ import annotations

import time

import click

from mfx.cli import output
from mfx.cli.completers import complete_resources
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.durations import DURATION
from mfx.cli.refs import chosen_objects
from mfx.cli.waiting import wait_condition, wait_deleted
from mfx.errors import BadRequestError, NotFoundError


@click.command("wait")
@click.argument("resources", nargs=-1, required=True, shell_complete=complete_resources)
@click.option("--for", "condition_spec", required=True, metavar="condition=TYPE[=STATUS]|delete",
              help="What to wait for, e.g. condition=Ready, condition=Stalled=False, delete.")
@click.option("--all", "all_", is_flag=True, help="Wait for every object of the kind.")
@click.option("-l", "--selector")
@click.option("--timeout", type=DURATION, default="30s", show_default=True, help="How long to wait, e.g. 30s, 2m.")
@pass_cli
def wait_cmd(ctx: CliContext, resources: tuple[str, ...], condition_spec: str, all_: bool,
             selector: str | None, timeout: float) -> None:
    """Wait until objects meet a condition (exit 1 on timeout).

    \b
    Examples:
      mfx wait --for=condition=Ready pm/local-music --timeout=30s
      mfx wait --for=condition=Ready pm --all --timeout=2m
      mfx wait --for=delete pm/hello
    """
    deadline = time.monotonic() + timeout
    client = ctx.client
    targets = chosen_objects(client, resources, selector=selector, everything=all_, action="wait for")
    if not targets:
        raise NotFoundError("no matching resources found")
    if condition_spec == "delete":
        for kind, name in targets:
            wait_deleted(client, kind, name, deadline)
            click.echo(f"{output.object_ref(kind, name)} condition met")
        return
    if not condition_spec.startswith("condition="):
        raise BadRequestError(f'unrecognized condition "{condition_spec}"; use condition=Ready or delete')
    ctype, _, wanted = condition_spec[len("condition="):].partition("=")
    wanted = wanted or "True"
    for kind, name in targets:
        wait_condition(client, kind, name, ctype, wanted, deadline)
        click.echo(f"{output.object_ref(kind, name)} condition met")
