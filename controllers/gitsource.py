"""The GitSource controller: keep the manifests of a directory of a git repository applied.

Every ``interval`` (and at once when ``mfx reconcile gitsource/NAME`` sets the
``reconcile.mfx.musicfox.io/requestedAt`` annotation, or when the spec changes) a sync:

1. waits for the GitSources in ``dependsOn`` to be Ready at their latest revision
   (``DependencyNotReady``: a requeue, and a re-check as soon as a dependency changes);
2. fetches the ref into ``$MFX_HOME/git/<name>/`` and resolves it to a commit
   (git failures: ``Ready=False`` with git's message, retried with backoff);
3. reads and validates every manifest under ``path`` like ``mfx apply``: one invalid file and
   nothing of the revision is applied, the source stays on its last good revision;
4. applies each object with apply's merge semantics, labelled as owned by the source; an
   object that differs from the revision although the source applied this very version of
   it was changed by hand (or deleted): that is drift, reverted, with a ``Drift`` event;
5. with ``prune``, deletes what the previous inventory had and the revision no longer has,
   dependents before their dependencies.

Status: ``lastAppliedRevision``, ``lastAttemptedRevision``, ``inventory.entries``, the last
``HISTORY_LIMIT`` attempts in ``history`` (newest first), Ready/Reconciling/Stalled.
"""

from __future__ import annotations

import enum
import functools
import math
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from controllers.git_fetch import GitError
from controllers.gitsource_render import (
    DIGEST_ANNOTATION,
    DesiredCache,
    fetch_revision,
    repository,
)
from mfx.api.apply import comparable, field_changes, merged_for_apply
from mfx.api.json_copy import json_copy
from mfx.api.models import GitSourceSpec, parse_spec
from mfx.api.objects import (
    GITSOURCE_OWNER_LABEL,
    RECONCILE_HANDLED_FIELD,
    RECONCILE_REQUESTED_ANNOTATION,
    Obj,
    ObjectKey,
    generation,
    key_of,
    now_rfc3339,
)
from mfx.api.schema import Schemas, load_schemas
from mfx.backoff import exponential_delay
from mfx.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from mfx.store.base import BatchAction, BatchWrite, Store
from reconciler import (
    ConditionType,
    Context,
    DependencyCycleError,
    DependencyGraph,
    PermanentError,
    Reason,
    Registry,
    Result,
    TemporaryError,
    get_condition,
)
from reconciler.ratelimit import DEFAULT_BASE_DELAY

KIND = "GitSource"
HISTORY_LIMIT = 10
MAX_ERRORS_IN_MESSAGE = 5


class GitSourceReason(enum.StrEnum):
    SUCCEEDED = Reason.SUCCEEDED
    GIT_FAILED = "GitOperationFailed"
    VALIDATION_FAILED = "ValidationFailed"
    OWNERSHIP_CONFLICT = "OwnershipConflict"
    DEPENDENCY_NOT_READY = Reason.DEPENDENCY_NOT_READY
    DEPENDENCY_CYCLE = Reason.DEPENDENCY_CYCLE
    SUSPENDED = "Suspended"
    DRIFT = "Drift"
    APPLIED = "Applied"
    PRUNED = "Pruned"


@dataclass
class SyncReport:
    created: list[ObjectKey] = field(default_factory=list)
    configured: list[ObjectKey] = field(default_factory=list)
    pruned: list[ObjectKey] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{verb} {', '.join(_ref(k) for k in keys)}"
                 for verb, keys in (("created", self.created), ("configured", self.configured),
                                    ("pruned", self.pruned)) if keys]
        return "; ".join(parts)


def _ref(key: ObjectKey) -> str:
    return f"{key.kind.lower()}/{key.name}"


def cache_dir(home: Path, name: str) -> Path:
    return Path(home) / "git" / name


