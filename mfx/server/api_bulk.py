"""Bulk apply: many objects in one request, validated together, stored in one transaction.

``POST /apis/mfx.musicfox.io/v1alpha1/apply`` with a ``v1 List`` of manifests, and the query
parameters of an apply: ``fieldManager`` (who applies; default ``mfx``; as for every write
that is not a server-side apply, no managedFields entry records it), ``dryRun=All``
(validate and admit, store nothing) and ``force=true`` (change objects a GitSource manages,
as ``mfx apply --force-conflicts``).

Each item is applied with the rules of ``mfx apply``'s per-object requests (``mfx.api.apply``:
kubectl's apply with the last-applied-configuration annotation, the rules GitOps uses too),
so a bulk apply and the same objects sent one request each end the same. Every item is
checked and admitted before anything is written; then all writes go to the store in one
transaction (``Store.write_all``): all are stored, or none is. The answer is a ``v1 List`` of
outcomes in input order (``created``, ``configured`` or ``unchanged``, with a ``warning``
when a GitSource-managed object was changed with force); a failure is one Status naming the
item (``items[i]``, kind and name), with the field paths of a 422 as ``items[i].<field>``.

``POST .../apply/stream`` takes the same items as a stream (``application/x-ndjson``: one
object per line, sent chunked as the client reads its files): each item is checked and
admitted as its line arrives, so the daemon's work overlaps the client's, and nothing is
written before the whole body has arrived and every item was admitted. A client that
disconnects before the end of its body has applied nothing. Items are numbered as in a List
(``items[i]``, blank lines not counted); the answer is the same.

A server without these paths answers 404 for the List (it reads ``apply`` as an unknown
resource) and 405 for the stream (an object of it, which takes no POST), which tells a client
to fall back to one request per object, or from the stream to the List.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mfx.api.apply import apply_patch, comparable, desired_state, field_changes, merged_for_apply
from mfx.api.json_values import json_type_phrase
from mfx.api.kinds import EVENT, GROUP, VERSION, KindInfo, kind_for
from mfx.api.objects import GITSOURCE_OWNER_LABEL, Obj
from mfx.api.yaml_loader import load_body
from mfx.collector import collection_paused
from mfx.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    FieldError,
    MfxError,
    NotFoundError,
    ValidationError,
)
from mfx.server.admission import Admission
from mfx.server.api_patch import merge_patch
from mfx.server.api_request import SERVER_OWNED_METADATA
from mfx.server.api_responses import error_response, json_response
from mfx.server.api_retry import PATCH_ATTEMPTS
from mfx.server.bodies import body_object, read_bytes, read_lines
from mfx.store.base import BatchAction, BatchWrite, Store

BULK_APPLY_PATH = f"/apis/{GROUP}/{VERSION}/apply"
BULK_APPLY_STREAM_PATH = f"{BULK_APPLY_PATH}/stream"
DEFAULT_MANAGER = "mfx"


@dataclass(frozen=True)
class BulkOptions:
    manager: str
    dry_run: bool
    force: bool


@dataclass
class Planned:
    """One item's outcome, and the write that gets it there (None: nothing to write)."""

    index: int
    kind: KindInfo
    name: str
    outcome: str  # created, configured or unchanged
    write: BatchWrite | None
    live: Obj | None
    warning: str = ""


@dataclass
class _Plan:
    items: list[Planned] = field(default_factory=list)
    problems: list[FieldError] = field(default_factory=list)


def bulk_apply_routes(store: Store, admission: Admission) -> list[Route]:
    bulk = BulkApply(store, admission)
    return [Route(BULK_APPLY_PATH, bulk.handle, methods=["POST"]),
            Route(BULK_APPLY_STREAM_PATH, bulk.handle_stream, methods=["POST"])]


def _options(request: Request) -> BulkOptions:
    params = request.query_params
    dry = params.getlist("dryRun")
    if any(value != "All" for value in dry):
        raise BadRequestError('dryRun: the only supported value is "All"')
    return BulkOptions(manager=params.get("fieldManager") or DEFAULT_MANAGER, dry_run=bool(dry),
                       force=params.get("force") in ("true", "1"))


def _items(body: dict[str, Any]) -> list[Any]:
    if body.get("kind") != "List" or body.get("apiVersion") != "v1":
        raise BadRequestError(f'the body must be a v1 List of objects, not {body.get("apiVersion")}/{body.get("kind")}')
    items = body.get("items")
    if not isinstance(items, list):
        raise BadRequestError(f"items: expected a list of objects, got {json_type_phrase(items)}")
    return items


