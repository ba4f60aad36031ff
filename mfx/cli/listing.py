"""``mfx get``: objects as a table, YAML, JSON, names or JSONPath; with ``-w``, their changes too.

One implementation for both ways ``mfx get`` runs: through click, and without it at start-up
(``fast_path``). So it loads neither click nor the JSONPath engine unless a format needs it."""

from __future__ import annotations

import sys

from mfx.api.kinds import KindInfo, in_category, kind_for
from mfx.cli import output
from mfx.cli.refs import parse_refs
from mfx.cli.session import CliContext
from mfx.cli.watched_rows import WatchedRows, row_identity

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from mfx.api.objects import Obj
    from mfx.cli.client import Client

JSONPATH = "jsonpath="
CUSTOM_COLUMNS = "custom-columns="
TABLE_FORMATS = ("table", "wide")


def show(ctx: CliContext, resources: tuple[str, ...], fmt: str, selector: str | None, watch: bool, *,
         show_labels: bool = False, sort_by: str | None = None) -> None:
    """``fmt`` is one of table, wide, yaml, json, name or ``jsonpath=TEMPLATE``, checked already;
    ``show_labels`` adds a LABELS column to a table; ``sort_by`` (a JSONPath, checked already)
    orders the objects of each kind by its value, as kubectl's ``--sort-by``."""
    # A category (kubectl's `get all`, `get mfx`): every kind in it.
    category = in_category(resources[0].lower()) if resources and (
        len(resources) == 1 or resources[0] == "all") else ()
    if category:
        refs: list[tuple[KindInfo, str | None]] = [(kind, None) for kind in category]
        show_kind = True
    else:
        refs = parse_refs(resources)
        show_kind = len({k for k, _ in refs}) > 1
    client = ctx.client
    if fmt in ("yaml", "json", "name") or fmt.startswith((JSONPATH, CUSTOM_COLUMNS)):
        if watch:
            _watch_documents(client, refs, fmt, selector)
        else:
            _print_documents(client, refs, fmt, selector, sort_by)
        return
    printed = False
    follow: WatchedRows | None = None
    # As kubectl: --sort-by reads each row's whole object, a LABELS column its metadata.
    include = "Object" if sort_by else "Metadata" if watch or show_labels else "None"
    order = (lambda rows: sorted_by(rows, sort_by, lambda row: row.get("object") or {})) if sort_by else None
    for kind, names in _group_names(refs):
        tables = ([client.table(kind, label_selector=selector, include_object=include)] if names is None
                  else [client.table(kind, n, include_object=include) for n in names])
        prefix = output.object_ref(kind, "") if show_kind else ""
        shown = WatchedRows.of(tables, wide=fmt == "wide", name_prefix=prefix, show_labels=show_labels,
                               order=order)
        if watch and follow is None:
            follow = shown
        if not shown.rows:
            continue
        if printed:
            output.echo()
        output.echo(shown.render())
        printed = True
    if not printed and not watch:
        output.echo("No resources found.", err=True)
    if follow is not None:
        kind, names = _group_names(refs)[0]
        follow.header_printed = bool(follow.rows)
        _follow(client, kind, names, selector, follow)



def sorted_by(items: list[Any], template: str, obj_of: Callable[[Any], Obj]) -> list[Any]:
    """``items`` ordered by the value ``template`` (``.spec.version``, or ``{.spec.version}``)
    finds in each one's object: numbers by value, the rest as text, objects without it first."""
    engine = _jsonpath()

    def key(item: Any) -> tuple[int, float, str]:
        found = engine.evaluate(obj_of(item), template)
        if not found:
            return (0, 0.0, "")
        value = found[0]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (1, float(value), "")
        return (2, 0.0, engine.value_text(value))

    return sorted(items, key=key)


def _print_documents(client: Client, refs: list[tuple[KindInfo, str | None]], fmt: str,
                     selector: str | None, sort_by: str | None = None) -> None:
    items: list[Obj] = []
    for kind, name in refs:
        if name is None:
            items.extend(client.list(kind, label_selector=selector)["items"])
        else:
            items.append(client.get(kind, name))
    if sort_by:
        items = sorted_by(items, sort_by, lambda obj: obj)
    if fmt == "name":
        for obj in items:
            output.echo(output.object_ref(kind_for(obj["apiVersion"], obj["kind"]), obj["metadata"]["name"]))
        return
    if fmt.startswith(CUSTOM_COLUMNS):
        if items:
            _print_custom_columns(items, parse_custom_columns(fmt[len(CUSTOM_COLUMNS):]))
        else:
            output.echo("No resources found.", err=True)
        return
    single = len(refs) == 1 and refs[0][1] is not None
    if fmt.startswith(JSONPATH):
        data = items[0] if single and items else output.as_list(items)
        # As kubectl: exactly what the template says, no newline added.
        sys.stdout.write(_jsonpath().render(fmt[len(JSONPATH):], data))
        return
    output.print_objects(items, fmt, single=single)


