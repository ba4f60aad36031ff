"""The kubectl verbs: apply, get, describe, delete, diff, wait, explain, events, api-resources."""

from __future__ import annotations

import copy
import difflib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

import mfx
from mfx.api.apply import (  # noqa: F401 (SERVER_METADATA is re-exported)
    SERVER_METADATA,
    apply_patch,
    desired_state,
    field_changes,
    merged_for_apply,
)
from mfx.api.apply import comparable as _comparable
from mfx.api.kinds import USER_KINDS, KindInfo, kind_for, resolve_kind
from mfx.api.objects import (
    GITSOURCE_OWNER_LABEL,
    LAST_APPLIED_ANNOTATION,
    Obj,
    condition,
    human_age,
)
from mfx.api.schema import load_schemas
from mfx.api.validation import Manifest
from mfx.cli import gitops, output
from mfx.cli.client import Client
from mfx.cli.completion import complete_get_resources, complete_resources, completion
from mfx.cli.edit import patch
from mfx.cli.main import CliContext
from mfx.cli.manifests import collect_sources, load_and_validate
from mfx.cli.observe import logs
from mfx.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    FieldError,
    MfxError,
    NotFoundError,
    ValidationError,
)
from mfx.server import jsonpath

pass_cli = click.make_pass_decorator(CliContext)

# --- object references ---------------------------------------------------------------------------


def parse_refs(args: tuple[str, ...]) -> list[tuple[KindInfo, str | None]]:
    """``KIND [NAME...]`` or ``KIND/NAME ...`` into (kind, name) pairs; name None means all."""
    if not args:
        raise BadRequestError("you must specify the type of resource (example: mfx get pm)")
    if all("/" in a for a in args):
        refs: list[tuple[KindInfo, str | None]] = []
        for arg in args:
            kind_text, _, name = arg.partition("/")
            refs.append((resolve_kind(kind_text), name))
        return refs
    kinds = [resolve_kind(k) for k in args[0].split(",")]
    names = list(args[1:])
    if names and len(kinds) > 1:
        raise BadRequestError("you may only name objects of one kind at a time")
    if not names:
        return [(kind, None) for kind in kinds]
    return [(kinds[0], name) for name in names]


# --- reading -f arguments ------------------------------------------------------------------------------


def load_objects(filenames: tuple[str, ...], *, recursive: bool) -> list[Manifest]:
    """The validated objects of every -f argument; an argument that holds none is an error.

    An empty file, one of only comments or ``---``, or a directory without manifests is
    almost always a wrong path: saying nothing and exiting 0 would hide it."""
    if not filenames:
        collect_sources(filenames, recursive=recursive)  # raises: name what is missing
    per_argument = [collect_sources((given,), recursive=recursive) for given in filenames]
    manifests = load_and_validate([source for sources in per_argument for source in sources], load_schemas())
    files_with_objects = {manifest.file for manifest in manifests}
    for given, sources in zip(filenames, per_argument, strict=True):
        if not any(source.name in files_with_objects for source in sources):
            shown = sources[0].name if given == "-" and sources else given
            hint = "" if recursive or not _has_subdirectories(given) else " (use -R to read its subdirectories)"
            raise BadRequestError(f"{shown}: no objects found{hint}")
    if not manifests:
        raise BadRequestError("no objects passed: use -f FILE|DIR|- (example: mfx apply -f manifests/)")
    return manifests


def _has_subdirectories(given: str) -> bool:
    path = Path(given)
    return path.is_dir() and any(child.is_dir() for child in path.iterdir())


# --- apply ------------------------------------------------------------------------------------------


