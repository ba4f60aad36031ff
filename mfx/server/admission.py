"""Admission: every object is validated and defaulted before the store sees it.

The same validation runs in ``mfx apply`` (with file and line numbers) and here (with
field paths, answered as a 422 Status with causes), so a client that skips it — kubectl,
a script using the Kubernetes client — cannot store an invalid object.

Writes to the status subresource are checked against the CRD's status schema (types,
enumerations, required fields), as the API server does: controllers, tables and
``mfx describe`` read status back and rely on its shape.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from mfx.api import validation
from mfx.api.objects import Obj
from mfx.api.schema import Schemas, load_schemas
from mfx.api.yaml_loader import join_index, join_key
from mfx.errors import FieldError, ValidationError


class Admission:
    def __init__(self, schemas: Schemas | None = None) -> None:
        self._schemas = schemas
        self._status_validators: dict[str, jsonschema.protocols.Validator] = {}

    @property
    def schemas(self) -> Schemas:
        """The CRDs' schemas, read at the first request that needs them: a daemon starts its
        plugins without them (parsing the CRDs takes the event loop several milliseconds)."""
        if self._schemas is None:
            self._schemas = load_schemas()
        return self._schemas

    def admit(self, obj: Obj) -> Obj:
        """A validated, defaulted copy of ``obj``; raises ``ValidationError`` listing every problem."""
        # Validation only reads ``obj``; the defaulted result is a copy of its own.
        return validation.validate_object(obj, schemas=self.schemas)

    def admit_owned(self, obj: Obj, *, values_checked: bool = False) -> Obj:
        """``admit`` for an object the caller made and hands over: validated, then defaulted in
        place (no copy); ``values_checked`` as for ``validation.validate``.

        An admission that refines ``admit`` (a policy of its own) is asked through it, so
        every write goes through that policy."""
        if type(self).admit is not Admission.admit:
            return self.admit(obj)
        validation.validate(obj, schemas=self.schemas, values_checked=values_checked)
        self.schemas.fill_defaults(obj)
        return obj

    def check_status(self, obj: Obj) -> None:
        """Raise ``ValidationError`` when ``obj``'s status does not fit its kind's status schema.

        Fields the schema does not name are kept, as the daemon's own status writes may carry
        more than the CRD documents."""
        if "status" not in obj:
            return
        kind = str(obj.get("kind", ""))
        validator = self._status_validator(kind)
        if validator is None:
            return
        problems = [
            FieldError(path=_status_path(error.absolute_path), message=error.message)
            for error in sorted(validator.iter_errors(obj["status"]), key=lambda e: list(map(str, e.absolute_path)))
        ]
        if problems:
            raise ValidationError(problems, kind=kind, name=str(obj.get("metadata", {}).get("name", "")))

    def _status_validator(self, kind: str) -> jsonschema.protocols.Validator | None:
        if kind not in self._status_validators:
            schema = self.schemas.openapi(kind).get("properties", {}).get("status")
            if schema is None:
                return None
            self._status_validators[kind] = jsonschema.Draft7Validator(schema)
        return self._status_validators[kind]

    def printer_columns(self, kind: str) -> list[dict[str, Any]]:
        return self.schemas.printer_columns(kind)


def _status_path(steps: Any) -> str:
    path = "status"
    for step in steps:
        path = join_index(path, step) if isinstance(step, int) else join_key(path, str(step))
    return path
