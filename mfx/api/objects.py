"""Objects as the API carries them: plain JSON-compatible dicts in Kubernetes shape.

The store, the server and the CLI pass objects as ``Obj`` (``apiVersion``, ``kind``,
``metadata``, ``spec``, ``status``); controllers parse ``spec`` into the typed models of
``mfx.api.models``. These helpers keep the dict handling in one place.
"""

from __future__ import annotations

import time
from collections import namedtuple

# Neither typing nor datetime nor copy at import: ``mfx apply`` loads this module at every
# start, and each would cost it milliseconds (see mfx.errors); the functions that need
# datetime or copy import it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any, NamedTuple

    Obj = dict[str, Any]
else:
    Obj = dict  # the alias at run time; annotations are not evaluated

# Labels and annotations mfx itself sets.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
GITSOURCE_OWNER_LABEL = "mfx.musicfox.io/gitsource"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
RECONCILE_REQUESTED_ANNOTATION = "reconcile.mfx.musicfox.io/requestedAt"
# The status field where a controller records the last requestedAt it acted on.
RECONCILE_HANDLED_FIELD = "lastHandledReconcileAt"
# mfx rollout restart (and every UI) merge-patches it to the time now (RFC 3339, UTC); the
# PluginManifest controller restarts a running plugin once per new value and records the value
# it acted on in this status field.
RESTARTED_AT_ANNOTATION = "mfx.musicfox.io/restartedAt"
RESTARTED_AT_FIELD = "restartedAt"
FINALIZER = "mfx.musicfox.io/finalizer"
# Shared by several nodes, a placed object carries one finalizer per node that placed it, this
# prefix and the node's name, so a delete waits until every node has stopped its copy.
NODE_FINALIZER_PREFIX = "node.mfx.musicfox.io/"


def node_finalizer(node_name: str) -> str:
    """The finalizer ``node_name`` holds on the shared objects it placed."""
    return NODE_FINALIZER_PREFIX + node_name


def finalizer_node(finalizer: str) -> str | None:
    """The node whose finalizer this is (None: not a node's)."""
    return finalizer[len(NODE_FINALIZER_PREFIX):] if finalizer.startswith(NODE_FINALIZER_PREFIX) else None


if TYPE_CHECKING:
    class _ObjectKeyFields(NamedTuple):
        kind: str
        name: str
else:  # the same record, without importing typing
    _ObjectKeyFields = namedtuple("ObjectKey", "kind name")


class ObjectKey(_ObjectKeyFields):  # a record every CLI command loads: see mfx.errors.FieldError
    """Identifies one object: kinds are cluster-scoped, so kind + name is enough."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def key_of(obj: Obj) -> ObjectKey:
    return ObjectKey(obj["kind"], obj["metadata"]["name"])


def meta(obj: Obj) -> dict[str, Any]:
    return obj.setdefault("metadata", {})  # type: ignore[no-any-return]


def _section(obj: Obj, name: str) -> dict[str, Any]:
    """``metadata`` or ``status`` for reading; {} when absent or not an object.

    These readers also see objects before validation (a request body whose "metadata" is a
    string), which validation then reports; reading them must not fail first.
    """
    section = obj.get(name) if isinstance(obj, dict) else None
    return section if isinstance(section, dict) else {}


def name_of(obj: Obj) -> str:
    name = _section(obj, "metadata").get("name", "")
    return name if isinstance(name, str) else ""


def resource_version(obj: Obj) -> int:
    rv = _section(obj, "metadata").get("resourceVersion")
    return int(rv) if rv not in (None, "") else 0


def generation(obj: Obj) -> int:
    return int(_section(obj, "metadata").get("generation", 0))


def labels_of(obj: Obj) -> dict[str, str]:
    labels = _section(obj, "metadata").get("labels")
    return labels if isinstance(labels, dict) else {}


def annotations_of(obj: Obj) -> dict[str, str]:
    annotations = _section(obj, "metadata").get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def is_deleting(obj: Obj) -> bool:
    return bool(_section(obj, "metadata").get("deletionTimestamp"))


def conditions(obj: Obj) -> list[dict[str, Any]]:
    found = _section(obj, "status").get("conditions")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def condition(obj: Obj, type_: str) -> dict[str, Any] | None:
    for cond in conditions(obj):
        if cond.get("type") == type_:
            return cond
    return None


def is_condition_true(obj: Obj, type_: str) -> bool:
    cond = condition(obj, type_)
    return cond is not None and cond.get("status") == "True"


def is_ready(obj: Obj) -> bool:
    """Ready=True for the current generation (a stale Ready does not count)."""
    cond = condition(obj, "Ready")
    if cond is None or cond.get("status") != "True":
        return False
    observed = _section(obj, "status").get("observedGeneration")
    return observed is None or int(observed) >= generation(obj)


def deep_copy(obj: Obj) -> Obj:
    import copy

    return copy.deepcopy(obj)


def now() -> datetime:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def format_time(when: datetime) -> str:
    """RFC 3339 with a Z suffix and second precision, like Kubernetes timestamps."""
    from datetime import UTC

    return when.astimezone(UTC).strftime(_RFC3339)


def parse_time(text: str) -> datetime:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now_rfc3339() -> str:
    """``format_time(now())``, from the clock directly: the store stamps every write with it."""
    return time.strftime(_RFC3339, time.gmtime())


_RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def human_age(created: str | None, *, at: datetime | None = None) -> str:
    """kubectl's short age format: 45s, 5m12s, 3h, 2d4h, 400d."""
    if not created:
        return "<unknown>"
    seconds = int(((at or now()) - parse_time(created)).total_seconds())
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return _units(minutes, "m", seconds % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return _units(days, "d", hours % 24, "h")
    return f"{days}d"


def _units(whole: int, unit: str, rest: int, rest_unit: str) -> str:
    """``5m12s``; the smaller unit is left out when it is zero (``5m``)."""
    return f"{whole}{unit}{rest}{rest_unit}" if rest else f"{whole}{unit}"