def apply_one(client: Client, obj: Obj, *, dry_run: bool, force_conflicts: bool = False) -> str:
    """Create or update one object; returns kubectl's verb: created, configured, unchanged.

    An object a GitSource manages is changed only with ``force_conflicts`` (and the next
    sync reverts it): its desired state lives in git."""
    kind = kind_for(obj["apiVersion"], obj["kind"])
    desired = desired_state(obj)
    name = desired["metadata"]["name"]
    try:
        live = client.get(kind, name)
    except NotFoundError:
        try:
            client.create(desired, kind, dry_run=dry_run)
            return "created"
        except AlreadyExistsError:  # created by someone else in between: apply onto theirs
            live = client.get(kind, name)
    merged = merged_for_apply(live, desired)
    if _comparable(merged, annotation=False) == _comparable(live, annotation=False):
        # Same spec, labels and annotations: only the record of the applied file would
        # change. Write nothing, so applying `get -o yaml` output is a true no-op.
        return "unchanged"
    owner = (live.get("metadata", {}).get("labels") or {}).get(GITSOURCE_OWNER_LABEL)
    changes = field_changes(live, load_schemas().apply_defaults(merged)) if owner else []
    if changes:
        text = f'{kind.plural} "{name}" is managed by gitsource/{owner}; {"; ".join(changes)}'
        if not force_conflicts:
            raise ConflictError(f"{text}; change it in git, or use --force-conflicts to override "
                                "(the next sync will revert it)")
        output.warn(f"{text}; applied with --force-conflicts: the next sync will revert it")
    patch = apply_patch(live, load_schemas().apply_defaults(merged))
    if not patch:
        return "unchanged"
    result = client.patch(kind, name, patch, dry_run=dry_run)
    return "configured" if _comparable(result) != _comparable(live) else "unchanged"


@click.command()
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-",
              help="Files or directories of manifests; '-' reads stdin. Repeatable.")
@click.option("-R", "--recursive", is_flag=True, help="Descend into directories given with -f.")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
              help="client: validate locally only; server: validate and admit on the daemon, store nothing.")
@click.option("--force-conflicts", is_flag=True,
              help="Change objects a GitSource manages anyway (its next sync reverts them).")
@pass_cli
def apply(ctx: CliContext, filenames: tuple[str, ...], recursive: bool, dry_run: str,
          force_conflicts: bool) -> None:
    """Create or update objects from manifests (all documents are validated before any is written).

    Every -f argument must hold at least one object: an empty file, one of only comments or
    '---', or a directory without .yaml/.yml/.json files is an error, never a silent success.

    \b
    Examples:
      mfx apply -f manifests/
      mfx apply -f plugins/ -R
      cat pm.yaml | mfx apply -f -
      mfx apply -f manifests/ --dry-run=server
    """
    manifests = load_objects(filenames, recursive=recursive)
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
    for manifest in manifests:
        obj = manifest.obj
        kind = kind_for(obj["apiVersion"], obj["kind"])
        if dry_run == "client":
            verb = "configured"
        else:
            try:
                verb = apply_one(ctx.client, obj, dry_run=dry_run == "server", force_conflicts=force_conflicts)
            except MfxError as error:
                raise _located(error, manifest) from None
        click.echo(f"{output.object_ref(kind, obj['metadata']['name'])} {verb}{suffix}")


def _located(error: MfxError, manifest: Any) -> MfxError:
    """Server-side field errors, pointed back at the file and line they came from."""
    if isinstance(error, ValidationError):
        return ValidationError([
            FieldError(path=e.path, message=e.message, file=manifest.file, line=manifest.line_of(e.path),
                       document=manifest.document)
            for e in error.errors
        ])
    return error


# --- get ----------------------------------------------------------------------------------------------


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
    follow: _WatchedRows | None = None
    for kind, names in _group_names(refs):
        tables = [client.table(kind, label_selector=selector)] if names is None else [client.table(kind, n) for n in names]
        prefix = output.object_ref(kind, "") if show_kind else ""
        shown = _WatchedRows.of(tables, wide=fmt == "wide", name_prefix=prefix)
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


@dataclass
class _Row:
    resource_version: int
    texts: list[str]