def register(on: Registry, env: Any) -> None:
    """Register the GitSource handlers. Uses ``env.home`` (git cache under ``home/git``) and,
    when present, ``env.schemas`` (else the CRDs are loaded at the first sync: a daemon
    starts its plugins without waiting for them to be parsed)."""
    home = Path(env.home)
    given: Schemas | None = getattr(env, "schemas", None)
    crds = functools.cache(load_schemas)

    dependents: dict[str, set[str]] = {}  # name -> GitSources whose dependsOn names it
    read = DesiredCache()

    @on.related(KIND)
    def _wake_dependents(obj: Obj) -> Iterable[ObjectKey]:
        return [ObjectKey(KIND, n) for n in sorted(dependents.get(obj["metadata"]["name"], ()))]

    @on.reconcile(KIND)
    async def reconcile_gitsource(obj: Obj, ctx: Context) -> Result | None:
        name = obj["metadata"]["name"]
        spec = parse_spec(obj)
        assert isinstance(spec, GitSourceSpec)
        for dep in spec.depends_on:
            dependents.setdefault(dep.name, set()).add(name)
        _note_reconcile_request(obj, ctx)
        if spec.suspend:
            _mark_suspended(obj, ctx)
            return None
        interval = spec.interval_seconds
        waiting = await _dependencies_not_ready(ctx.store, name, spec)
        if waiting:
            ctx.status.condition(ConditionType.READY, False, GitSourceReason.DEPENDENCY_NOT_READY, waiting)
            return Result(requeue_after=min(interval, 30.0))
        return await _sync(obj, spec, ctx, home, given or crds(), read)

    @on.delete(KIND)
    async def finalize_gitsource(obj: Obj, ctx: Context) -> None:
        name = obj["metadata"]["name"]
        spec = parse_spec(obj)
        assert isinstance(spec, GitSourceSpec)
        for names in dependents.values():
            names.discard(name)
        read.forget(name)
        if spec.prune:
            keys = [ObjectKey(e["kind"], e["name"]) for e in _inventory(obj)]
            pruned = await _prune(ctx.store, name, keys)
            if pruned:
                ctx.logger.info("deleted %d objects of the source: %s", len(pruned),
                                ", ".join(_ref(k) for k in pruned))
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(cache_dir(home, name), ignore_errors=True))


# --- one sync ------------------------------------------------------------------------------------------


async def _sync(obj: Obj, spec: GitSourceSpec, ctx: Context, home: Path, schemas: Schemas,
                read: DesiredCache) -> Result:
    name = obj["metadata"]["name"]
    status = obj.get("status") or {}
    interval = spec.interval_seconds
    repo = repository(cache_dir(home, name), spec)
    try:
        sha, revision = await fetch_revision(repo, spec)
        desired = await read.desired(repo, sha, spec, name, schemas)
    except GitError as error:
        message = str(error)
        ctx.status.condition(ConditionType.READY, False, GitSourceReason.GIT_FAILED, message)
        ctx.metrics.gitsource_sync_total.labels(name, "git_failed").inc()
        # What the engine's limiter would wait, uncapped: once that passes the interval,
        # retrying sooner than the interval no longer helps.
        backoff = exponential_delay(ctx.retries + 1, DEFAULT_BASE_DELAY, math.inf)
        raise TemporaryError(message, delay=interval if backoff > interval else None,
                             reason=GitSourceReason.GIT_FAILED) from None
    except ValidationError as error:
        return await _reject(obj, ctx, revision, GitSourceReason.VALIDATION_FAILED,
                             _errors_text(error), interval)
    previous = [ObjectKey(e["kind"], e["name"]) for e in _inventory(obj)]
    conflicts = await _ownership_conflicts(ctx.store, name, desired, set(previous))
    if conflicts:
        return await _reject(obj, ctx, revision, GitSourceReason.OWNERSHIP_CONFLICT, "; ".join(conflicts), interval)

    report = await _apply_all(ctx.store, desired, set(previous))
    keys = [key_of(o) for o in desired]
    if spec.prune:
        report.pruned = await _prune(ctx.store, name, [k for k in previous if k not in set(keys)])
    for text in report.drift:
        await ctx.events.warning(obj, GitSourceReason.DRIFT, text)
    if report.summary():
        await ctx.events.normal(obj, GitSourceReason.APPLIED, f"{revision}: {report.summary()}")
    ctx.status["inventory"] = {"entries": [{"kind": k.kind, "name": k.name} for k in sorted(set(keys))]}
    ctx.status["lastAppliedRevision"] = revision
    ctx.status["lastAttemptedRevision"] = revision
    ctx.status["history"] = _history(status, revision, "Succeeded", f"applied {len(desired)} objects")
    ctx.status.condition(ConditionType.READY, True, GitSourceReason.SUCCEEDED, f"Applied revision {revision}")
    ctx.metrics.gitsource_sync_total.labels(name, "success").inc()
    return Result(requeue_after=interval)


