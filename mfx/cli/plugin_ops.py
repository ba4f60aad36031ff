"""Plugin operations: ``why``, ``analyze critical-chain``, ``reset-failed``.

Everything goes through the daemon's API (``CliContext.client``): reads with get/list,
changes with JSON merge patches.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.api.objects import Obj, condition, is_condition_true
from mfx.cli.context import CliContext
from mfx.cli.stamps import request_stamp
from mfx.errors import BadRequestError, MfxError, NotFoundError

RESET_FAILED_ANNOTATION = "mfx.musicfox.io/reset-failed-at"


def _plugin_name(ref: str) -> str:
    kind, sep, name = ref.partition("/")
    if not sep:
        return ref
    if kind.lower() not in PLUGIN_MANIFEST.names():
        raise BadRequestError(f'"{ref}": these commands work on plugins (pm/NAME)')
    if not name:
        raise BadRequestError(f'"{ref}": give a name, e.g. pm/local-music')
    return name


def _ready_text(obj: Obj | None) -> str:
    if obj is None:
        return "not found"
    ready = condition(obj, "Ready") or {}
    if not ready:
        return "Ready=Unknown (not reconciled yet)"
    text = f"Ready={ready.get('status')} {ready.get('reason', '')}"
    if ready.get("message"):
        text += f": {ready['message']}"
    stalled = condition(obj, "Stalled") or {}
    if stalled.get("status") == "True" and stalled.get("reason") != ready.get("reason"):
        text += f" [Stalled {stalled.get('reason')}: {stalled.get('message', '')}]"
    return text


@click.command("why")
@click.argument("resource")
@click.pass_obj
def why(ctx: CliContext, resource: str) -> None:
    """Explain why a plugin is not Ready: walk its dependency chain to the root cause.

    \b
    Examples:
      mfx why pm/player-ui
      mfx why local-music
    """
    client = ctx.client
    name = _plugin_name(resource)
    items = {o["metadata"]["name"]: o for o in client.list(PLUGIN_MANIFEST).get("items", [])}
    if name not in items:
        raise NotFoundError(f'pluginmanifests "{name}" not found')
    seen: set[str] = set()

    def walk(current: str, depth: int, optional: bool) -> str | None:
        obj = items.get(current)
        indent = "  " * depth + ("└─" if depth else "")
        label = f"pm/{current}" + (" (optional)" if optional else "")
        click.echo(f"{indent}{label}: {_ready_text(obj)}")
        if obj is None:
            return current
        if current in seen:
            return None
        seen.add(current)
        if is_condition_true(obj, "Ready"):
            return None
        root: str | None = None
        for dep in (obj.get("spec") or {}).get("dependencies") or []:
            dep_obj = items.get(dep["name"])
            if dep_obj is not None and is_condition_true(dep_obj, "Ready"):
                continue
            found = walk(dep["name"], depth + 1, bool(dep.get("optional")))
            if found and root is None and not dep.get("optional"):
                root = found
        return root or current

    root = walk(name, 0, False)
    if root is None:
        click.echo(f"pm/{name} is Ready")
    elif root == name:
        click.echo(f"root cause: pm/{name} itself ({_ready_text(items.get(name))})")
    else:
        click.echo(f"root cause: pm/{root} ({_ready_text(items.get(root))})")


def _time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


@click.group("analyze")
def analyze() -> None:
    """Analyze the plugin set (like systemd-analyze)."""


@analyze.command("critical-chain")
@click.argument("resource", required=False)
@click.pass_obj
def critical_chain(ctx: CliContext, resource: str | None) -> None:
    """Print the chain of plugins that bounds convergence, with each one's time to Ready.

    "@" is when the plugin became Ready, relative to the first start; "+" is how long its
    own start took (status.startedAt -> status.readyAt). Plugins on a dependency cycle (and
    those that depend on one) never start, so they are never on the chain: the cycles are
    listed after it.

    \b
    Examples:
      mfx analyze critical-chain
      mfx analyze critical-chain pm/player-ui     # the chain that ends at one plugin
    """
    from reconciler import DependencyGraph, format_cycle  # networkx: only for this command

    items = ctx.client.list(PLUGIN_MANIFEST).get("items", [])
    graph = DependencyGraph()
    started: dict[str, float] = {}
    ready: dict[str, float] = {}
    for obj in items:
        name = obj["metadata"]["name"]
        deps = [d["name"] for d in (obj.get("spec") or {}).get("dependencies") or [] if not d.get("optional")]
        graph.set_node(name, deps)
        status = obj.get("status") or {}
        s, r = _time(status.get("startedAt")), _time(status.get("readyAt"))
        if s is not None and r is not None:
            started[name], ready[name] = s, r
    cycles = graph.cycles()
    blocked = graph.blocked()
    # A start time left from before a cycle was made is no part of this plugin set's convergence.
    for name in blocked:
        started.pop(name, None)
        ready.pop(name, None)
    if resource is not None:
        target = _plugin_name(resource)
        if target in blocked:
            cause = "; ".join(format_cycle(c) for c in graph.cycles_reached_by(target))
            raise BadRequestError(f"pm/{target} never starts, so it has no critical chain: "
                                  f"it is on or depends on a dependency cycle ({cause})")
        if target not in ready:
            raise NotFoundError(f"pm/{target} has no start timing (not Ready yet)")
    elif ready:
        target = max(ready, key=lambda n: ready[n])
    if not ready:
        click.echo("no plugin has become Ready yet")
    else:
        origin = min(started.values())
        click.echo('The time when a plugin became Ready is printed after the "@" character.')
        click.echo('The time its own start took is printed after the "+" character.')
        click.echo("")
        for depth, name in enumerate(graph.chain_to(target, ready)):
            prefix = "" if depth == 0 else "  " * (depth - 1) + "└─"
            click.echo(f"{prefix}pm/{name} @{ready[name] - origin:.3f}s +{ready[name] - started[name]:.3f}s")
    if cycles and resource is None:
        click.echo("")
        click.echo("Dependency cycles (their plugins never start, so they are not on the chain):")
        for cycle in cycles:
            click.echo(f"  {format_cycle(cycle)}")


def _patch(ctx: CliContext, name: str, patch: dict[str, Any]) -> None:
    ctx.client.patch(PLUGIN_MANIFEST, name, patch)


@click.command("reset-failed")
@click.argument("resources", nargs=-1, required=True)
@click.pass_obj
def reset_failed(ctx: CliContext, resources: tuple[str, ...]) -> None:
    """Clear a plugin's failed state (StartLimitHit, backoff) so it is started again.

    \b
    Examples:
      mfx reset-failed pm/local-music
    """
    stamp = request_stamp()
    for ref in resources:
        name = _plugin_name(ref)
        _patch(ctx, name, {"metadata": {"annotations": {RESET_FAILED_ANNOTATION: stamp}}})
        click.echo(f"pluginmanifest.mfx.musicfox.io/{name} reset")


# ``mfx suspend`` / ``mfx resume`` (merge-patch spec.suspend) are the generic ones in
# mfx.cli.gitops: they take pm/NAME as well as gitsource/NAME.
@click.command("call")
@click.argument("resource")
@click.argument("method")
@click.argument("params", required=False)
@click.pass_obj
def call(ctx: CliContext, resource: str, method: str, params: str | None) -> None:
    """Call a running plugin's method by hand and print its answer (for plugin authors).

    The call goes through the plugin's circuit breaker and call deadline, like the player's:
    a plugin error prints its reason and message (and the plugin's traceback is in
    'mfx logs pm/NAME').

    \b
    Examples:
      mfx call pm/hello-rpc greet '{"name": "Ada"}'
      mfx call pm/local-music search '{"query": "cafe", "type": "song", "limit": 3}'
      mfx call pm/now-playing format '{"title": "Song", "artist": "Band", "position": 83, "duration": 354}'
    """
    import orjson

    from mfx.api.yaml_loader import load_body

    name = _plugin_name(resource)
    try:
        arguments = load_body(params.encode()) if params else None
    except MfxError as error:
        text = str(error)
        text = text.replace("the body", "PARAMS", 1) if "the body" in text else f"PARAMS: {text}"
        raise BadRequestError(text + " (example: '{\"name\": \"Ada\"}')") from None
    answer = ctx.client.request("POST", f"{PLUGIN_MANIFEST.resource_path}/{name}/call",
                                body={"method": method, "params": arguments})
    click.echo(orjson.dumps(answer.get("result"), option=orjson.OPT_INDENT_2, default=str).decode())


COMMANDS: tuple[click.Command, ...] = (why, analyze, reset_failed, call)
