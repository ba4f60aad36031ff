"""``mfx edit``: change a live object in an editor, as ``kubectl edit`` does.

One object is opened as its YAML (or JSON with ``-o json``), several as one ``v1 List`` of
them, as kubectl opens them; without ``managedFields`` (the daemon keeps them), below a
comment saying how the edit works. Saving it unchanged or empty cancels. Otherwise what
changed in each object between the text opened and the text saved is sent as a JSON merge
patch, as kubectl sends its patch: a status the controller wrote meanwhile, or a label another
user set, is neither a conflict nor undone. When the daemon refuses a change (a field that
does not validate) or the file does not parse, the objects not yet changed are opened again
with the errors on top; saving them again without a change gives up, and the text is kept in
a file whose path is printed.

The editor is ``$MFX_EDITOR``, else ``$EDITOR``, else ``vi`` (a command line: ``code --wait``
works).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from mfx.api.apply import merge_patch_between
from mfx.api.kinds import KindInfo
from mfx.cli import output
from mfx.cli.completers import complete_resources
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.refs import chosen_objects, parse_refs
from mfx.errors import BadRequestError, MfxError

HEADER = """\
# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
"""


class EditCancelled(Exception):
    """The edit ended without a change (the reason is the message)."""


def editor_command() -> list[str]:
    """The editor's command line, from ``MFX_EDITOR``, ``EDITOR`` or ``vi``."""
    text = os.environ.get("MFX_EDITOR") or os.environ.get("EDITOR") or "vi"
    try:
        argv = shlex.split(text)
    except ValueError as error:
        raise BadRequestError(f"the editor command {text!r} does not parse ({error}); fix MFX_EDITOR or EDITOR") from None
    if not argv:
        raise BadRequestError("MFX_EDITOR or EDITOR is set but empty: name an editor, e.g. EDITOR=nano")
    return argv


def run_editor(path: Path) -> None:
    argv = editor_command()
    try:
        code = subprocess.run([*argv, str(path)], check=False).returncode
    except OSError as error:
        raise BadRequestError(f"cannot run the editor {argv[0]!r}: {error}; set EDITOR (or MFX_EDITOR) "
                              "to one that is installed") from None
    if code != 0:
        raise BadRequestError(f"the editor {argv[0]!r} exited with {code}: nothing was changed")


def render(objects: list[dict[str, Any]], fmt: str) -> str:
    """One object as itself, several as a ``v1 List`` of them (kubectl's), for the editor."""
    shown = [{**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}
             for obj in objects]
    document: dict[str, Any] = shown[0] if len(shown) == 1 else {"apiVersion": "v1", "kind": "List", "items": shown}
    return output.dump_json(document) if fmt == "json" else output.dump_yaml(document)


def without_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.lstrip().startswith("#"))


Target = tuple[KindInfo, str]