@dataclass
class _WatchedRows:
    """What ``get`` printed for one kind, so ``-w`` prints a row only when it shows a change.

    A status write that changes no printed column (a health probe's timestamp, say) prints
    nothing; age columns are left out of the comparison, as they change by themselves."""

    columns: list[dict[str, Any]]  # every column definition of the kind's tables
    kept: list[int]  # the indexes of the printed ones
    name_prefix: str
    rows: dict[str, _Row] = field(default_factory=dict)
    widths: list[int] = field(default_factory=list)
    resource_version: str = ""
    header_printed: bool = False

    @classmethod
    def of(cls, tables: list[dict[str, Any]], *, wide: bool, name_prefix: str) -> _WatchedRows:
        columns: list[dict[str, Any]] = next(
            (t["columnDefinitions"] for t in tables if t.get("columnDefinitions")), [])
        shown = cls(columns=columns, kept=output.printed_columns(columns, wide=wide), name_prefix=name_prefix)
        versions: list[str] = []
        for table in tables:
            listed = str((table.get("metadata") or {}).get("resourceVersion") or "")
            for row in table.get("rows") or []:
                name, version = _row_identity(row)
                shown.rows[name] = _Row(version, shown.texts(row))
                listed = listed or str(version)  # a single object's table: watch from its version
            versions.append(listed)
        shown.resource_version = min((v for v in versions if v.isdigit()), key=int, default="")
        shown.widths = output.column_widths(shown.headers, [r.texts for r in shown.rows.values()])
        return shown

    @property
    def headers(self) -> list[str]:
        return [self.columns[i]["name"].upper() for i in self.kept]

    def texts(self, row: dict[str, Any]) -> list[str]:
        cells = row.get("cells") or []
        picked = [cells[i] if i < len(cells) else None for i in self.kept]
        if self.name_prefix and picked:
            picked[0] = f"{self.name_prefix}{picked[0]}"
        return output.cell_texts(picked)

    def render(self) -> str:
        lines = [output.format_row(self.headers, self.widths)]
        lines += [output.format_row(r.texts, self.widths) for r in self.rows.values()]
        return "\n".join(lines)

    def _same(self, before: list[str], after: list[str]) -> bool:
        compared = [n for n, i in enumerate(self.kept) if self.columns[i].get("type") != "date"]
        return [before[n] for n in compared] == [after[n] for n in compared]

    def lines_for(self, row: dict[str, Any], *, deleted: bool) -> list[str]:
        """The lines to print for one watched row: none when no printed column changed."""
        name, version = _row_identity(row)
        texts = self.texts(row)
        previous = self.rows.get(name)
        if previous is not None and version and version <= previous.resource_version:
            return []  # already printed: the watch started before this object's listing
        if deleted:
            self.rows.pop(name, None)
        else:
            self.rows[name] = _Row(version, texts)
            if previous is not None and self._same(previous.texts, texts):
                return []
        # Later rows keep the columns of what is already on screen, widening only if they must.
        self.widths = [max(a, b) for a, b in zip(self.widths or [0] * len(texts),
                                                  output.column_widths(self.headers, [texts]), strict=True)]
        lines = []
        if not self.header_printed:
            lines.append(output.format_row(self.headers, self.widths))
            self.header_printed = True
        lines.append(output.format_row(texts, self.widths))
        return lines


def _row_identity(row: dict[str, Any]) -> tuple[str, int]:
    """A table row's object name and resourceVersion (0 when the row carries no metadata)."""
    meta = (row.get("object") or {}).get("metadata") or {}
    cells = row.get("cells") or [""]
    version = str(meta.get("resourceVersion") or "")
    return str(meta.get("name") or cells[0]), int(version) if version.isdigit() else 0


def _follow(client: Client, kind: KindInfo, names: list[str] | None, selector: str | None,
            shown: _WatchedRows) -> None:
    field_selector = f"metadata.name={names[0]}" if names and len(names) == 1 else None
    for event in client.watch(kind, resource_version=shown.resource_version or None, label_selector=selector,
                              field_selector=field_selector, as_table=True):
        for row in event["object"].get("rows") or []:
            if names and _row_identity(row)[0] not in names:
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


# --- describe -------------------------------------------------------------------------------------


def _title(key: str) -> str:
    """``entryPoint`` -> ``Entry Point``, as kubectl describe prints field names."""
    import re

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
                lines.append(f"{pad}{title}:  {output._cell_text(item) if item not in ({}, []) else '<none>'}")
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
    events = client.list(_event_kind(), field_selector=selector)["items"]
    events.sort(key=_event_order)
    if events:
        lines.append("Events:")
        rows = [[e.get("type"), e.get("reason"), _event_age(e), (e.get("source") or {}).get("component", ""),
                 e.get("message")] for e in events[-20:]]
        lines.extend(_table_lines(["Type", "Reason", "Age", "From", "Message"], rows, indent=2, rule=True))
    else:
        lines.append("Events:       <none>")
    return "\n".join(lines)