def _key(item: Any) -> tuple[str, str] | None:
    metadata = item.get("metadata") if isinstance(item, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind = item.get("kind") if isinstance(item, dict) else None
    return (kind, name) if isinstance(kind, str) and isinstance(name, str) else None


def _where(index: int, item: Any) -> str:
    metadata = item.get("metadata") if isinstance(item, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind = item.get("kind") if isinstance(item, dict) else None
    return f'items[{index}] ({kind} "{name}")' if kind and name else f"items[{index}]"


class BulkApply:
    def __init__(self, store: Store, admission: Admission) -> None:
        self.store = store
        self.admission = admission

    # Each handler pauses the collector around a function of its own: what that function held
    # (thousands of items, read, defaulted, planned) is freed as it returns, before collection
    # resumes. Resumed with them still alive, the first allocation after it set off a walk of
    # all of them, a tenth of an apply's time.

    async def handle(self, request: Request) -> Response:
        with collection_paused():  # thousands of items alive at once, none of them cyclic
            return await self._apply_list(request)

    async def handle_stream(self, request: Request) -> Response:
        with collection_paused():
            return await self._apply_stream(request)

    async def _apply_list(self, request: Request) -> Response:
        try:
            options = _options(request)
            data = await read_bytes(request)
            return await self._commit(None, lambda: _items(body_object(data, what="a v1 List")), options)
        except MfxError as error:
            return error_response(error)

    async def _apply_stream(self, request: Request) -> Response:
        try:
            options = _options(request)
            lines: list[bytes] = []
            planner = _Planner(self, options)
            pieces = read_lines(request)
            body = _items_of_lines(pieces, lines)
            try:
                async for items in body:
                    await planner.add(items)
            except MfxError:
                await body.aclose()
                await _drain(pieces)  # the rest as it comes, not read as items
                raise
            return await self._commit(planner.plan, lambda: _line_items(lines), options)
        except MfxError as error:
            return error_response(error)

    async def _commit(self, plan: _Plan | None, read_items: Callable[[], list[Any]],
                      options: BulkOptions) -> Response:
        # The writes are pinned to the objects they were computed from: a controller's status
        # write meanwhile is let through (``BatchWrite.base``), any other change refuses the
        # whole transaction, which is planned again.
        for attempt in range(1, PATCH_ATTEMPTS + 1):
            # A plan makes its items into the objects it writes, in place: each attempt plans
            # the items as the body has them, read again.
            if plan is None:
                plan = await self._plan(read_items(), options)
            if plan.problems:
                raise ValidationError(plan.problems)
            writes = [p.write for p in plan.items if p.write is not None]
            if options.dry_run or not writes:
                return self._answer(plan.items, None)
            try:
                stored = await self.store.write_all(writes)
            except (ConflictError, AlreadyExistsError, NotFoundError):
                if attempt == PATCH_ATTEMPTS:
                    raise
                plan = None
                continue
            return self._answer(plan.items, stored)
        raise AssertionError("unreachable")

    async def _plan(self, items: list[Any], options: BulkOptions) -> _Plan:
        planner = _Planner(self, options)
        await planner.add(items)
        return planner.plan

    def _plan_one(self, index: int, item: Any, options: BulkOptions, stored: dict[tuple[str, str], Obj],
                  pending: dict[tuple[str, str], Obj]) -> Planned:
        if not isinstance(item, dict):
            raise BadRequestError(f"expected an object, got {json_type_phrase(item)}")
        kind = kind_for(str(item.get("apiVersion")), str(item.get("kind")))
        if kind is EVENT:
            raise BadRequestError("Events are recorded, not applied")
        metadata = item.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str) or not name:
            raise ValidationError([FieldError(path="metadata.name", message="required: a non-empty string")])
        if isinstance(metadata, dict) and not isinstance(metadata.get("annotations") or {}, dict):
            self.admission.admit(item)  # refused, naming the field as it was sent (apply reads it as a map)
        desired = desired_state(item, owned=True)  # the plan's own item (read for this attempt)
        key = (kind.kind, name)
        live = pending.get(key) or stored.get(key)
        if live is None:
            for server_owned in SERVER_OWNED_METADATA:
                desired["metadata"].pop(server_owned, None)
            # ``desired`` is this plan's own copy, of an item the body's reading held to the
            # rules of stored JSON values: admitted as it is.
            admitted = self.admission.admit_owned(desired, values_checked=True)
            pending[key] = admitted
            return Planned(index, kind, name, "created", BatchWrite(BatchAction.CREATE, admitted), None)
        merged = merged_for_apply(live, desired)
        if comparable(merged, annotation=False) == comparable(live, annotation=False):
            # Only the record of the applied file would change: write nothing (as mfx apply).
            return Planned(index, kind, name, "unchanged", None, live)
        defaulted = self.admission.schemas.apply_defaults(merged)
        warning = _gitsource_warning(kind, name, live, defaulted, options.force)
        patch = apply_patch(live, defaulted)
        if not patch:
            return Planned(index, kind, name, "unchanged", None, live)
        updated = merge_patch(live, patch)
        updated.pop("status", None)
        admitted = self.admission.admit(updated)
        pinned = key not in pending
        if pinned:  # to what was read; a later item of the batch follows it
            admitted["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        else:
            admitted["metadata"].pop("resourceVersion", None)
        pending[key] = admitted
        outcome = "configured" if comparable(admitted) != comparable(live) else "unchanged"
        # A controller's status write meanwhile leaves this write right: the store lets it through.
        write = BatchWrite(BatchAction.UPDATE, admitted, live if pinned else None)
        return Planned(index, kind, name, outcome, write, live, warning)

    def _answer(self, planned: list[Planned], stored: list[Obj] | None) -> Response:
        results = iter(stored or ())
        items: list[dict[str, Any]] = []
        for p in planned:
            outcome = p.outcome
            resource_version = None
            if p.write is not None and stored is not None:
                obj = next(results)
                resource_version = obj["metadata"].get("resourceVersion")
                if p.live is not None and outcome == "configured" and comparable(obj) == comparable(p.live):
                    outcome = "unchanged"
            entry: dict[str, Any] = {"apiVersion": p.kind.api_version, "kind": p.kind.kind,
                                     "metadata": {"name": p.name}, "outcome": outcome}
            if resource_version is not None:
                entry["metadata"]["resourceVersion"] = resource_version
            if p.warning:
                entry["warning"] = p.warning
            items.append(entry)
        return json_response({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items})


class _Planner:
    """A plan built as its items come: all at once for a List, piece by piece for a stream."""

    def __init__(self, bulk: BulkApply, options: BulkOptions) -> None:
        self.bulk = bulk
        self.options = options
        self.plan = _Plan()
        self.count = 0
        # What this request has planned so far per object: a later item naming the same object
        # applies onto it, as it would after the earlier one's own request.
        self.pending: dict[tuple[str, str], Obj] = {}

    async def add(self, items: list[Any]) -> None:
        stored = await self.bulk.store.get_many([key for key in map(_key, items) if key is not None])
        for item in items:
            index = self.count
            self.count += 1
            if isinstance(item, _LineProblem):
                item.report(index, self.plan)
                continue
            try:
                planned = self.bulk._plan_one(index, item, self.options, stored, self.pending)
            except ValidationError as error:
                self.plan.problems.extend(_item_problems(index, error))
                continue
            except MfxError as error:
                raise error.reworded(f"{_where(index, item)}: {error.message}") from error
            self.plan.items.append(planned)


def _item_problems(index: int, error: ValidationError) -> list[FieldError]:
    return [FieldError(path=f"items[{index}].{e.path}" if e.path else f"items[{index}]", message=e.message)
            for e in error.errors]


@dataclass
class _LineProblem:
    """A line of a stream that holds no JSON value an object may be made of."""

    error: MfxError

    def report(self, index: int, plan: _Plan) -> None:
        if isinstance(self.error, ValidationError):
            plan.problems.extend(_item_problems(index, self.error))
            return
        raise self.error.reworded(f"items[{index}]: {self.error.message}")


async def _drain(body: AsyncIterator[list[bytes]]) -> None:
    """Read what is left of a refused stream: its client sends the whole body before it reads
    the answer (and an answer cut short by the connection's close would not reach it)."""
    try:
        async for _ in body:
            pass
    except MfxError:
        pass  # over the limit too: the first refusal is the one answered


def _line_item(line: bytes) -> Any:
    try:
        return load_body(line)
    except MfxError as error:
        return _LineProblem(error)


def _line_items(lines: list[bytes]) -> list[Any]:
    return [_line_item(line) for line in lines]


async def _items_of_lines(pieces: AsyncIterator[list[bytes]], kept: list[bytes]) -> AsyncGenerator[list[Any], None]:
    """The items of each piece of a stream's lines (blank lines skipped); ``kept`` gets the
    lines, for a plan made again."""
    async for lines in pieces:
        lines = [line for line in lines if line.strip()]
        kept.extend(lines)
        yield _line_items(lines)


def _gitsource_warning(kind: KindInfo, name: str, live: Obj, defaulted: Obj, force: bool) -> str:
    """An object a GitSource manages is changed only with force (its desired state is in git)."""
    owner = (live.get("metadata", {}).get("labels") or {}).get(GITSOURCE_OWNER_LABEL)
    changes = field_changes(live, defaulted) if owner else []
    if not changes:
        return ""
    text = f'{kind.plural} "{name}" is managed by gitsource/{owner}; {"; ".join(changes)}'
    if not force:
        raise ConflictError(f"{text}; change it in git, or use --force-conflicts to override "
                            "(the next sync will revert it)")
    return f"{text}; applied with --force-conflicts: the next sync will revert it"
