"""Unified diffs of objects as ``mfx diff`` prints them: spec and metadata, without server-set fields."""

from __future__ import annotations

import copy
import difflib
import sys

from mfx.api.kinds import KindInfo
from mfx.api.objects import LAST_APPLIED_ANNOTATION, Obj
from mfx.cli import output


def diff_view(obj: Obj | None) -> list[str]:
    """The YAML lines of ``obj`` that a change can differ in (none for an object that is not there)."""
    if obj is None:
        return []
    data = copy.deepcopy(obj)
    data.pop("status", None)
    meta = data.get("metadata", {})
    for key in ("resourceVersion", "managedFields", "uid", "creationTimestamp"):
        meta.pop(key, None)
    (meta.get("annotations") or {}).pop(LAST_APPLIED_ANNOTATION, None)
    if meta.get("annotations") == {}:
        meta.pop("annotations")
    return output.dump_yaml(data).splitlines(keepends=True)


def print_diff(kind: KindInfo, name: str, before: list[str], after: list[str], *, source: str) -> bool:
    """Print the change from the live object to what ``source`` wants; False when there is none."""
    if before == after:
        return False
    label = f"{kind.api_version}.{kind.kind}.{name}"
    sys.stdout.writelines(difflib.unified_diff(before, after, f"live/{label}", f"{source}/{label}"))
    return True
