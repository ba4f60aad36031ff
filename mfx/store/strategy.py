"""Object lifecycle rules, the same for every backend (Kubernetes calls this the registry strategy).

Each write is decided here from the object sent and the object stored, with no I/O: a backend
reads the stored object inside its own transaction, asks the matching function what to write
(a ``Write``), and carries that out, stamping the resourceVersion it allocates with
``stamp_resource_version``. The rules (see ``mfx.store.base`` for the contract):

- create sets ``uid``, ``creationTimestamp`` and ``generation`` 1, and drops a client's
  ``resourceVersion`` and ``deletionTimestamp``;
- update keeps the server-owned metadata, ``kind``, ``apiVersion`` and ``status`` as stored,
  bumps ``generation`` only when ``spec`` changes, and refuses new finalizers on an object
  being deleted; removing the last finalizer of such an object removes it;
- a status update changes only ``status``; an update with status changes metadata (never
  ``generation``: ``spec`` is the stored one) and ``status`` together;
- delete of an object with finalizers sets ``deletionTimestamp`` (and bumps ``generation``)
  once; without finalizers it removes the object;
- a write carrying ``metadata.resourceVersion`` must carry the stored one;
- a write that changes nothing is answered with the stored object and writes nothing.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Any

from mfx.api.kinds import ALL_KINDS
from mfx.api.objects import Obj, now_rfc3339
from mfx.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ErrorList,
    NotFoundError,
)
from mfx.store.codec import deep_copy

# Metadata only the server writes, in the order an update restores it.
SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "deletionTimestamp",
)


class WriteAction(enum.Enum):
    NOTHING = "nothing"  # answer with the stored object; no resourceVersion, no watch event
    ADD = "add"
    MODIFY = "modify"
    REMOVE = "remove"  # ``obj`` is the object's last state, for the DELETED event


@dataclass(frozen=True)
class Write:
    """What a backend must do for one request, and the object it answers with."""

    action: WriteAction
    obj: Obj


# --- errors, worded as the API server words them -------------------------------------------


def plural(kind: str) -> str:
    for info in ALL_KINDS:
        if info.kind == kind:
            return info.plural
    return kind.lower() + "s"


def not_found(kind: str, name: str) -> NotFoundError:
    return NotFoundError(f'{plural(kind)} "{name}" not found')


def conflict(kind: str, name: str) -> ConflictError:
    return ConflictError(
        f'Operation cannot be fulfilled on {plural(kind)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def precondition_failed(kind: str, name: str, wanted: int, current: int) -> ConflictError:
    return ConflictError(
        f'Operation cannot be fulfilled on {plural(kind)} "{name}": the ResourceVersion in the '
        f"precondition ({wanted}) does not match the ResourceVersion in record ({current}). "
        "The object might have been modified; get it again and retry"
    )


# --- reading a request ----------------------------------------------------------------------


def identity(obj: Any) -> tuple[str, str]:
    """``(kind, name)`` of an object a client sent, which must be a JSON object naming both."""
    if not isinstance(obj, dict):
        raise BadRequestError(f"an object must be a JSON object, not {type(obj).__name__}")
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(kind, str) or not kind:
        raise BadRequestError("kind: required, a non-empty string such as PluginManifest")
    if not isinstance(name, str) or not name:
        raise BadRequestError(f"metadata.name: required, a non-empty string (kind {kind})")
    return kind, name


def requested_version(value: Any, field_path: str) -> int | None:
    """The resourceVersion a write is conditional on; None for an unconditional write."""
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequestError(
            f'{field_path}: invalid value "{value}", expected the integer string the store returned'
        ) from None


def _stored_for_write(kind: str, name: str, obj: Obj, stored: Obj | None, base: Obj | None = None) -> Obj:
    """The stored object a conditional or unconditional write of ``obj`` applies to; ``base``:
    as for ``update`` (``obj`` is then rebased onto ``stored``, in place)."""
    wanted = requested_version(obj["metadata"].get("resourceVersion"), "metadata.resourceVersion")
    if stored is None:
        raise not_found(kind, name)
    if wanted is not None and wanted != int(stored["metadata"]["resourceVersion"]):
        # (Not ``wanted`` against the base's: a retried write carries the version it last met.)
        if base is None or not _rebased(obj, base, stored):
            raise conflict(kind, name)
    return stored


# What a controller writes besides spec and labels: a write computed before such a change is
# still right once it carries the new finalizers.
_CONTROLLER_METADATA = frozenset({"resourceVersion", "finalizers"})


def _rebased(obj: Obj, base: Obj, stored: Obj) -> bool:
    """Whether ``obj``, computed from ``base``, may be written onto ``stored``: the object changed
    since only as a controller changes it. Then ``obj`` takes the stored finalizers, unless it
    changes them itself (then it may not be rebased)."""
    if not _changed_only_by_controllers(base, stored):
        return False
    # (An ``obj`` with the stored finalizers already was rebased by an earlier try of this write.)
    finalizers, stored_finalizers = obj["metadata"].get("finalizers"), stored["metadata"].get("finalizers")
    if finalizers != stored_finalizers:
        if finalizers != base["metadata"].get("finalizers"):
            return False
        obj["metadata"]["finalizers"] = stored_finalizers
    return True


def _changed_only_by_controllers(base: Obj, stored: Obj) -> bool:
    """Whether ``stored`` differs from ``base`` in nothing but its status and the metadata a
    controller writes (compared field by field: no copy of either)."""
    if base.keys() - {"status"} != stored.keys() - {"status"}:
        return False
    if any(base[key] != stored[key] for key in base.keys() - {"status", "metadata"}):
        return False
    base_meta, stored_meta = base["metadata"], stored["metadata"]
    kept = base_meta.keys() - _CONTROLLER_METADATA
    return kept == stored_meta.keys() - _CONTROLLER_METADATA and all(base_meta[k] == stored_meta[k] for k in kept)


# --- the rules --------------------------------------------------------------------------------


def new_uid() -> str:
    """A random (version 4) UUID as text, the same as ``str(uuid.uuid4())``: formatted from the
    random bytes directly, at half the cost of making a ``UUID`` first (one per created object)."""
    digits = os.urandom(16).hex()
    variant = _VARIANTS[int(digits[16], 16) & 3]  # the RFC 4122 variant: 10xx in the top bits
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


_VARIANTS = "89ab"


def stamp_new(obj: Obj, now: str | None = None) -> None:
    """Server-owned metadata of an object about to be created (in place); ``now``: the
    creation time, when the caller has it already (one per transaction)."""
    metadata = obj["metadata"]
    metadata["uid"] = new_uid()
    metadata["creationTimestamp"] = now or now_rfc3339()
    metadata["generation"] = 1
    metadata.pop("deletionTimestamp", None)
    metadata.pop("resourceVersion", None)
    if not metadata.get("finalizers"):
        metadata.pop("finalizers", None)


def stamp_resource_version(obj: Obj, resource_version: int) -> None:
    """The resourceVersion the backend allocated for this write (a string on the wire)."""
    obj["metadata"]["resourceVersion"] = str(resource_version)


def next_generation(metadata: dict[str, Any]) -> int:
    return int(metadata.get("generation", 1)) + 1


def create(kind: str, name: str, obj: Obj, stored: Obj | None, *, owned: bool = False,
           now: str | None = None) -> Write:
    """``owned``: ``obj`` is the store's to keep and stamp (else it works on a copy); ``now``:
    as for ``stamp_new``."""
    if stored is not None:
        raise AlreadyExistsError(f'{plural(kind)} "{name}" already exists')
    new = obj if owned else deep_copy(obj)
    stamp_new(new, now)
    return Write(WriteAction.ADD, new)


def update(kind: str, name: str, obj: Obj, stored: Obj | None, *, owned: bool = False,
           base: Obj | None = None) -> Write:
    """``owned``: as for ``create``; ``base``: the stored object ``obj`` was computed from, as
    ``BatchWrite.base`` (a stale resourceVersion is then no conflict if only a controller's
    status or finalizers moved; an ``obj`` not ``owned`` is copied before it is rebased)."""
    new = obj if owned else deep_copy(obj)
    stored = _stored_for_write(kind, name, new, stored, base)
    metadata = new["metadata"]
    old_metadata = stored["metadata"]
    for key in SERVER_METADATA:
        if key in old_metadata:
            metadata[key] = old_metadata[key]
        else:
            metadata.pop(key, None)
    if not metadata.get("finalizers"):
        metadata.pop("finalizers", None)
    new["kind"] = stored["kind"]
    if "apiVersion" in stored:
        new["apiVersion"] = stored["apiVersion"]
    if "status" in stored:
        new["status"] = stored["status"]
    else:
        new.pop("status", None)
    deleting = bool(old_metadata.get("deletionTimestamp"))
    if deleting:
        added = set(metadata.get("finalizers") or ()) - set(old_metadata.get("finalizers") or ())
        if added:
            errors = ErrorList()
            errors.add(
                "metadata.finalizers",
                f"no new finalizers can be added while the object is being deleted (added {sorted(added)})",
            )
            errors.raise_if_any(kind=kind, name=name)
    if new.get("spec") != stored.get("spec"):
        metadata["generation"] = next_generation(old_metadata)
    if new == stored:
        return Write(WriteAction.NOTHING, stored)
    if deleting and not metadata.get("finalizers"):
        return Write(WriteAction.REMOVE, new)
    return Write(WriteAction.MODIFY, new)


def update_status(kind: str, name: str, obj: Obj, stored: Obj | None) -> Write:
    stored = _stored_for_write(kind, name, obj, stored)
    if obj.get("status") == stored.get("status"):
        return Write(WriteAction.NOTHING, stored)
    new = dict(stored)  # only the status is replaced: the rest is shared with ``stored``
    if "status" in obj:
        new["status"] = deep_copy(obj["status"])
    else:
        new.pop("status", None)
    new["metadata"] = dict(stored["metadata"])  # its own, for the resourceVersion stamp
    return Write(WriteAction.MODIFY, new)


def update_with_status(kind: str, name: str, obj: Obj, stored: Obj | None) -> Write:
    """An update of the metadata (say, a finalizer added) with the status in the same write;
    ``spec`` stays as stored, so ``generation`` does not move."""
    stored = _stored_for_write(kind, name, obj, stored)
    sent = dict(obj)
    if "spec" in stored:
        sent["spec"] = stored["spec"]
    else:
        sent.pop("spec", None)
    write = update(kind, name, sent, stored)
    if write.action is WriteAction.REMOVE:
        return write
    new = dict(write.obj) if write.action is WriteAction.MODIFY else dict(stored)
    if "status" in obj:
        new["status"] = deep_copy(obj["status"])
    else:
        new.pop("status", None)
    if new == stored:
        return Write(WriteAction.NOTHING, stored)
    new["metadata"] = dict(new["metadata"])
    return Write(WriteAction.MODIFY, new)


def delete(kind: str, name: str, wanted: int | None, stored: Obj | None) -> Write:
    """``stored`` is changed in place when the delete only marks it (the backend's own copy)."""
    if stored is None:
        raise not_found(kind, name)
    current = int(stored["metadata"]["resourceVersion"])
    if wanted is not None and wanted != current:
        raise precondition_failed(kind, name, wanted, current)
    metadata = stored["metadata"]
    if metadata.get("finalizers"):
        if metadata.get("deletionTimestamp"):
            return Write(WriteAction.NOTHING, stored)  # the finalizers' owners are at work
        metadata["deletionTimestamp"] = now_rfc3339()
        metadata["generation"] = next_generation(metadata)
        return Write(WriteAction.MODIFY, stored)
    return Write(WriteAction.REMOVE, stored)