def parse_custom_columns(spec: str) -> list[tuple[str, str]]:
    """``HEADER:JSONPATH,...`` into (header, path) pairs, each path checked; as kubectl's."""
    from mfx.errors import BadRequestError

    columns: list[tuple[str, str]] = []
    for part in spec.split(","):
        header, colon, path = part.partition(":")
        if not colon or not header or not path.strip():
            raise BadRequestError(f"custom-columns: expected HEADER:JSONPATH, got {part!r} "
                                  "(e.g. -o custom-columns=NAME:.metadata.name,VERSION:.spec.version)")
        text = path.strip()
        try:
            _jsonpath().column_template(text)
        except BadRequestError as error:
            raise BadRequestError(f"custom-columns: column {header}: error parsing jsonpath {text}: {error}") from None
        columns.append((header, text))
    return columns


def _custom_row(obj: Obj, columns: list[tuple[str, str]]) -> list[str]:
    """One object's cells: several values of a field joined by commas, none as ``<none>``."""
    engine = _jsonpath()
    return [",".join(engine.value_text(v) for v in engine.evaluate(obj, path)) or "<none>" for _, path in columns]


def _print_custom_columns(items: list[Obj], columns: list[tuple[str, str]]) -> list[int]:
    """A table of one column per field, as ``kubectl get -o custom-columns`` prints it; its widths."""
    headers = [header for header, _ in columns]
    rows = [_custom_row(obj, columns) for obj in items]
    widths = output.column_widths(headers, rows)
    output.echo("\n".join(output.format_row(row, widths) for row in [headers, *rows]))
    return widths


def _document(obj: Obj, fmt: str, *, first: bool) -> str:
    """One object as ``get -w`` prints it: kubectl prints each object of a watch on its own."""
    if fmt == "name":
        return output.object_ref(kind_for(obj["apiVersion"], obj["kind"]), obj["metadata"]["name"]) + "\n"
    if fmt == "yaml":
        return ("" if first else "---\n") + output.dump_yaml(obj)
    if fmt == "json":
        return output.dump_json(obj)
    return _jsonpath().render(fmt[len(JSONPATH):], obj)


def _watch_documents(client: Client, refs: list[tuple[KindInfo, str | None]], fmt: str,
                     selector: str | None) -> None:
    """``get -w -o yaml|json|name|jsonpath=|custom-columns=``: the objects, then each as a
    change arrives (custom columns: a row each, lined up with the table listed first)."""
    kind, names = _group_names(refs)[0]
    listing = client.list(kind, label_selector=selector)
    listed = [obj for obj in listing["items"] if names is None or obj["metadata"]["name"] in names]
    columns = parse_custom_columns(fmt[len(CUSTOM_COLUMNS):]) if fmt.startswith(CUSTOM_COLUMNS) else None
    widths: list[int] = []
    first = True
    if columns is not None:
        widths = _print_custom_columns(listed, columns)
    else:
        for obj in listed:
            _write(_document(obj, fmt, first=first))
            first = False
    field_selector = f"metadata.name={names[0]}" if names and len(names) == 1 else None
    for event in client.watch(kind, resource_version=listing["metadata"]["resourceVersion"],
                              label_selector=selector, field_selector=field_selector):
        obj = event["object"]
        if names is not None and obj["metadata"]["name"] not in names:
            continue
        if columns is not None:
            row = _custom_row(obj, columns)
            widths = [max(a, b) for a, b in zip(widths, output.column_widths(row, [row]), strict=True)]
            _write(output.format_row(row, widths) + "\n")
        else:
            _write(_document(obj, fmt, first=first))
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
                output.echo(line)


def _group_names(refs: list[tuple[KindInfo, str | None]]) -> list[tuple[KindInfo, list[str] | None]]:
    grouped: dict[str, tuple[KindInfo, list[str] | None]] = {}
    for kind, name in refs:
        entry = grouped.setdefault(kind.kind, (kind, []))
        if name is None:
            grouped[kind.kind] = (kind, None)
        elif entry[1] is not None:
            entry[1].append(name)
    return list(grouped.values())


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()  # a pipe reading the watch sees each object when it arrives


def _jsonpath() -> Any:
    from mfx.server import jsonpath  # a parser of its own: only -o jsonpath= needs it

    return jsonpath