def _event_kind() -> KindInfo:
    return resolve_kind("events")


def _event_order(event: Obj) -> tuple[str, int]:
    """Oldest first; within one second of timestamps, in the order they were written."""
    version = str(event.get("metadata", {}).get("resourceVersion") or "")
    return str(event.get("lastTimestamp") or ""), int(version) if version.isdigit() else 0


def _event_age(event: Obj) -> str:
    age = human_age(event.get("lastTimestamp"))
    count = int(event.get("count") or 1)
    if count > 1:
        return f"{age} (x{count} over {human_age(event.get('firstTimestamp'))})"
    return age


def _table_lines(headers: list[str], rows: list[list[Any]], *, indent: int, rule: bool = False) -> list[str]:
    import io

    buffer = io.StringIO()
    if rule:
        rows = [["-" * len(h) for h in headers], *rows]
    output.render_table(headers, rows, out=buffer)
    return [" " * indent + line for line in buffer.getvalue().splitlines()]


# --- delete -------------------------------------------------------------------------------------------


@click.command()
@click.argument("resources", nargs=-1, shell_complete=complete_resources)
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-", help="Delete what these manifests name.")
@click.option("-R", "--recursive", is_flag=True)
@click.option("-l", "--selector", help="Delete every object of the kind matching this label selector.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until the objects are gone (their finalizers have run).")
@click.option("--timeout", default="60s", show_default=True, help="How long --wait waits.")
@click.option("--dry-run", type=click.Choice(["none", "server"]), default="none")
@pass_cli
def delete(ctx: CliContext, resources: tuple[str, ...], filenames: tuple[str, ...], recursive: bool,
           selector: str | None, wait: bool, timeout: str, dry_run: str) -> None:
    """Delete objects by name, by manifest or by label selector.

    \b
    Examples:
      mfx delete pm hello
      mfx delete -f manifests/hello.yaml
      mfx delete pm -l tier=experimental
    """
    from mfx.api.units import parse_duration

    client = ctx.client
    targets: list[tuple[KindInfo, str]] = []
    if filenames:
        for manifest in load_objects(filenames, recursive=recursive):
            obj = manifest.obj
            targets.append((kind_for(obj["apiVersion"], obj["kind"]), obj["metadata"]["name"]))
    else:
        for kind, name in parse_refs(resources):
            if name is not None:
                targets.append((kind, name))
            elif selector:
                targets.extend((kind, o["metadata"]["name"]) for o in client.list(kind, label_selector=selector)["items"])
            else:
                raise BadRequestError(f"name the {kind.plural} to delete, or use -l SELECTOR")
    suffix = " (server dry run)" if dry_run == "server" else ""
    failed = False
    for kind, name in targets:
        try:
            client.delete(kind, name, dry_run=dry_run == "server")
        except NotFoundError as error:
            output.error(str(error))
            failed = True
            continue
        click.echo(f'{output.qualified(kind)} "{name}" deleted{suffix}')
    if wait and dry_run == "none":
        deadline = time.monotonic() + parse_duration(timeout)
        for kind, name in targets:
            _wait_deleted(client, kind, name, deadline)
    if failed:
        sys.exit(1)


def _wait_deleted(client: Client, kind: KindInfo, name: str, deadline: float) -> None:
    try:
        obj = client.get(kind, name)
    except NotFoundError:
        return
    for event in _watch_until(client, kind, name, obj["metadata"]["resourceVersion"], deadline):
        if event["type"] == "DELETED":
            return
    raise MfxError(f'timed out waiting for {kind.plural} "{name}" to be deleted; '
                   f"see 'mfx describe {kind.short_names[0] if kind.short_names else kind.plural} {name}'")


