"""How ``mfx apply`` sends validated manifests to the daemon, outcomes in input order.

The bulk path first (``bulk_client``: one all-or-nothing request for everything that fits
the daemon's body limit); against a daemon without it, one apply per object as kubectl
does, several in flight at once (a request's wait is mostly the daemon's work and the
socket's round trip), reported in input order and stopping at the first refusal.
"""

from __future__ import annotations

from mfx.api.kinds import KindInfo, kind_for
from mfx.api.objects import GITSOURCE_OWNER_LABEL, Obj
from mfx.api.yaml_loader import Manifest
from mfx.cli.bulk_client import BulkUnsupportedError, ItemError, Outcome, apply_chunk, chunks
from mfx.cli.client import Client, encode_json
from mfx.cli.manifests import check_manifests, located
from mfx.errors import (
    AlreadyExistsError,
    ConflictError,
    FieldError,
    MfxError,
    NotFoundError,
    ValidationError,
)

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Future

# Per-object requests in flight at once against a daemon without the bulk path.
PIPELINE_DEPTH = 8


def apply_one(client: Client, obj: Obj, *, dry_run: bool, force_conflicts: bool = False) -> str:
    """Create or update one object; returns kubectl's verb: created, configured, unchanged."""
    outcome = apply_one_outcome(client, obj, dry_run=dry_run, force_conflicts=force_conflicts)
    if outcome.warning:
        from mfx.cli import output

        output.warn(outcome.warning)
    return outcome.verb


def apply_one_outcome(client: Client, obj: Obj, *, dry_run: bool, force_conflicts: bool = False) -> Outcome:
    """Create or update one object with per-object requests.

    An object a GitSource manages is changed only with ``force_conflicts`` (and the next
    sync reverts it): its desired state lives in git."""
    # The apply rules and the schemas are read by the per-object path only, which a daemon
    # with the bulk one never needs.
    from mfx.api.apply import (
        apply_patch,
        comparable,
        desired_state,
        field_changes,
        merged_for_apply,
    )
    from mfx.api.schema import load_schemas

    kind = kind_for(obj["apiVersion"], obj["kind"])
    desired = desired_state(obj)
    name = desired["metadata"]["name"]
    try:
        live = client.get(kind, name)
    except NotFoundError:
        try:
            client.create(desired, kind, dry_run=dry_run)
            return Outcome(kind, name, "created")
        except AlreadyExistsError:  # created by someone else in between: apply onto theirs
            live = client.get(kind, name)
    merged = merged_for_apply(live, desired)
    if comparable(merged, annotation=False) == comparable(live, annotation=False):
        # Same spec, labels and annotations: only the record of the applied file would
        # change. Write nothing, so applying `get -o yaml` output is a true no-op.
        return Outcome(kind, name, "unchanged")
    owner = gitsource_of(live)
    changes = field_changes(live, load_schemas().apply_defaults(merged)) if owner else []
    warning = gitsource_override(kind, name, owner, changes, force_conflicts=force_conflicts)
    patch = apply_patch(live, load_schemas().apply_defaults(merged))
    if not patch:
        return Outcome(kind, name, "unchanged", warning)
    result = client.patch(kind, name, patch, dry_run=dry_run)
    return Outcome(kind, name, "configured" if comparable(result) != comparable(live) else "unchanged", warning)


def gitsource_of(live: Obj) -> str | None:
    """The GitSource that manages ``live``, if one does."""
    return (live.get("metadata", {}).get("labels") or {}).get(GITSOURCE_OWNER_LABEL)


def gitsource_override(kind: KindInfo, name: str, owner: str | None, changes: list[str], *,
                       force_conflicts: bool) -> str:
    """An apply that would make ``changes`` to an object GitSource ``owner`` manages: refused
    without ``force_conflicts``, and with it the warning to print ("" when nothing changes)."""
    if not owner or not changes:
        return ""
    text = f'{kind.plural} "{name}" is managed by gitsource/{owner}; {"; ".join(changes)}'
    if not force_conflicts:
        raise ConflictError(f"{text}; change it in git, or use --force-conflicts to override "
                            "(the next sync will revert it)")
    return f"{text}; applied with --force-conflicts: the next sync will revert it"


