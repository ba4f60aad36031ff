"""Admission: every object is validated and defaulted before the store sees it.

The same validation runs in ``mfx apply`` (with file and line numbers) and here (with
field paths, answered as a 422 Status with causes), so a client that skips it — kubectl,
a script using the Kubernetes client — cannot store an invalid object.
"""

from __future__ import annotations

import copy
from typing import Any

from mfx.api import validation
from mfx.api.objects import Obj
from mfx.api.schema import Schemas, load_schemas


class Admission:
    def __init__(self, schemas: Schemas | None = None) -> None:
        self.schemas = schemas if schemas is not None else load_schemas()

    def admit(self, obj: Obj) -> Obj:
        """A validated, defaulted copy of ``obj``; raises ``ValidationError`` listing every problem."""
        candidate = copy.deepcopy(obj)
        return validation.validate_object(candidate, schemas=self.schemas)

    def printer_columns(self, kind: str) -> list[dict[str, Any]]:
        return self.schemas.printer_columns(kind)