def _watch_until(client: Client, kind: KindInfo, name: str, resource_version: str, deadline: float) -> Any:
    """Watch one object until the deadline, resuming the watch if the stream ends early."""
    rv = resource_version
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        client_timeout = max(1, int(remaining + 0.999))
        params_rv = rv
        for event in client.stream_lines(kind.resource_path, params={
                "watch": "true", "resourceVersion": params_rv, "fieldSelector": f"metadata.name={name}",
                "timeoutSeconds": str(client_timeout)}):
            if event.get("type") == "ERROR":
                return
            rv = event["object"]["metadata"].get("resourceVersion", rv)
            yield event
            if event["type"] == "DELETED":
                return


# --- wait -------------------------------------------------------------------------------------------------


@click.command("wait")
@click.argument("resources", nargs=-1, required=True, shell_complete=complete_resources)
@click.option("--for", "condition_spec", required=True, metavar="condition=TYPE[=STATUS]|delete",
              help="What to wait for, e.g. condition=Ready, condition=Stalled=False, delete.")
@click.option("--all", "all_", is_flag=True, help="Wait for every object of the kind.")
@click.option("-l", "--selector")
@click.option("--timeout", default="30s", show_default=True)
@pass_cli
def wait_cmd(ctx: CliContext, resources: tuple[str, ...], condition_spec: str, all_: bool,
             selector: str | None, timeout: str) -> None:
    """Wait until objects meet a condition (exit 1 on timeout).

    \b
    Examples:
      mfx wait --for=condition=Ready pm/local-music --timeout=30s
      mfx wait --for=condition=Ready pm --all --timeout=2m
      mfx wait --for=delete pm/hello
    """
    from mfx.api.units import parse_duration

    deadline = time.monotonic() + parse_duration(timeout)
    client = ctx.client
    targets: list[tuple[KindInfo, str]] = []
    for kind, name in parse_refs(resources):
        if name is not None:
            targets.append((kind, name))
        elif all_ or selector:
            targets.extend((kind, o["metadata"]["name"]) for o in client.list(kind, label_selector=selector)["items"])
        else:
            raise BadRequestError("name the objects to wait for, or use --all or -l")
    if not targets:
        raise NotFoundError("no matching resources found")
    if condition_spec == "delete":
        for kind, name in targets:
            _wait_deleted(client, kind, name, deadline)
            click.echo(f"{output.object_ref(kind, name)} condition met")
        return
    if not condition_spec.startswith("condition="):
        raise BadRequestError(f'unrecognized condition "{condition_spec}"; use condition=Ready or delete')
    ctype, _, wanted = condition_spec[len("condition="):].partition("=")
    wanted = wanted or "True"
    for kind, name in targets:
        _wait_condition(client, kind, name, ctype, wanted, deadline)
        click.echo(f"{output.object_ref(kind, name)} condition met")


def condition_met(obj: Obj, ctype: str, wanted: str) -> bool:
    cond = condition(obj, ctype)
    if cond is None or str(cond.get("status")).lower() != wanted.lower():
        return False
    observed = cond.get("observedGeneration") or (obj.get("status") or {}).get("observedGeneration")
    return observed is None or int(observed) >= int(obj["metadata"].get("generation", 0))


def _wait_condition(client: Client, kind: KindInfo, name: str, ctype: str, wanted: str, deadline: float) -> None:
    obj = client.get(kind, name)
    if condition_met(obj, ctype, wanted):
        return
    for event in _watch_until(client, kind, name, obj["metadata"]["resourceVersion"], deadline):
        if event["type"] == "DELETED":
            raise NotFoundError(f'{kind.plural} "{name}" was deleted while waiting for {ctype}')
        obj = event["object"]
        if condition_met(obj, ctype, wanted):
            return
    reason = ""
    cond = condition(obj, ctype) or condition(obj, "Ready")
    if cond:
        reason = f" (last {cond.get('type')}={cond.get('status')}, reason {cond.get('reason')}: {cond.get('message')})"
    short = kind.short_names[0] if kind.short_names else kind.plural
    raise MfxError(f"timed out waiting for the condition on {kind.plural}/{name}{reason}; "
                   f"see 'mfx describe {short} {name}' and 'mfx why {short}/{name}'")


# --- diff ----------------------------------------------------------------------------------------------------


