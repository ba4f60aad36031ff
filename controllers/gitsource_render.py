"""A GitSource's desired objects at one revision: fetch, read, validate, label.

Shared by the controller (which applies them) and ``mfx diff gitsource/NAME`` (which shows
what applying them would change), so both see exactly the same objects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import anyio
import orjson

from controllers.git_fetch import GitRepository, ManifestFile, auth_for, revision_string
from mfx.api import validation
from mfx.api.apply import desired_state
from mfx.api.json_copy import json_copy
from mfx.api.models import GitSourceSpec
from mfx.api.objects import GITSOURCE_OWNER_LABEL, MANAGED_BY_LABEL, Obj, ObjectKey, key_of
from mfx.api.schema import Schemas
from mfx.api.yaml_plain import PlainReader
from mfx.errors import FieldError, ValidationError

MANAGED_BY = "mfx-gitsource"
# What the source last applied to an object, as a digest of its spec and labels. Kept out of
# the last-applied record on purpose: a forced ``mfx apply`` keeps it, so the next sync can
# tell a hand edit (digest unchanged, object differs: drift) from a new commit (digest changed).
DIGEST_ANNOTATION = "gitsource.mfx.musicfox.io/applied-digest"


@dataclass(frozen=True)
class Rendered:
    revision: str  # main@sha1:<hash>
    sha: str
    objects: list[Obj]  # in file order, labelled, defaulted, ready to create or merge

    def keys(self) -> list[ObjectKey]:
        return [key_of(o) for o in self.objects]


def digest(obj: Obj) -> str:
    body = {"spec": obj.get("spec"), "labels": (obj.get("metadata") or {}).get("labels") or {}}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]


def desired_objects(files: list[ManifestFile], source: str, schemas: Schemas) -> list[Obj]:
    """Validate every file as ``mfx apply`` does (all or nothing); the objects to apply."""
    manifests: list[validation.Manifest] = []
    errors: list[FieldError] = []
    reader = PlainReader()  # the files of a repository share most of their lines: each is read once
    for file in files:
        try:
            manifests.extend(validation.load_manifests(validation.decode_manifest(file.name, file.data), file.name,
                                                       reader=reader))
        except ValidationError as error:
            errors.extend(error.errors)
    try:
        validation.validate_all(manifests, schemas)
    except ValidationError as error:
        errors.extend(error.errors)
    if errors:
        raise ValidationError(errors)
    objects = []
    for manifest in manifests:
        obj = {k: v for k, v in manifest.obj.items() if k != "status"}
        meta = obj["metadata"] = dict(obj.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY, GITSOURCE_OWNER_LABEL: source}
        desired = schemas.apply_defaults(desired_state(obj))
        desired["metadata"]["annotations"][DIGEST_ANNOTATION] = digest(desired)
        objects.append(desired)
    return objects


def repository(cache_dir: Path, spec: GitSourceSpec) -> GitRepository:
    return GitRepository(cache_dir, spec.url, auth_for(spec.credentials), timeout=spec.timeout_seconds)


async def fetch_revision(repo: GitRepository, spec: GitSourceSpec) -> tuple[str, str]:
    """Fetch the ref; (sha, revision) as ``main@sha1:<hash>`` (raises GitError)."""
    sha = await repo.fetch(spec.ref)
    return sha, revision_string(spec.ref, sha)


async def read_desired(repo: GitRepository, sha: str, spec: GitSourceSpec, source: str,
                       schemas: Schemas) -> list[Obj]:
    """The desired objects at ``sha`` (raises GitError, ValidationError)."""
    files = await repo.read_manifests(sha, spec.path)
    # Parsing and validating is ~70 µs a file: on a worker thread, so a large repository does
    # not hold up the event loop (the API, the other controllers) for the whole of it.
    return await anyio.to_thread.run_sync(desired_objects, files, source, schemas)


class DesiredCache:
    """The desired objects each source read at its last revision.

    A commit's files never change, so a sync of an unchanged revision (each interval's, or
    ``mfx reconcile``) does not read and validate them again: on a 500-manifest repository
    that was most of the sync. One entry per source, its latest revision and path; schemas
    are fixed for a controller's life, so they need no key.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[str, str], list[Obj]]] = {}

    async def desired(self, repo: GitRepository, sha: str, spec: GitSourceSpec, source: str,
                      schemas: Schemas) -> list[Obj]:
        """``read_desired``, once per (revision, path); each caller gets its own copies,
        since what it applies is handed to the store."""
        key = (sha, spec.path)
        entry = self._entries.get(source)
        if entry is None or entry[0] != key:
            entry = self._entries[source] = (key, await read_desired(repo, sha, spec, source, schemas))
        return json_copy(entry[1])

    def forget(self, source: str) -> None:
        self._entries.pop(source, None)


async def render(repo: GitRepository, spec: GitSourceSpec, source: str, schemas: Schemas) -> Rendered:
    sha, revision = await fetch_revision(repo, spec)
    return Rendered(revision, sha, await read_desired(repo, sha, spec, source, schemas))
