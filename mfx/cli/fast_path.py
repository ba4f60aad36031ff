"""The commands ``mfx`` answers before importing click: ``--help``, ``version``, ``now``, ``get``, ``apply``.

Importing click and every command costs several times an interpreter's start, which these
commands (typed most, or run from scripts in loops) should not pay. This module recognises
only the plain forms of them and runs the very functions their click commands call
(``versions``, ``now_playing``, ``listing``, ``apply_run``); anything else, such as an unknown option, a
``--help`` of a command or a JSONPath, returns False and click parses the line as always, with
its own messages.
"""

from __future__ import annotations

import os
import sys

GLOBAL_OPTIONS = {"--home": "MFX_HOME", "--server": "MFX_SERVER", "--token": "MFX_TOKEN"}
GET_OPTIONS = {"-o": "output", "--output": "output", "-l": "selector", "--selector": "selector"}
APPLY_OPTIONS = {"-f": "filename", "--filename": "filename", "--dry-run": "dry_run"}
DRY_RUNS = ("none", "client", "server")


def _option(args: list[str], index: int, names: dict[str, str]) -> tuple[str, str, int] | None:
    """The option at ``args[index]`` as (key, value, next index): ``--name VALUE``,
    ``--name=VALUE`` or ``-xVALUE``; None for anything else."""
    arg = args[index]
    if arg in names:
        if index + 1 >= len(args) or args[index + 1].startswith("-"):
            return None
        return names[arg], args[index + 1], index + 2
    name, equals, value = arg.partition("=")
    if equals and name.startswith("--") and name in names and value:
        return names[name], value, index + 1
    if len(arg) > 2 and not arg.startswith("--") and arg[:2] in names:
        return names[arg[:2]], arg[2:], index + 1
    return None


def _globals(args: list[str]) -> tuple[dict[str, str], int] | None:
    """The group's options before the command, as click reads them (the environment fills the
    ones not given; an empty variable counts as unset), and where the command starts."""
    given: dict[str, str] = {}
    index = 0
    while index < len(args) and args[index].startswith("--") and args[index] != "--help":
        found = _option(args, index, GLOBAL_OPTIONS)
        if found is None:
            return None
        given[found[0]], index = found[1], found[2]
    values = {env: given.get(env) or os.environ.get(env, "") for env in GLOBAL_OPTIONS.values()}
    return {env: value for env, value in values.items() if value}, index


def _get_line(args: list[str]) -> tuple[tuple[str, ...], str, str | None] | None:
    """``get``'s resources, table format and selector, or None unless it is the plain form."""
    resources: list[str] = []
    options: dict[str, str] = {}
    index = 0
    while index < len(args):
        if not args[index].startswith("-"):
            resources.append(args[index])
            index += 1
            continue
        found = _option(args, index, GET_OPTIONS)
        if found is None:
            return None
        options[found[0]], index = found[1], found[2]
    from mfx.cli.listing import TABLE_FORMATS  # what get runs with anyway

    fmt = options.get("output", "table").removeprefix("=")
    if fmt not in TABLE_FORMATS:
        return None  # the other formats, and their errors, are click's
    return tuple(resources), fmt, options.get("selector")


class ApplyLine:
    """``apply``'s options, as its click command gets them."""

    def __init__(self) -> None:
        self.filenames: list[str] = []
        self.recursive = False
        self.dry_run = "none"
        self.force_conflicts = False


def _apply_line(args: list[str]) -> ApplyLine | None:
    """``apply``'s options, or None unless it is the plain form (``-f``, ``-R``, ``--dry-run``,
    ``--force-conflicts``; ``-f -`` reads stdin)."""
    line = ApplyLine()
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-R", "--recursive", "--force-conflicts"):
            if arg == "--force-conflicts":
                line.force_conflicts = True
            else:
                line.recursive = True
            index += 1
            continue
        if arg in ("-f", "--filename") and args[index + 1:index + 2] == ["-"]:
            line.filenames.append("-")
            index += 2
            continue
        found = _option(args, index, APPLY_OPTIONS)
        if found is None:
            return None
        key, value, index = found
        if key == "filename":
            line.filenames.append(value)
        elif value in DRY_RUNS:
            line.dry_run = value
        else:
            return None  # click words the choices
    return line


def help_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` (which click asks) finds it."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def run(args: list[str]) -> bool:
    """Run ``mfx ARGS`` if it is one of the plain forms; False when click has to."""
    parsed = _globals(args)
    if parsed is None:
        return False
    values, start = parsed
    command, rest = args[start:start + 1], args[start + 1:]
    if command in (["--help"], ["-h"]) and not rest:
        return _print_top_help()
    get_line = _get_line(rest) if command == ["get"] else None
    apply_line = _apply_line(rest) if command == ["apply"] else None
    if not (command == ["version"] and rest in ([], ["--client"]) or command == ["now"] and not rest
            or get_line is not None or apply_line is not None):
        return False
    from mfx.cli.session import CliContext

    home = values.get("MFX_HOME")
    ctx = CliContext(home=home or None, server=values.get("MFX_SERVER"),
                     token=values.get("MFX_TOKEN"))
    from mfx.cli import output

    try:
        with output.reported_errors():
            if command == ["version"]:
                from mfx.cli import versions

                versions.show(ctx, client_only=rest == ["--client"])
            elif command == ["now"]:
                from mfx.cli import now_playing

                now_playing.show(ctx)
            elif get_line is not None:
                from mfx.cli import listing

                listing.show(ctx, *get_line, watch=False)
            elif apply_line is not None:
                from mfx.cli import apply_run

                apply_run.run(ctx, tuple(apply_line.filenames), recursive=apply_line.recursive,
                              dry_run=apply_line.dry_run, force_conflicts=apply_line.force_conflicts)
    except BrokenPipeError:
        # As click does: a reader that went away (``mfx get pm | head``) ends the command
        # with exit code 1, and the interpreter's last flush must not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    finally:
        ctx.close()
    return True


def _print_top_help() -> bool:
    from mfx.cli.help_texts import TOP_HELP

    text = TOP_HELP.get(max(min(help_columns(), 100) - 2, 50))
    if text is None:
        return False
    sys.stdout.write(text)
    return True