def _diff_view(obj: Obj | None) -> list[str]:
    if obj is None:
        return []
    data = copy.deepcopy(obj)
    data.pop("status", None)
    meta = data.get("metadata", {})
    for key in ("resourceVersion", "managedFields", "uid", "creationTimestamp"):
        meta.pop(key, None)
    (meta.get("annotations") or {}).pop(LAST_APPLIED_ANNOTATION, None)
    if meta.get("annotations") == {}:
        meta.pop("annotations")
    return output.dump_yaml(data).splitlines(keepends=True)


@click.command()
@click.argument("resources", nargs=-1)
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-")
@click.option("-R", "--recursive", is_flag=True)
@pass_cli
def diff(ctx: CliContext, resources: tuple[str, ...], filenames: tuple[str, ...], recursive: bool) -> None:
    """Show what 'mfx apply' (or a GitSource's next sync) would change (exit 0: no change, 1: changes, >1: error).

    \b
    Examples:
      mfx diff -f manifests/
      mfx diff gitsource/plugins
    """
    if resources:
        if filenames:
            raise BadRequestError("give either -f FILE or gitsource/NAME, not both")
        gitops.run_diff(ctx, resources)
    try:
        manifests = load_objects(filenames, recursive=recursive)
        client = ctx.client
        changed = False
        for manifest in manifests:
            obj = manifest.obj
            kind = kind_for(obj["apiVersion"], obj["kind"])
            name = obj["metadata"]["name"]
            desired = desired_state(obj)
            try:
                live: Obj | None = client.get(kind, name)
            except NotFoundError:
                live = None
            if live is None:
                after = client.create(desired, kind, dry_run=True)
            else:
                after = client.replace(merged_for_apply(live, desired), kind, dry_run=True)
            before_lines = _diff_view(live)
            after_lines = _diff_view(after)
            if before_lines != after_lines:
                changed = True
                label = f"{kind.api_version}.{kind.kind}.{name}"
                sys.stdout.writelines(difflib.unified_diff(before_lines, after_lines,
                                                           f"live/{label}", f"merged/{label}"))
    except ValidationError as error:
        for item in error.errors:
            output.error(str(item))
        sys.exit(2)
    except MfxError as error:
        output.error(str(error))
        sys.exit(2)
    sys.exit(1 if changed else 0)

# --- explain, events, api-resources, version ----------------------------------------------------------------


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
    event_kind = _event_kind()
    field_selector = None
    if for_ref:
        kind_text, _, name = for_ref.partition("/")
        kind = resolve_kind(kind_text)
        field_selector = f"involvedObject.kind={kind.kind}" + (f",involvedObject.name={name}" if name else "")
    listing = client.list(event_kind, field_selector=field_selector)
    wanted = {t.strip().lower() for t in types.split(",")} if types else None
    items = [e for e in listing["items"] if wanted is None or str(e.get("type", "")).lower() in wanted]
    items.sort(key=_event_order)
    if fmt != "table":
        output.print_objects(items, fmt, single=False)
        return
    headers = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]

    def row(event: Obj) -> list[Any]:
        involved = event.get("involvedObject") or {}
        return [_event_age(event), event.get("type"), event.get("reason"),
                f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}", event.get("message")]

    texts = [output.cell_texts(row(e)) for e in items]
    widths = output.column_widths(headers, texts)
    if items:
        click.echo("\n".join(output.format_row(line, widths) for line in [headers, *texts]))
    elif not watch:
        click.echo("No events found.", err=True)
    if watch:
        header_printed = bool(items)
        for event in client.watch(event_kind, resource_version=listing["metadata"]["resourceVersion"],
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
    click.echo(f"Client Version: v{mfx.__version__}")
    if client_only:
        return
    server = ctx.client.request("GET", "/version")
    click.echo(f"Server Version: {server.get('gitVersion')}")


# The kubectl verbs, in the order `mfx --help` lists them; main.build_cli adds the rest.
KUBECTL_VERBS: tuple[click.Command, ...] = (
    apply, get, describe, delete, diff, patch, wait_cmd, explain, events, logs, api_resources, version, completion,
)