def parse_edited(text: str, targets: list[Target]) -> dict[Target, dict[str, Any]]:
    """The objects saved, by the target each one is, or an error naming what is wrong: the
    document's shape, or an object added, dropped or renamed (an edit changes objects only)."""
    from mfx.api.yaml_loader import load_body

    value = load_body(text.encode(), yaml_allowed=True)
    if not isinstance(value, dict):
        raise BadRequestError(f"expected an object, got {type(value).__name__}")
    several = len(targets) > 1
    if several and (value.get("kind") != "List" or not isinstance(value.get("items"), list)):
        raise BadRequestError("expected the v1 List of the objects opened (kind: List, items: [...])")
    items = value["items"] if several else [value]
    saved: dict[Target, dict[str, Any]] = {}
    for item in items:
        metadata = item.get("metadata") if isinstance(item, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        target = next((t for t in targets if isinstance(item, dict) and item.get("kind") == t[0].kind
                       and item.get("apiVersion") == t[0].api_version and name == t[1]), None)
        if target is None or target in saved:
            opened = ", ".join(f"{kind.api_version} {kind.kind} {name}" for kind, name in targets)
            raise BadRequestError("apiVersion, kind and metadata.name cannot be changed by an edit, nor objects "
                                  f"added or removed (opened: {opened})")
        saved[target] = item
    if len(saved) != len(targets):
        missing = ", ".join(output.object_ref(kind, name) for kind, name in targets if (kind, name) not in saved)
        raise BadRequestError(f"objects cannot be removed by an edit ({missing} missing)")
    return saved


def _error_comment(errors: list[str]) -> str:
    lines = [line for error in errors for line in error.splitlines()]
    return "# " + "\n# ".join(lines) + "\n#\n"


def edit_objects(ctx: CliContext, targets: list[Target], fmt: str, workdir: Path) -> None:
    """The objects through the editor until each is saved, or the edit is cancelled or given
    up; each object changed is said as it is changed."""
    client = ctx.client
    live = [client.get(kind, name) for kind, name in targets]
    original = render(live, fmt)
    opened = parse_edited(original, targets)
    first = targets[0]
    path = workdir / (f"{first[0].plural}-{first[1]}" if len(targets) == 1 else "objects")
    path = path.with_suffix(".json" if fmt == "json" else ".yaml")
    body, last_failed = original, ""
    errors: list[str] = []
    while True:
        path.write_text(HEADER + (_error_comment(errors) if errors else "") + body)
        run_editor(path)
        saved = without_comments(path.read_text())
        if not saved.strip():
            raise EditCancelled("Edit cancelled, saved file was empty.")
        if saved == body and not errors:
            raise EditCancelled("Edit cancelled, no changes made.")
        if errors and saved == last_failed:
            kept = Path(tempfile.mkstemp(prefix="mfx-edit-", suffix=path.suffix)[1])
            kept.write_text(saved)
            raise BadRequestError(f"{errors[0]}\nEdit cancelled, no valid changes were saved; "
                                  f"a copy of your changes is in {kept}")
        try:
            edited = parse_edited(saved, targets)
        except MfxError as error:
            errors, last_failed, body = [str(error)], saved, saved
            continue
        errors = []
        failed: list[Target] = []
        changed = False
        for target in targets:
            change = merge_patch_between(opened[target], edited[target])
            if not change:  # comments or layout only
                continue
            changed = True
            ref = output.object_ref(*target)
            try:
                client.patch(target[0], target[1], change)
            except MfxError as error:
                errors.append(f"{ref}: {error}")
                failed.append(target)
                continue
            click.echo(f"{ref} edited")
        if not changed:
            raise EditCancelled("Edit cancelled, no changes made.")
        if not failed:
            return
        # As kubectl: what was changed stays changed; the refused objects are opened again.
        targets = failed
        opened = {target: opened[target] for target in failed}
        body = last_failed = render([edited[target] for target in failed], fmt)


@click.command()
@click.argument("resources", nargs=-1, required=True, shell_complete=complete_resources)
@click.option("-l", "--selector", help="Edit every object of the kind matching this label selector.")
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="Edit the object as YAML or as JSON.")
@pass_cli
def edit(ctx: CliContext, resources: tuple[str, ...], selector: str | None, fmt: str) -> None:
    """Edit live objects in your editor ($MFX_EDITOR, $EDITOR or vi); several open as one List.

    \b
    Examples:
      mfx edit pm local-music
      EDITOR='code --wait' mfx edit pm/local-music sink/default
      mfx edit pm -l tier=audio          # a kind alone: every object of it
      mfx edit gitsource plugins -o json
    """
    targets = _targets(ctx, resources, selector)
    if not targets:
        click.echo("No resources found", err=True)
        return
    with tempfile.TemporaryDirectory(prefix="mfx-edit-") as tmp:
        try:
            edit_objects(ctx, targets, fmt, Path(tmp))
        except EditCancelled as cancelled:
            click.echo(str(cancelled), err=True)
        except MfxError as error:
            output.error(str(error))
            sys.exit(1)


def _targets(ctx: CliContext, resources: tuple[str, ...], selector: str | None) -> list[Target]:
    """kubectl edit's choice: the objects named, or, for a kind alone, every object of it (or
    those ``-l`` matches); names and ``-l`` together are refused, as everywhere."""
    kind_alone = all(name is None for _, name in parse_refs(resources))
    return chosen_objects(ctx.client, resources, selector=selector, everything=kind_alone and selector is None,
                          action="edit")
