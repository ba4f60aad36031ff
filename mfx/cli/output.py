"""Printing like kubectl: aligned tables, YAML/JSON documents, ``kind.group/name`` names."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import orjson
import yaml

from mfx.api.kinds import KindInfo


def qualified(kind: KindInfo) -> str:
    return f"{kind.singular}.{kind.group}" if kind.group else kind.singular


def object_ref(kind: KindInfo, name: str) -> str:
    """``pluginmanifest.mfx.musicfox.io/hello``, as kubectl names objects."""
    return f"{qualified(kind)}/{name}"


def _cell_text(value: Any) -> str:
    if value is None or value == "":
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_table(headers: list[str], rows: list[list[Any]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    texts = [[_cell_text(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in texts:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["   ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for row in texts:
        lines.append("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    out.write("\n".join(lines) + "\n")


def table_rows(table: dict[str, Any], *, wide: bool, name_prefix: str = "") -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of a metav1.Table, keeping wide-only columns for ``-o wide``."""
    columns = table.get("columnDefinitions") or []
    keep = [i for i, c in enumerate(columns) if wide or int(c.get("priority", 0)) == 0]
    headers = [columns[i]["name"].upper() for i in keep]
    rows = []
    for row in table.get("rows") or []:
        cells = row.get("cells") or []
        picked = [cells[i] if i < len(cells) else None for i in keep]
        if name_prefix and picked:
            picked[0] = f"{name_prefix}{picked[0]}"
        rows.append(picked)
    return headers, rows


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dump_json(data: Any) -> str:
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
