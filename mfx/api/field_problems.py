"""The problems found in one object, each a one-line field error placed in its file when it came from one."""

from __future__ import annotations

from mfx.api.yaml_loader import Manifest
from mfx.errors import ErrorList, FieldError

# Messages quote the values they are about. A value's control characters, line separators
# and bidirectional overrides are shown escaped, so that every problem stays one line
# ("file:line: field: message") and reads as what it is.
_ESCAPES: dict[int, str] = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    **{c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))},
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
}


class FieldProblems(ErrorList):
    """Field errors of one object, placed in its file when the object came from one."""

    def __init__(self, *, source: Manifest | None = None, kind: str | None = None) -> None:
        super().__init__()
        self.source = source
        self.kind = kind  # once known: the formats of fields depend on it

    def add(self, path: str, message: str, **where: object) -> None:
        error = self.source.field_error(path, message) if self.source is not None else FieldError(path, message)
        self.items.append(error._replace(
            path=path.translate(_ESCAPES), message=message.translate(_ESCAPES), **where))  # type: ignore[arg-type]