async def _reject(obj: Obj, ctx: Context, revision: str, reason: GitSourceReason, message: str,
                  interval: float) -> Result:
    """A revision that cannot be applied: keep the last good one, say why, wait for a new commit."""
    name = obj["metadata"]["name"]
    status = obj.get("status") or {}
    last_good = status.get("lastAppliedRevision")
    text = f"revision {revision} not applied: {message}"
    if last_good:
        text += f" (still at {last_good})"
    if status.get("lastAttemptedRevision") != revision or _ready_reason(obj) != reason:
        await ctx.events.warning(obj, reason, text)
    ctx.status["lastAttemptedRevision"] = revision
    ctx.status["history"] = _history(status, revision, "Failed", message)
    ctx.status.condition(ConditionType.READY, False, reason, text)
    ctx.metrics.gitsource_sync_total.labels(name, "invalid").inc()
    return Result(requeue_after=interval)


def _errors_text(error: ValidationError) -> str:
    items = [str(e) for e in error.errors]
    if len(items) > MAX_ERRORS_IN_MESSAGE:
        items = [*items[:MAX_ERRORS_IN_MESSAGE], f"and {len(items) - MAX_ERRORS_IN_MESSAGE} more errors"]
    return "; ".join(items)


def _history(status: dict[str, Any], revision: str, result: str, message: str) -> list[dict[str, str]]:
    history = list(status.get("history") or [])
    head = history[0] if history else {}
    if (head.get("revision"), head.get("result"), head.get("message")) == (revision, result, message):
        return history  # the same outcome again: no new entry, no status write
    entry = {"revision": revision, "time": now_rfc3339(), "result": result, "message": message}
    return [entry, *history][:HISTORY_LIMIT]


def _inventory(obj: Obj) -> list[dict[str, str]]:
    return list(((obj.get("status") or {}).get("inventory") or {}).get("entries") or [])


def _ready_reason(obj: Obj) -> str | None:
    ready = get_condition(obj, ConditionType.READY)
    return None if ready is None else str(ready.get("reason"))


def _owner(obj: Obj) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(GITSOURCE_OWNER_LABEL)


def _note_reconcile_request(obj: Obj, ctx: Context) -> None:
    """Record the ``requestedAt`` annotation handled, so ``mfx reconcile`` knows when its sync ran."""
    requested = ((obj.get("metadata") or {}).get("annotations") or {}).get(RECONCILE_REQUESTED_ANNOTATION)
    if requested and (obj.get("status") or {}).get(RECONCILE_HANDLED_FIELD) != requested:
        ctx.status[RECONCILE_HANDLED_FIELD] = requested


def _mark_suspended(obj: Obj, ctx: Context) -> None:
    ready = get_condition(obj, ConditionType.READY)
    last = (obj.get("status") or {}).get("lastAppliedRevision")
    message = f"syncing is suspended{f' at {last}' if last else ''}; resume with 'mfx resume gitsource/{key_of(obj).name}'"
    # Ready keeps its status (what was applied is still applied); the reason says why nothing moves.
    ctx.status.condition(ConditionType.READY, ready.get("status", "Unknown") if ready else "Unknown",
                         GitSourceReason.SUSPENDED, message)


# --- dependencies ------------------------------------------------------------------------------------


async def _dependencies_not_ready(store: Store, name: str, spec: GitSourceSpec) -> str:
    """Why the source must wait for its dependencies ("" when it need not)."""
    if not spec.depends_on:
        return ""
    await _check_cycle(store, name)
    waiting: list[str] = []
    for dep in spec.depends_on:
        try:
            other = await store.get(KIND, dep.name)
        except NotFoundError:
            waiting.append(f"gitsource/{dep.name} not found")
            continue
        ready = get_condition(other, ConditionType.READY)
        ostatus = other.get("status") or {}
        if ready is None or ready.get("status") != "True" or int(ostatus.get("observedGeneration", -1)) < generation(other):
            waiting.append(f"gitsource/{dep.name} is not Ready"
                           + (f" ({ready.get('reason')}: {ready.get('message')})" if ready else ""))
        elif ostatus.get("lastAppliedRevision") != ostatus.get("lastAttemptedRevision"):
            waiting.append(f"gitsource/{dep.name} is not at its latest revision "
                           f"({ostatus.get('lastAttemptedRevision')} failed)")
    return ("dependencies not ready: " + "; ".join(waiting)) if waiting else ""


async def _check_cycle(store: Store, name: str) -> None:
    graph = DependencyGraph()
    for other in (await store.list(KIND)).items:
        deps = [d.get("name") for d in (other.get("spec") or {}).get("dependsOn") or [] if isinstance(d, dict)]
        graph.set_node(other["metadata"]["name"], [d for d in deps if d])
    cycle = graph.cycle_through(name)
    if cycle:
        raise PermanentError(GitSourceReason.DEPENDENCY_CYCLE, str(DependencyCycleError(cycle)))


