"""The daemon's bulk apply (``mfx.server.api_bulk``) from the CLI: many objects per request.

Objects go in as few requests as the daemon's body limit allows (one, for any directory of
up to a few thousand ordinary manifests); each request is all-or-nothing on the daemon. The
field errors the daemon names as ``items[i].<field>`` come back as the manifest's own field
errors, so the caller can point them at file and line as for a per-object apply.
"""

from __future__ import annotations

import re
from collections import namedtuple

from mfx.api.kinds import GROUP, VERSION, KindInfo, kind_for
from mfx.api.objects import Obj
from mfx.cli.client import Client
from mfx.errors import FieldError, MfxError, NotFoundError, ValidationError

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, NamedTuple

BULK_APPLY_PATH = f"/apis/{GROUP}/{VERSION}/apply"
BULK_APPLY_STREAM_PATH = f"{BULK_APPLY_PATH}/stream"
NDJSON = "application/x-ndjson"
FIELD_MANAGER = "mfx"
# The daemon refuses bodies over this (``mfx.server.bodies.MAX_BODY_BYTES``, kept equal by a
# test); the CLI does not import the server's modules, which would slow every command's start.
MAX_BODY_BYTES = 3 * 1024 * 1024
_ENVELOPE = b'{"apiVersion":"v1","kind":"List","items":[]}'
_WHERE = re.compile(r'^items\[(\d+)\](?: \([^")]* "[^"]*"\))?: ')
_ITEM = re.compile(r"^items\[(\d+)\](?:\.(.*))?$")


class BulkUnsupportedError(MfxError):
    """The daemon has no bulk apply path (an older one): apply one object per request."""


if TYPE_CHECKING:
    class Outcome(NamedTuple):  # a record apply loads at every start: see mfx.errors.FieldError
        kind: KindInfo
        name: str
        verb: str  # created, configured, unchanged
        warning: str = ""
else:  # the same record, without importing typing
    Outcome = namedtuple("Outcome", "kind name verb warning", defaults=("",))


class ItemError(Exception):
    """The daemon refused the request because of these items (by index); nothing was stored."""

    def __init__(self, errors: list[tuple[int, MfxError]]) -> None:
        super().__init__("; ".join(str(e) for _, e in errors))
        self.errors = errors


def chunks(encoded: list[bytes], limit: int = MAX_BODY_BYTES) -> Iterator[list[int]]:
    """Indexes of ``encoded`` grouped in order into bodies of at most ``limit`` bytes."""
    current: list[int] = []
    size = len(_ENVELOPE)
    for index, item in enumerate(encoded):
        if current and size + len(item) + 1 > limit:
            yield current
            current, size = [], len(_ENVELOPE)
        current.append(index)
        size += len(item) + 1
    if current:
        yield current


def apply_chunk(client: Client, objs: list[Obj], encoded: list[bytes], *, dry_run: bool,
                force_conflicts: bool) -> list[Outcome]:
    """Apply ``objs`` (``encoded``: their JSON) in one request; all or nothing.

    Raises ``BulkUnsupportedError`` when the daemon has no bulk path, ``ItemError`` when one
    item was refused."""
    body = b'{"apiVersion":"v1","kind":"List","items":[' + b",".join(encoded) + b"]}"
    return _outcomes(_bulk_request(lambda params: client.request(
        "POST", BULK_APPLY_PATH, params=params, body=body), dry_run, force_conflicts), len(objs))


def apply_stream(client: Client, lines: Iterator[bytes], count: Callable[[], int], *, dry_run: bool,
                 force_conflicts: bool) -> list[Outcome]:
    """Apply the objects whose JSON lines ``lines`` yields as it makes them (``count``: how
    many it made, once it ends), in one streamed request; all or nothing, as ``apply_chunk``.
    An exception from ``lines`` aborts the request, which then applies nothing."""
    return _outcomes(_bulk_request(lambda params: client.request_streamed(
        "POST", BULK_APPLY_STREAM_PATH, params=params, pieces=lines, content_type=NDJSON),
        dry_run, force_conflicts), count())


def _bulk_request(send: Callable[[dict[str, str]], Any], dry_run: bool, force_conflicts: bool) -> Any:
    params = {"fieldManager": FIELD_MANAGER}
    if dry_run:
        params["dryRun"] = "All"
    if force_conflicts:
        params["force"] = "true"
    try:
        return send(params)
    except NotFoundError as error:
        if "items[" not in error.message:  # the path itself is unknown, not one of the items
            raise BulkUnsupportedError(error.message) from None
        raise _item_error(error) from None
    except ValidationError as error:
        raise _item_error(error) from None
    except MfxError as error:
        if error.code == 405:
            raise BulkUnsupportedError(error.message) from None
        raise _item_error(error) from None


def _outcomes(answer: Any, sent: int) -> list[Outcome]:
    results = answer["items"]
    if len(results) != sent:
        raise MfxError(f"the daemon answered {len(results)} outcomes for {sent} objects")
    return [Outcome(kind_for(r["apiVersion"], r["kind"]), r["metadata"]["name"], r["outcome"], r.get("warning", ""))
            for r in results]


def _item_error(error: MfxError) -> MfxError | ItemError:
    if isinstance(error, ValidationError):
        per_item: dict[int, list[FieldError]] = {}
        for e in error.errors:
            match = _ITEM.match(e.path)
            if match is None:
                return error
            per_item.setdefault(int(match.group(1)), []).append(
                FieldError(path=match.group(2) or "", message=e.message))
        if not per_item:
            return error
        return ItemError([(index, ValidationError(errors)) for index, errors in sorted(per_item.items())])
    match = _WHERE.match(error.message)
    if match is None:
        return error
    # Worded as the per-object request words it: the caller says which file it came from.
    return ItemError([(int(match.group(1)), error.reworded(error.message[match.end():]))])
