"""``mfx get``: objects as a table, YAML, JSON, names or JSONPath; with ``-w``, their changes too."""

from __future__ import annotations

import sys
from typing import Any

import click

from mfx.api.kinds import USER_KINDS, KindInfo, kind_for
from mfx.api.objects import Obj
from mfx.cli import output
from mfx.cli.client import Client
from mfx.cli.completers import complete_get_resources
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.refs import parse_refs
from mfx.cli.watched_rows import WatchedRows, row_identity
from mfx.errors import MfxError
from mfx.server import jsonpath


class OutputFormat(click.ParamType):
    """``-o``: table, wide, yaml, json, name, or ``jsonpath=TEMPLATE`` (checked as it is parsed)."""

    name = "format"
    CHOICES = ("table", "wide", "yaml", "json", "name")
    JSONPATH = "jsonpath="

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        # kubectl's habit "-o=jsonpath=..." reaches a short option as "=jsonpath=...".
        text = str(value).removeprefix("=")
        if text in self.CHOICES:
            return text
        template = text.removeprefix(self.JSONPATH)
        if text in ("jsonpath", self.JSONPATH):
            self.fail("jsonpath needs a template, e.g. -o jsonpath='{.items[*].metadata.name}'", param, ctx)
        if text.startswith(self.JSONPATH):
            try:
                jsonpath.parse_template(template)
            except MfxError as error:
                self.fail(f"error parsing jsonpath {template}: {error}", param, ctx)
            return text
        self.fail(f"{text!r} is not one of {', '.join(self.CHOICES)}, jsonpath=TEMPLATE", param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(c) for c in (*self.CHOICES, self.JSONPATH) if c.startswith(incomplete)]


@click.command()
@click.argument("resources", nargs=-1, shell_complete=complete_get_resources)
@click.option("-o", "--output", "fmt", type=OutputFormat(), default="table", metavar="FORMAT",
              help="table, wide, yaml, json, name, or jsonpath=TEMPLATE (kubectl's JSONPath).")
@click.option("-l", "--selector", help="Label selector, e.g. -l app=player,tier!=ui")
@click.option("-w", "--watch", is_flag=True,
              help="After listing, print a row again whenever one of its columns changes.")
@pass_cli
def get(ctx: CliContext, resources: tuple[str, ...], fmt: str, selector: str | None, watch: bool) -> None:
    """Display objects: a table by default, or YAML/JSON/names/JSONPath.

    \b
    Examples:
      mfx get pm
      mfx get pm local-music -o yaml
      mfx get pm -o wide -l tier=audio
      mfx get all
      mfx get pm/local-music sink/default
      mfx get pm -w
      mfx get pm local-music -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'
      mfx get pm -o jsonpath='{range .items[*]}{.metadata.name}{"\\t"}{.spec.version}{"\\n"}{end}'
    """
    if resources and resources[0] == "all":
        refs: list[tuple[KindInfo, str | None]] = [(kind, None) for kind in USER_KINDS]
        show_kind = True
    else:
        refs = parse_refs(resources)
        show_kind = len({k for k, _ in refs}) > 1
    client = ctx.client
    if fmt in ("yaml", "json", "name") or fmt.startswith(OutputFormat.JSONPATH):
        if watch:
            _watch_documents(client, refs, fmt, selector)
        else:
            _print_documents(client, refs, fmt, selector)
        return
    printed = False
    follow: WatchedRows | None = None
    for kind, names in _group_names(refs):
        tables = [client.table(kind, label_selector=selector)] if names is None else [client.table(kind, n) for n in names]
        prefix = output.object_ref(kind, "") if show_kind else ""
        shown = WatchedRows.of(tables, wide=fmt == "wide", name_prefix=prefix)
        if watch and follow is None:
            follow = shown
        if not shown.rows:
            continue
        if printed:
            click.echo("")
        click.echo(shown.render())
        printed = True
    if not printed and not watch:
        click.echo("No resources found.", err=True)
    if follow is not None:
        kind, names = _group_names(refs)[0]
        follow.header_printed = bool(follow.rows)
        _follow(client, kind, names, selector, follow)


def _print_documents(client: Client, refs: list[tuple[KindInfo, str | None]], fmt: str,
                     selector: str | None) -> None:
    items: list[Obj] = []
    for kind, name in refs:
        if name is None:
            items.extend(client.list(kind, label_selector=selector)["items"])
        else:
            items.append(client.get(kind, name))
    if fmt == "name":
        for obj in items:
            click.echo(output.object_ref(kind_for(obj["apiVersion"], obj["kind"]), obj["metadata"]["name"]))
        return
    single = len(refs) == 1 and refs[0][1] is not None
    if fmt.startswith(OutputFormat.JSONPATH):
        data = items[0] if single and items else output.as_list(items)
        # As kubectl: exactly what the template says, no newline added.
        sys.stdout.write(jsonpath.render(fmt[len(OutputFormat.JSONPATH):], data))
        return
    output.print_objects(items, fmt, single=single)


def _document(obj: Obj, fmt: str, *, first: bool) -> str:
    """One object as ``get -w`` prints it: kubectl prints each object of a watch on its own."""
    if fmt == "name":
        return output.object_ref(kind_for(obj["apiVersion"], obj["kind"]), obj["metadata"]["name"]) + "\n"
    if fmt == "yaml":
        return ("" if first else "---\n") + output.dump_yaml(obj)
    if fmt == "json":
        return output.dump_json(obj)
    return jsonpath.render(fmt[len(OutputFormat.JSONPATH):], obj)


def _watch_documents(client: Client, refs: list[tuple[KindInfo, str | None]], fmt: str,
                     selector: str | None) -> None:
    """``get -w -o yaml|json|name|jsonpath=``: the objects, then each as a change arrives."""
    kind, names = _group_names(refs)[0]
    listing = client.list(kind, label_selector=selector)
    first = True
    for obj in listing["items"]:
        if names is None or obj["metadata"]["name"] in names:
            click.echo(_document(obj, fmt, first=first), nl=False)
            first = False
    field_selector = f"metadata.name={names[0]}" if names and len(names) == 1 else None
    for event in client.watch(kind, resource_version=listing["metadata"]["resourceVersion"],
                              label_selector=selector, field_selector=field_selector):
        obj = event["object"]
        if names is None or obj["metadata"]["name"] in names:
            click.echo(_document(obj, fmt, first=first), nl=False)  # echo flushes: a pipe sees it now
            first = False


def _follow(client: Client, kind: KindInfo, names: list[str] | None, selector: str | None,
            shown: WatchedRows) -> None:
    field_selector = f"metadata.name={names[0]}" if names and len(names) == 1 else None
    for event in client.watch(kind, resource_version=shown.resource_version or None, label_selector=selector,
                              field_selector=field_selector, as_table=True):
        for row in event["object"].get("rows") or []:
            if names and row_identity(row)[0] not in names:
                continue
            for line in shown.lines_for(row, deleted=event["type"] == "DELETED"):
                click.echo(line)


def _group_names(refs: list[tuple[KindInfo, str | None]]) -> list[tuple[KindInfo, list[str] | None]]:
    grouped: dict[str, tuple[KindInfo, list[str] | None]] = {}
    for kind, name in refs:
        entry = grouped.setdefault(kind.kind, (kind, []))
        if name is None:
            grouped[kind.kind] = (kind, None)
        elif entry[1] is not None:
            entry[1].append(name)
    return list(grouped.values())
