"""What ``mfx get -w`` has printed for one kind, so that it prints a row again only when it shows a change."""

from __future__ import annotations

from collections import namedtuple

from mfx.cli import output

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NamedTuple

    class RowSeen(NamedTuple):
        """One row as printed, and the resourceVersion of the object it showed.

        Records of ``get``, the command typed most, are named tuples and plain classes: see
        ``mfx.errors.FieldError``."""

        resource_version: int
        texts: list[str]
else:  # the same record, without importing typing
    RowSeen = namedtuple("RowSeen", "resource_version texts")


class WatchedRows:
    """What ``get`` printed for one kind, so ``-w`` prints a row only when it shows a change.

    A status write that changes no printed column (a health probe's timestamp, say) prints
    nothing; age columns are left out of the comparison, as they change by themselves."""

    def __init__(self, columns: list[dict[str, Any]], kept: list[int], name_prefix: str, *,
                 show_labels: bool = False) -> None:
        self.columns = columns  # every column definition of the kind's tables
        self.kept = kept  # the indexes of the printed ones
        self.name_prefix = name_prefix
        self.show_labels = show_labels  # a LABELS column last, from each row's object metadata
        self.rows: dict[str, RowSeen] = {}
        self.widths: list[int] = []
        self.resource_version = ""
        self.header_printed = False

    @classmethod
    def of(cls, tables: list[dict[str, Any]], *, wide: bool, name_prefix: str, show_labels: bool = False,
           order: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None) -> WatchedRows:
        """``order``: the rows in the order to print them (``--sort-by``); as listed without it."""
        columns: list[dict[str, Any]] = next(
            (t["columnDefinitions"] for t in tables if t.get("columnDefinitions")), [])
        shown = cls(columns=columns, kept=output.printed_columns(columns, wide=wide), name_prefix=name_prefix,
                    show_labels=show_labels)
        if order is not None:
            tables = [{**table, "rows": order(table.get("rows") or [])} for table in tables]
        versions: list[str] = []
        for table in tables:
            listed = str((table.get("metadata") or {}).get("resourceVersion") or "")
            for row in table.get("rows") or []:
                name, version = row_identity(row)
                shown.rows[name] = RowSeen(version, shown.texts(row))
                listed = listed or str(version)  # a single object's table: watch from its version
            versions.append(listed)
        shown.resource_version = min((v for v in versions if v.isdigit()), key=int, default="")
        shown.widths = output.column_widths(shown.headers, [r.texts for r in shown.rows.values()])
        return shown

    @property
    def headers(self) -> list[str]:
        return [self.columns[i]["name"].upper() for i in self.kept] + (["LABELS"] if self.show_labels else [])

    def texts(self, row: dict[str, Any]) -> list[str]:
        cells = row.get("cells") or []
        picked = [cells[i] if i < len(cells) else None for i in self.kept]
        if self.name_prefix and picked:
            picked[0] = f"{self.name_prefix}{picked[0]}"
        texts = output.cell_texts(picked)
        if self.show_labels:
            labels = ((row.get("object") or {}).get("metadata") or {}).get("labels") or {}
            texts.append(",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>")
        return texts

    def render(self) -> str:
        lines = [output.format_row(self.headers, self.widths)]
        lines += [output.format_row(r.texts, self.widths) for r in self.rows.values()]
        return "\n".join(lines)

    def _same(self, before: list[str], after: list[str]) -> bool:
        compared = [n for n, i in enumerate(self.kept) if self.columns[i].get("type") != "date"]
        if self.show_labels:
            compared.append(len(self.kept))
        return [before[n] for n in compared] == [after[n] for n in compared]

    def lines_for(self, row: dict[str, Any], *, deleted: bool) -> list[str]:
        """The lines to print for one watched row: none when no printed column changed."""
        name, version = row_identity(row)
        texts = self.texts(row)
        previous = self.rows.get(name)
        if previous is not None and version and version <= previous.resource_version:
            return []  # already printed: the watch started before this object's listing
        if deleted:
            self.rows.pop(name, None)
        else:
            self.rows[name] = RowSeen(version, texts)
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


def row_identity(row: dict[str, Any]) -> tuple[str, int]:
    """A table row's object name and resourceVersion (0 when the row carries no metadata)."""
    meta = (row.get("object") or {}).get("metadata") or {}
    cells = row.get("cells") or [""]
    version = str(meta.get("resourceVersion") or "")
    return str(meta.get("name") or cells[0]), int(version) if version.isdigit() else 0
