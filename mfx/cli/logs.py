"""``mfx logs``: a plugin's log, its stdout/stderr and the daemon's messages about it."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from mfx.api.kinds import PLUGIN_MANIFEST, resolve_kind
from mfx.cli.completers import complete_plugin
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.durations import DURATION
from mfx.errors import BadRequestError


def plugin_name(ref: str) -> str:
    """``pm/NAME``, ``pluginmanifest/NAME`` or a bare ``NAME`` (as ``kubectl logs POD``)."""
    if "/" in ref:
        kind_text, _, name = ref.partition("/")
        kind = resolve_kind(kind_text)
        if kind is not PLUGIN_MANIFEST:
            raise BadRequestError(f"logs are kept for plugins only, not {kind.plural}; use 'mfx logs pm/NAME'")
    else:
        name = ref
    if not name:
        raise BadRequestError("name the plugin: mfx logs pm/NAME")
    return name


def format_record(record: dict[str, Any]) -> str:
    text = f"{record.get('time', '')} {str(record.get('level', '')).upper():<7} [{record.get('stream', '')}] " \
           f"{record.get('message', '')}"
    fields = record.get("fields") or {}
    if fields:
        text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
    return text


@click.command()
@click.argument("plugin", shell_complete=complete_plugin)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as the plugin writes them.")
@click.option("--since", type=DURATION, metavar="DURATION", help="Only lines newer than this, e.g. 10m, 1h.")
@click.option("--tail", type=int, default=-1, show_default=True, help="Lines to show from the end; -1 for all.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_cli
def logs(ctx: CliContext, plugin: str, follow: bool, since: float | None, tail: int, fmt: str) -> None:
    """Print a plugin's log: its stdout/stderr and the daemon's messages about it.

    \b
    Examples:
      mfx logs pm/local-music
      mfx logs pm/local-music -f --since 10m
      mfx logs pm/hello-rpc --tail 20 -o json
    """
    name = plugin_name(plugin)
    params: dict[str, Any] = {}
    if follow:
        params["follow"] = "true"
    if since:
        params["sinceSeconds"] = str(max(1, int(since)))
    if tail >= 0:
        params["tailLines"] = str(tail)
    path = f"{PLUGIN_MANIFEST.resource_path}/{name}/log"
    out = sys.stdout
    for record in ctx.client.stream_lines(path, params=params):
        out.write((orjson.dumps(record).decode() if fmt == "json" else format_record(record)) + "\n")
        out.flush()
