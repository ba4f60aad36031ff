"""``mfx apply --server-side``: each object sent as an apply configuration, as
``kubectl apply --server-side`` sends it.

The daemon merges each configuration into the live object and records which fields each
field manager (``--field-manager``, default ``mfx``) applied, in ``metadata.managedFields``. A
field another manager owns with a different value is a conflict (HTTP 409, the fields and
their managers named) unless ``--force-conflicts`` takes it over. Each object is a request
of its own, as kubectl sends them, so a refused object leaves the ones before it applied
(they are listed above the error, which names its file and line).

An object a GitSource manages is changed only with ``--force-conflicts``, as with every
other apply: a dry run of the request shows what would change, and the next sync reverts it.
"""

from __future__ import annotations

from mfx.api.kinds import kind_for
from mfx.cli.apply_requests import gitsource_of, gitsource_override, located_all
from mfx.cli.bulk_client import Outcome
from mfx.errors import ConflictError, MfxError, NotFoundError

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from mfx.api.kinds import KindInfo
    from mfx.api.objects import Obj
    from mfx.api.yaml_loader import Manifest
    from mfx.cli.client import Client

APPLY_PATCH = "application/apply-patch+yaml"
VERB = "serverside-applied"  # what kubectl prints for each object


def apply_server_side(client: Client, manifests: list[Manifest], *, field_manager: str, force_conflicts: bool,
                      dry_run: bool) -> Iterator[Outcome]:
    """Each manifest applied in turn; yields its outcome, or raises its error at its file and line."""
    for manifest in manifests:
        obj = manifest.obj
        try:
            yield _apply_one(client, obj, field_manager=field_manager, force_conflicts=force_conflicts,
                             dry_run=dry_run)
        except ConflictError as error:  # fields another manager owns, or a GitSource's object
            text = str(error)
            if "--force-conflicts" not in text:
                text += "; re-run with --force-conflicts to take them over"
            raise ConflictError(f"{manifest.file}: {text}") from None
        except MfxError as error:
            raise located_all([(manifest, error)]) from None


def _apply_one(client: Client, obj: Obj, *, field_manager: str, force_conflicts: bool, dry_run: bool) -> Outcome:
    kind = kind_for(obj["apiVersion"], obj["kind"])
    name = obj["metadata"]["name"]
    params = {"fieldManager": field_manager}
    if force_conflicts:
        params["force"] = "true"
    warning = ""
    try:
        live: Obj | None = client.get(kind, name)
    except NotFoundError:
        live = None
    if live is not None and (owner := gitsource_of(live)):
        from mfx.api.apply import field_changes

        preview = _send(client, kind, name, obj, {**params, "dryRun": "All"})
        warning = gitsource_override(kind, name, owner, field_changes(live, preview), force_conflicts=force_conflicts)
    _send(client, kind, name, obj, {**params, "dryRun": "All"} if dry_run else params)
    return Outcome(kind, name, VERB, warning)


def _send(client: Client, kind: KindInfo, name: str, obj: Obj, params: dict[str, Any]) -> Obj:
    return client.request("PATCH", f"{kind.resource_path}/{name}", params=params,  # type: ignore[no-any-return]
                          body=obj, content_type=APPLY_PATCH)
