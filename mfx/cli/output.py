"""Printing like kubectl: aligned tables, YAML/JSON documents, ``kind.group/name`` names.

It loads neither click nor a YAML or JSON library up front: the commands ``mfx`` answers
without click print through here, and most print no document at all."""

from __future__ import annotations

import sys
import unicodedata

# Not typing's: mypy reads the name alone, and importing typing costs a hot ``mfx`` call time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TextIO

    from mfx.api.kinds import KindInfo
    from mfx.errors import MfxError


# What a dry run adds to each line a writing command prints (as kubectl words it).
DRY_RUN_SUFFIX = {"client": " (dry run)", "server": " (server dry run)"}


def qualified(kind: KindInfo) -> str:
    return f"{kind.singular}.{kind.group}" if kind.group else kind.singular


def object_ref(kind: KindInfo, name: str) -> str:
    """``pluginmanifest.mfx.musicfox.io/hello``, as kubectl names objects."""
    return f"{qualified(kind)}/{name}"


def cell_text(value: Any) -> str:
    if value is None or value == "":
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def char_width(char: str) -> int:
    """Terminal columns one character takes: 2 for East Asian wide and fullwidth, 0 for marks."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0  # combining accents, zero-width joiners: drawn on the previous character
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 2
    return 1


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal; ``len()`` counts code points, not columns."""
    if text.isascii():
        return len(text)  # every ASCII character takes one column: most cells, at no per-character cost
    return sum(char_width(c) for c in text)


def truncate(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``width`` columns, ending in ``ellipsis`` when something was cut.

    A wide character never straddles the limit: it goes whole, and the line may end a column
    short (``pad`` fills it)."""
    if display_width(text) <= width:
        return text
    room = width - display_width(ellipsis)
    kept: list[str] = []
    used = 0
    for char in text:
        w = char_width(char)
        if used + w > room:
            break
        kept.append(char)
        used += w
    return "".join(kept) + ellipsis if room >= 0 else ellipsis[:width]


def pad(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` columns (``str.ljust`` counts code points)."""
    return text + " " * max(0, width - display_width(text))


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    widths = [display_width(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    return widths


def format_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One table line: cells padded to their column's width, three spaces apart, as kubectl."""
    return "   ".join(pad(cell, widths[i]) for i, cell in enumerate(cells)).rstrip()


def cell_texts(row: Sequence[Any], max_widths: Sequence[int | None] | None = None) -> list[str]:
    """A row's cells as printed: ``<none>`` for empty ones, cut to the column's limit if any."""
    texts = [cell_text(c) for c in row]
    if max_widths:
        texts = [truncate(t, limit) if i < len(max_widths) and (limit := max_widths[i]) is not None else t
                 for i, t in enumerate(texts)]
    return texts


def render_table(headers: list[str], rows: list[list[Any]], out: TextIO | None = None, *,
                 max_widths: Sequence[int | None] | None = None) -> None:
    """An aligned table; ``max_widths`` caps columns (None: no cap), cutting long cells with "…"."""
    out = out or sys.stdout
    texts = [cell_texts(row, max_widths) for row in rows]
    widths = column_widths(headers, texts)
    lines = [format_row(headers, widths)] + [format_row(row, widths) for row in texts]
    out.write("\n".join(lines) + "\n")


def printed_columns(columns: list[dict[str, Any]], *, wide: bool) -> list[int]:
    """Indexes of the columns a table shows: priority 0 ones, and the rest with ``-o wide``."""
    return [i for i, c in enumerate(columns) if wide or int(c.get("priority", 0)) == 0]


def table_rows(table: dict[str, Any], *, wide: bool, name_prefix: str = "") -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of a metav1.Table, keeping wide-only columns for ``-o wide``."""
    columns = table.get("columnDefinitions") or []
    keep = printed_columns(columns, wide=wide)
    headers = [columns[i]["name"].upper() for i in keep]
    rows = []
    for row in table.get("rows") or []:
        cells = row.get("cells") or []
        picked = [cells[i] if i < len(cells) else None for i in keep]
        if name_prefix and picked:
            picked[0] = f"{name_prefix}{picked[0]}"
        rows.append(picked)
    return headers, rows


def echo(text: str = "", *, err: bool = False) -> None:
    """A line on stdout (stderr with ``err``), flushed at once as ``click.echo`` does: a pipe
    reading a watch sees each line when it is printed."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def dump_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dump_json(data: Any) -> str:
    import orjson

    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def print_objects(items: list[dict[str, Any]], fmt: str, *, single: bool) -> None:
    data: Any = items[0] if single and items else as_list(items)
    if fmt == "yaml":
        sys.stdout.write(dump_yaml(data))
    else:
        sys.stdout.write(dump_json(data))


def error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def warn(message: str) -> None:
    sys.stderr.write(f"Warning: {message}\n")



def progress(message: str) -> None:
    """A step of a longer command, on stderr: stdout keeps only the results."""
    echo(message, err=True)


def human_size(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1048576:.1f} MiB"


def print_error(error: MfxError) -> None:
    """One ``error:`` line per problem: a validation error names each bad field on its own line."""
    from mfx.errors import ValidationError

    for item in error.errors if isinstance(error, ValidationError) else [error]:
        echo(f"error: {item}", err=True)


class _ErrorsReported:
    """The context of ``exit_on_error`` and ``reported_errors``: a class, as contextlib's import
    costs the commands that run before click more than this does."""

    __slots__ = ("_code", "_interrupted")

    def __init__(self, code: int, interrupted: int | None) -> None:
        self._code = code
        self._interrupted = interrupted

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if error is None:
            return
        if isinstance(error, KeyboardInterrupt) and self._interrupted is not None:
            sys.exit(self._interrupted)
        if not isinstance(error, Exception):
            return
        # mfx.errors is imported here, not up front: the commands that print what the daemon
        # answered never load it on success.
        from mfx.errors import MfxError

        if isinstance(error, MfxError):
            print_error(error)
            sys.exit(self._code)


def exit_on_error(code: int) -> _ErrorsReported:
    """Print an mfx error and exit with ``code``: for commands whose exit 1 means something else
    (``mfx diff``: 1 is "changes found")."""
    return _ErrorsReported(code, None)


def reported_errors() -> _ErrorsReported:
    """How every ``mfx`` command ends on a failure: one line per error on stderr and exit code 1,
    never a traceback; Ctrl-C exits 130."""
    return _ErrorsReported(1, 130)