# --- applying ----------------------------------------------------------------------------------------


async def _ownership_conflicts(store: Store, name: str, desired: list[Obj], previous: set[ObjectKey]) -> list[str]:
    new_keys = [key for key in map(key_of, desired) if key not in previous]
    live_by_key = await store.get_many([(key.kind, key.name) for key in new_keys])
    conflicts = []
    for key in new_keys:
        live = live_by_key.get((key.kind, key.name))
        owner = _owner(live) if live is not None else None
        if owner and owner != name:
            conflicts.append(f"{_ref(key)} is managed by gitsource/{owner}")
    return conflicts


async def _apply_all(store: Store, desired: list[Obj], previous: set[ObjectKey]) -> SyncReport:
    """Apply every desired object in one store transaction: a sync lands whole or not at all.

    The plan is made from one read of the live objects. A controller's status write meanwhile
    leaves the plan right (each update names the object it was computed from:
    ``BatchWrite.base``); a write that lost a race with another writer (any other change, an
    object created or deleted meanwhile) fails the whole transaction, and the plan is made
    again from fresh reads."""
    keys = [key_of(obj) for obj in desired]
    for _ in range(5):
        live_by_key = await store.get_many([(key.kind, key.name) for key in keys])
        report = SyncReport()
        writes = [write for obj, key in zip(desired, keys, strict=True)
                  if (write := _plan_one(obj, key, live_by_key.get((key.kind, key.name)),
                                         key in previous, report)) is not None]
        if not writes:
            return report
        try:
            await store.write_all(writes)
        except (ConflictError, AlreadyExistsError, NotFoundError):
            continue
        return report
    raise TemporaryError("the source's objects keep changing while they are applied; retrying")


def _plan_one(obj: Obj, key: ObjectKey, live: Obj | None, in_inventory: bool,
              report: SyncReport) -> BatchWrite | None:
    """The write that brings ``key`` to ``obj`` (None: nothing to do), noted in ``report``."""
    if live is None:
        report.created.append(key)
        if in_inventory:
            report.drift.append(f"{_ref(key)} was deleted; recreated")
        return BatchWrite(BatchAction.CREATE, json_copy(obj))
    if live["metadata"].get("deletionTimestamp"):
        return None  # being deleted (pruned, or by hand): created again by a later sync
    merged = merged_for_apply(live, obj)
    if comparable(merged, annotation=False) == comparable(live, annotation=False):
        return None
    applied = ((live["metadata"].get("annotations") or {}).get(DIGEST_ANNOTATION)
               == obj["metadata"]["annotations"][DIGEST_ANNOTATION])
    report.configured.append(key)
    if in_inventory and applied:
        changes = field_changes(merged, live)
        if changes:
            report.drift.append(f"{_ref(key)} {', '.join(changes)}; reverted")
    return BatchWrite(BatchAction.UPDATE, merged, live)


async def _prune(store: Store, name: str, keys: list[ObjectKey]) -> list[ObjectKey]:
    """Delete the objects the source owns among ``keys``: dependents before their dependencies."""
    live: dict[ObjectKey, Obj] = {}
    for key in keys:
        try:
            obj = await store.get(key.kind, key.name)
        except NotFoundError:
            continue
        if _owner(obj) == name:  # never delete what someone else has taken over
            live[key] = obj
    pruned: list[ObjectKey] = []
    for key in _deletion_order(live):
        try:
            await store.delete(key.kind, key.name)
        except NotFoundError:
            continue
        pruned.append(key)
    return pruned


def _deletion_order(objects: dict[ObjectKey, Obj]) -> list[ObjectKey]:
    """PluginManifests in stop order (dependents first), then the other kinds by name."""
    plugins = {k.name: o for k, o in objects.items() if k.kind == "PluginManifest"}
    graph = DependencyGraph()
    for plugin_name, obj in plugins.items():
        deps = [d.get("name") for d in (obj.get("spec") or {}).get("dependencies") or [] if isinstance(d, dict)]
        graph.set_node(plugin_name, [d for d in deps if d in plugins])
    try:
        order = graph.stop_order()
    except DependencyCycleError:
        order = sorted(plugins)
    others = sorted(k for k in objects if k.kind != "PluginManifest")
    return [ObjectKey("PluginManifest", n) for n in order] + others

