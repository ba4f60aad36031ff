"""What ``mfx apply`` does once its line is read, without click: the click command and the
fast path (``mfx.cli.fast_path``, for a new ``mfx`` process) both run it."""

from __future__ import annotations

import sys

from mfx.api.kinds import kind_for
from mfx.cli import output
from mfx.cli.session import CliContext
from mfx.collector import collection_paused
from mfx.errors import MfxError

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from collections.abc import Iterable

    from mfx.cli.bulk_client import Outcome



def run(ctx: CliContext, filenames: tuple[str, ...], *, recursive: bool, dry_run: str,
        force_conflicts: bool) -> None:
    """Apply the manifests of ``filenames`` and print one line per object, in input order."""
    # The manifests read, and their requests and answers, are thousands of objects alive at
    # once and none of them cyclic: the collector would only walk them again and again.
    with collection_paused():
        _apply(ctx, filenames, recursive, dry_run, force_conflicts)


def run_server_side(ctx: CliContext, filenames: tuple[str, ...], *, recursive: bool, dry_run: bool,
                    force_conflicts: bool, field_manager: str) -> None:
    """``apply --server-side``: each object as an apply configuration of ``field_manager``."""
    from mfx.cli.apply_server_side import apply_server_side
    from mfx.cli.manifests import load_objects

    manifests = load_objects(filenames, recursive=recursive, validate=False)  # the daemon validates
    with collection_paused():
        _report(apply_server_side(ctx.client, manifests, field_manager=field_manager,
                                  force_conflicts=force_conflicts, dry_run=dry_run),
                output.DRY_RUN_SUFFIX["server"] if dry_run else "")


def _apply(ctx: CliContext, filenames: tuple[str, ...], recursive: bool, dry_run: str,
           force_conflicts: bool) -> None:
    # Validation pulls in jsonschema: imported by the commands that read manifests only.
    from mfx.cli.apply_requests import apply_manifests
    from mfx.cli.apply_stream import apply_streamed
    from mfx.cli.manifests import check_manifests, load_objects

    suffix = output.DRY_RUN_SUFFIX.get(dry_run, "")
    if dry_run != "client":
        try:
            client = ctx.client
        except MfxError:
            pass  # the usual way below names an invalid file before a wrong daemon address
        else:
            # One request, sent as the files are read: the daemon works meanwhile.
            streamed = apply_streamed(client, filenames, recursive=recursive, dry_run=dry_run == "server",
                                      force_conflicts=force_conflicts)
            if streamed is not None:
                _report(streamed, suffix)
                return
    # The daemon validates what it is sent: only a client dry run validates here first.
    manifests = load_objects(filenames, recursive=recursive, validate=dry_run == "client")
    if dry_run == "client":
        lines = []
        for manifest in manifests:
            obj = manifest.obj
            lines.append(f"{output.object_ref(kind_for(obj['apiVersion'], obj['kind']), obj['metadata']['name'])} "
                         f"configured{suffix}")
        _echo(lines)
        return
    try:
        client = ctx.client
    except MfxError:
        check_manifests(manifests)  # an invalid file is named before a wrong daemon address
        raise
    _report(apply_manifests(client, manifests, dry_run=dry_run == "server", force_conflicts=force_conflicts,
                            validated=False), suffix)


def _report(outcomes: Iterable[Outcome], suffix: str) -> None:
    """A line per outcome, as they come."""
    # The outcome lines go out in one write (each line a write of its own costs milliseconds
    # for a thousand); a warning goes out in its place, after the lines before it, and after a
    # refusal the lines of what was applied come before the error.
    lines: list[str] = []
    try:
        for outcome in outcomes:
            if outcome.warning:
                _echo(lines)
                output.warn(outcome.warning)
            lines.append(f"{output.object_ref(outcome.kind, outcome.name)} {outcome.verb}{suffix}")
    finally:
        _echo(lines)


def _echo(lines: list[str]) -> None:
    """The lines on stdout, flushed, as ``click.echo`` writes them."""
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        lines.clear()
