"""``mfx get``: the command and its ``-o`` option; what it prints is ``listing``'s."""

from __future__ import annotations

from typing import Any

import click

from mfx.cli import listing
from mfx.cli.completers import complete_get_resources
from mfx.cli.context import CliContext, pass_cli
from mfx.errors import MfxError


class OutputFormat(click.ParamType):
    """``-o``: table, wide, yaml, json, name, or ``jsonpath=TEMPLATE`` (checked as it is parsed)."""

    name = "format"
    CHOICES = (*listing.TABLE_FORMATS, "yaml", "json", "name")
    JSONPATH = listing.JSONPATH
    CUSTOM_COLUMNS = listing.CUSTOM_COLUMNS

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        # kubectl's habit "-o=jsonpath=..." reaches a short option as "=jsonpath=...".
        text = str(value).removeprefix("=")
        if text in self.CHOICES:
            return text
        template = text.removeprefix(self.JSONPATH)
        if text in ("jsonpath", self.JSONPATH):
            self.fail("jsonpath needs a template, e.g. -o jsonpath='{.items[*].metadata.name}'", param, ctx)
        if text.startswith(self.CUSTOM_COLUMNS) or text == self.CUSTOM_COLUMNS.rstrip("="):
            try:
                listing.parse_custom_columns(text.removeprefix(self.CUSTOM_COLUMNS))
            except MfxError as error:
                self.fail(str(error), param, ctx)
            return text
        if text.startswith(self.JSONPATH):
            from mfx.server import jsonpath

            try:
                jsonpath.parse_template(template)
            except MfxError as error:
                self.fail(f"error parsing jsonpath {template}: {error}", param, ctx)
            return text
        self.fail(f"{text!r} is not one of {', '.join(self.CHOICES)}, jsonpath=TEMPLATE, "
                  "custom-columns=HEADER:JSONPATH,...", param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(c) for c in (*self.CHOICES, self.JSONPATH, self.CUSTOM_COLUMNS)
                if c.startswith(incomplete)]


def _check_sort_by(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A --sort-by that does not parse is refused before any request, as kubectl does."""
    if value:
        from mfx.server import jsonpath

        try:
            jsonpath.column_template(value)
        except MfxError as error:
            raise click.BadParameter(f"error parsing jsonpath {value}: {error}", ctx, param) from None
    return value


@click.command()
@click.argument("resources", nargs=-1, shell_complete=complete_get_resources)
@click.option("-o", "--output", "fmt", type=OutputFormat(), default="table", metavar="FORMAT",
              help="table, wide, yaml, json, name, jsonpath=TEMPLATE (kubectl's JSONPath), or "
                   "custom-columns=HEADER:JSONPATH,... (a column per field).")
@click.option("-l", "--selector", help="Label selector, e.g. -l app=player,tier!=ui")
@click.option("-w", "--watch", is_flag=True,
              help="After listing, print a row again whenever one of its columns changes.")
@click.option("--show-labels", is_flag=True, help="A LABELS column last in the table.")
@click.option("--sort-by", metavar="JSONPATH", callback=_check_sort_by,
              help="Order the objects by this field, e.g. --sort-by=.metadata.creationTimestamp")
@pass_cli
def get(ctx: CliContext, resources: tuple[str, ...], fmt: str, selector: str | None, watch: bool,
        show_labels: bool, sort_by: str | None) -> None:
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
      mfx get pm --show-labels --sort-by=.spec.version
      mfx get pm -o custom-columns=NAME:.metadata.name,RUNS:.status.resolvedVersion
    """
    if sort_by and watch:
        raise click.UsageError("--sort-by orders a listing; a watch prints changes as they come (drop one)")
    listing.show(ctx, resources, fmt, selector, watch, show_labels=show_labels, sort_by=sort_by)