def apply_manifests(client: Client, manifests: list[Manifest], *, dry_run: bool,
                    force_conflicts: bool, validated: bool = True) -> Iterator[Outcome]:
    """Apply every manifest; yields each one's outcome in input order.

    A refused object raises its error, pointed at its file and line. Manifests not
    ``validated`` yet are validated by the daemon, which refuses an invalid one and stores
    nothing: only then are they validated here, to name every problem with its file and line
    as a local validation does. They are validated here first whenever what is sent is not
    all or nothing: several requests, or one request per object."""
    objs = [m.obj for m in manifests]
    encoded = [encode_json(obj) for obj in objs]
    groups = list(chunks(encoded))
    if not validated and (len(groups) > 1 or _names_repeat(objs)):
        check_manifests(manifests)  # a document naming an object again is an error here
        validated = True
    for number, indexes in enumerate(groups):
        try:
            yield from apply_chunk(client, [objs[i] for i in indexes], [encoded[i] for i in indexes],
                                   dry_run=dry_run, force_conflicts=force_conflicts)
        except BulkUnsupportedError:
            if number:  # the daemon answered the first request: it was not an older daemon
                raise
            if not validated:
                check_manifests(manifests)
            yield from pipelined(client, manifests, dry_run=dry_run, force_conflicts=force_conflicts)
            return
        except ItemError as refused:
            if not validated:
                check_manifests(manifests)
            raise located_all([(manifests[indexes[i]], error) for i, error in refused.errors]) from None
        except MfxError:
            if not validated:
                check_manifests(manifests)  # an invalid file is named before the daemon's trouble
            raise


def _names_repeat(objs: list[Obj]) -> bool:
    """Whether two documents may name the same object (which local validation refuses)."""
    return len({named_as(obj) for obj in objs}) != len(objs)


def named_as(obj: Obj) -> tuple[object, object]:
    """The kind and name a document gives, as far as it gives them (unchecked yet)."""
    metadata = obj.get("metadata")
    return obj.get("kind"), metadata.get("name") if isinstance(metadata, dict) else None


def located_all(errors: list[tuple[Manifest, MfxError]]) -> MfxError:
    """The errors of refused manifests, each pointed at its file and line, as one error."""
    located_errors = [located(error, manifest) for manifest, error in errors]
    if len(located_errors) == 1 or not all(isinstance(e, ValidationError) for e in located_errors):
        return located_errors[0]
    fields: list[FieldError] = []
    for error in located_errors:
        assert isinstance(error, ValidationError)
        fields.extend(error.errors)
    return ValidationError(fields)


def pipelined(client: Client, manifests: list[Manifest], *, dry_run: bool,
              force_conflicts: bool) -> Iterator[Outcome]:
    """One apply per object, ``PIPELINE_DEPTH`` in flight; outcomes in input order.

    Documents naming the same object more than once are applied one at a time, in order,
    as each must see the one before it."""
    # Threads (and the logging they bring) only for a daemon without the bulk path.
    from concurrent.futures import ThreadPoolExecutor

    keys = [(m.obj["apiVersion"], m.obj["kind"], m.obj["metadata"]["name"]) for m in manifests]
    depth = PIPELINE_DEPTH if len(set(keys)) == len(keys) else 1
    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="mfx-apply") as pool:
        window: list[tuple[Manifest, Future[Outcome]]] = []
        pending = iter(manifests)
        try:
            for manifest in pending:
                window.append((manifest, pool.submit(apply_one_outcome, client, manifest.obj, dry_run=dry_run,
                                                     force_conflicts=force_conflicts)))
                if len(window) >= depth:
                    yield _result(*window.pop(0))
            while window:
                yield _result(*window.pop(0))
        finally:
            for _, future in window:  # after a refusal: what was not sent yet is not sent
                future.cancel()


def _result(manifest: Manifest, future: Future[Outcome]) -> Outcome:
    try:
        return future.result()
    except MfxError as error:
        raise located(error, manifest) from None
