"""``mfx edit``: change a live object in an editor, as ``kubectl edit`` does.

Each object named is opened in turn: its YAML (or JSON with ``-o json``) without
``managedFields`` (the daemon keeps them), below a comment saying how the edit works. Saving
it unchanged or empty cancels. Otherwise what changed between the text opened and the text
saved is sent as a JSON merge patch, as kubectl sends its patch: a status the controller
wrote meanwhile, or a label another user set, is neither a conflict nor undone. When the
daemon refuses the change (a field that does not validate) or the file does not parse, the
file is opened again with the errors on top; saving it again without a change gives up, and
the text is kept in a file whose path is printed.

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
from mfx.cli.refs import named_refs
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


def render(obj: dict[str, Any], fmt: str) -> str:
    shown = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}
    return output.dump_json(shown) if fmt == "json" else output.dump_yaml(shown)


def without_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.lstrip().startswith("#"))


def parse_edited(text: str, kind: KindInfo, name: str) -> dict[str, Any]:
    """The object saved, or an error naming what is wrong with it."""
    from mfx.api.yaml_loader import load_body

    value = load_body(text.encode(), yaml_allowed=True)
    if not isinstance(value, dict):
        raise BadRequestError(f"expected one {kind.kind} object, got {type(value).__name__}")
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    if value.get("kind") != kind.kind or value.get("apiVersion") != kind.api_version or metadata.get("name") != name:
        raise BadRequestError("apiVersion, kind and metadata.name cannot be changed by an edit "
                              f"(they were {kind.api_version}, {kind.kind}, {name})")
    return value


def _error_comment(errors: list[str]) -> str:
    lines = [line for error in errors for line in error.splitlines()]
    return "# " + "\n# ".join(lines) + "\n#\n"


def edit_one(ctx: CliContext, kind: KindInfo, name: str, fmt: str, workdir: Path) -> str:
    """One object through the editor until it is saved, cancelled or given up; the line to print."""
    client = ctx.client
    original = render(client.get(kind, name), fmt)
    opened = parse_edited(original, kind, name)
    path = workdir / f"{kind.plural}-{name}.{'json' if fmt == 'json' else 'yaml'}"
    body, errors, last_failed = original, [], ""
    while True:
        path.write_text(HEADER + (_error_comment(errors) if errors else "") + body)
        run_editor(path)
        saved = without_comments(path.read_text())
        if not saved.strip():
            raise EditCancelled("Edit cancelled, saved file was empty.")
        if saved == original:
            raise EditCancelled("Edit cancelled, no changes made.")
        if errors and saved == last_failed:
            kept = Path(tempfile.mkstemp(prefix=f"mfx-edit-{name}-", suffix=path.suffix)[1])
            kept.write_text(saved)
            raise BadRequestError(f"{errors[0]}\nEdit cancelled, no valid changes were saved; "
                                  f"a copy of your changes is in {kept}")
        try:
            change = merge_patch_between(opened, parse_edited(saved, kind, name))
            if not change:  # comments or layout only
                raise EditCancelled("Edit cancelled, no changes made.")
            client.patch(kind, name, change)
        except MfxError as error:
            body, errors, last_failed = saved, [f"{output.object_ref(kind, name)}: {error}"], saved
            continue
        return f"{output.object_ref(kind, name)} edited"


@click.command()
@click.argument("resources", nargs=-1, required=True, shell_complete=complete_resources)
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="Edit the object as YAML or as JSON.")
@pass_cli
def edit(ctx: CliContext, resources: tuple[str, ...], fmt: str) -> None:
    """Edit live objects in your editor ($MFX_EDITOR, $EDITOR or vi); saved, each replaces the object.

    \b
    Examples:
      mfx edit pm local-music
      EDITOR='code --wait' mfx edit pm/local-music sink/default
      mfx edit gitsource plugins -o json
    """
    failed = False
    with tempfile.TemporaryDirectory(prefix="mfx-edit-") as tmp:
        for kind, name in named_refs(resources):
            try:
                click.echo(edit_one(ctx, kind, name, fmt, Path(tmp)))
            except EditCancelled as cancelled:
                click.echo(str(cancelled), err=True)
            except MfxError as error:
                output.error(str(error))
                failed = True
    if failed:
        sys.exit(1)
