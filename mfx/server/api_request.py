"""What a request asks for: its query parameters, preconditions and the object it names."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from mfx.api.json_values import json_type_phrase
from mfx.api.kinds import KindInfo
from mfx.api.objects import Obj
from mfx.errors import BadRequestError, FieldError, ValidationError
from mfx.store.strategy import SERVER_METADATA

# Fields the server owns: a client's values for them are ignored on create.
SERVER_OWNED_METADATA = (*SERVER_METADATA, "managedFields", "selfLink")


def carries_resource_version(body: Any) -> bool:
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return isinstance(metadata, dict) and bool(metadata.get("resourceVersion"))


def check_identity(obj: Any, kind: KindInfo, name: str | None) -> None:
    """The object is one of ``kind`` named ``name``, with metadata an object (which later
    steps rely on); the rest is for validation."""
    if not isinstance(obj, dict):
        raise BadRequestError(f"the result is {json_type_phrase(obj)}, not a {kind.kind} object")
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError([FieldError(
            path="metadata", message=f"expected an object with name, labels and annotations, got {json_type_phrase(metadata)}",
        )], kind=kind.kind)
    if obj.get("kind") != kind.kind or obj.get("apiVersion") != kind.api_version:
        raise BadRequestError(
            f'the object is {obj.get("apiVersion")}/{obj.get("kind")}, but the path is for '
            f"{kind.api_version}/{kind.kind}"
        )
    given = metadata.get("name") if isinstance(metadata, dict) else None
    if name is not None and given != name:
        raise BadRequestError(f'the name in the body ({json.dumps(given)}) does not match the name in the path ("{name}")')


_INT64_MAX = 2**63 - 1


def whole_number(text: str) -> int | None:
    """``text`` as an int from 0 to int64's maximum (as Kubernetes and SQLite keep them), or None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:  # isdigit refuses a sign too
        return None
    value = int(text)
    return value if value <= _INT64_MAX else None


def int_param(request: Request, name: str) -> int | None:
    """A whole-number query parameter (absent or empty: None)."""
    text = request.query_params.get(name, "")
    if not text:
        return None
    value = whole_number(text)
    if value is None:
        raise BadRequestError(f"{name}: expected a whole number from 0 to {_INT64_MAX}, got {text!r}")
    return value


def precondition(options: dict[str, Any]) -> int | None:
    """The resourceVersion a delete is conditional on, from DeleteOptions."""
    preconditions = options.get("preconditions")
    if preconditions is None:
        return None
    if not isinstance(preconditions, dict):
        raise BadRequestError(f"preconditions: expected an object, got {json_type_phrase(preconditions)}")
    rv = preconditions.get("resourceVersion")
    if rv in (None, ""):
        return None
    value = whole_number(rv) if isinstance(rv, str) else None
    if value is None:
        raise BadRequestError(f"preconditions.resourceVersion: expected a resourceVersion such as \"42\", got {rv!r}")
    return value


def dry_run(request: Request) -> bool:
    return request.query_params.get("dryRun") == "All"


def filter_fields(items: list[Obj], field_selector: str | None) -> list[Obj]:
    """Field selectors on equality (``metadata.name=x,involvedObject.kind=Y``), as kubectl sends them."""
    if not field_selector:
        return items
    terms: list[tuple[list[str], str, bool]] = []
    for part in field_selector.split(","):
        part = part.strip()
        if not part:
            continue
        negate = "!=" in part
        key, _, value = part.partition("!=" if negate else "==" if "==" in part else "=")
        terms.append((key.strip().split("."), value.strip(), negate))

    def value_of(obj: Obj, path: list[str]) -> str:
        current: Any = obj
        for step in path:
            current = current.get(step) if isinstance(current, dict) else None
        return "" if current is None else str(current)

    return [obj for obj in items if all((value_of(obj, path) == value) != negate for path, value, negate in terms)]



def in_namespace(request: Request, obj: Obj) -> bool:
    namespace = request.path_params.get("namespace")
    return namespace is None or obj.get("metadata", {}).get("namespace", "") == namespace
