"""The daemon's package and trust endpoints: ``mfx plugin install`` and ``mfx trust`` over the API.

``POST /apis/mfx.musicfox.io/v1alpha1/packages?source=NAME`` takes a plugin package (the
``.tgz`` bytes, ``Content-Type: application/gzip``) and, in this order, writing nothing until
every check has passed:

1. stores the upload in a private temporary file (``$MFX_HOME/tmp``), at most
   ``MAX_UPLOAD_BYTES``;
2. verifies it (``mfx.api.packaging.verify``): every member is a plain file with a safe name,
   every file and executable bit matches ``SHA256SUMS``, and the signature satisfies the
   daemon's trust store (``$MFX_HOME/trust``). An unsigned package needs a source the daemon
   allows (``UnsignedPolicy``), and the source a client claims is checked, never believed:
   ``local`` only over the daemon's unix socket, ``first-party`` only when every file is
   identical to that plugin's folder in the daemon's ``--plugin-path``;
3. validates its ``plugin.yaml`` as a PluginManifest, as ``mfx apply`` would be;
4. unpacks it into ``$MFX_HOME/plugins/<name>/<version>/`` (through a staging directory and
   one rename). A version installed before with the same digest is kept as it is; one with
   another digest is refused: a published version never changes;
5. creates or updates the PluginManifest: the packed manifest's spec, labels and annotations,
   plus the annotation ``mfx.musicfox.io/package-digest`` (and who signed it).

Refusals are Status objects: 403 (reason ``Untrusted`` / ``SignatureInvalid``) for the trust
policy, 400 (``ChecksumMismatch`` / ``InvalidPackage``) naming the file or member at fault,
422 for an invalid manifest, 409 for a version already installed with other contents.

``GET .../packages[?name=NAME]`` lists what the plugin store holds (``mfx plugin list``,
``mfx rollback``). ``.../trustedkeys`` lists, adds (``{name, publicKeyPem}``) and removes
(``DELETE .../trustedkeys/NAME``) the public keys the daemon trusts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from mfx.api import validation
from mfx.api.kinds import API_VERSION, GROUP, PLUGIN_MANIFEST, VERSION
from mfx.api.objects import Obj
from mfx.api.packaging import (
    DIGEST_ANNOTATION,
    EXECUTABLES,
    MANIFEST,
    PACKAGE_ANNOTATIONS,
    SIGNER_ANNOTATION,
    SOURCE_ANNOTATION,
    SUMS,
    PackageInfo,
    directory_digests,
    unpack,
    verify,
)
from mfx.api.semver import Version
from mfx.api.signing import Policy, TrustedKey, TrustStore
from mfx.errors import (
    AlreadyExistsError,
    BadRequestError,
    ChecksumMismatchError,
    ConflictError,
    MfxError,
    NotFoundError,
    PackageError,
    SecurityError,
    SignatureError,
    UntrustedSourceError,
    ValidationError,
)
from mfx.server.admission import Admission
from mfx.server.api import json_response
from mfx.server.bodies import read_object
from mfx.server.status import status_from_error, status_object
from mfx.store.base import EventRecord, Store

log = logging.getLogger("mfx.server.packages")

PREFIX = f"/apis/{GROUP}/{VERSION}"
PACKAGE_TYPES = ("application/gzip", "application/x-gzip", "application/octet-stream")
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
MAX_KEY_BYTES = 64 * 1024
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._+-]")


class UnsignedSource(StrEnum):
    """Where an unsigned package may come from: only what the daemon can check itself."""

    LOCAL = "local"  # uploaded over the daemon's 0600 unix socket, i.e. by the machine's owner
    FIRST_PARTY = "first-party"  # byte-identical to the plugin's folder in the --plugin-path


@dataclass(frozen=True)
class UnsignedPolicy:
    """What the daemon accepts without a trusted signature (``mfx serve --allow-unsigned``).

    ``sources=None`` is the default: ``first-party`` always, and ``local`` only while the
    trust store holds no key. Trusting a key is the operator saying "packages are signed
    here", so from then on an unsigned upload needs ``--allow-unsigned local`` explicitly.
    """

    sources: frozenset[UnsignedSource] | None = None
    plugin_paths: tuple[Path, ...] = ()

    def allowed(self, trust: TrustStore) -> frozenset[UnsignedSource]:
        if self.sources is not None:
            return self.sources
        if trust.list():
            return frozenset({UnsignedSource.FIRST_PARTY})
        return frozenset({UnsignedSource.FIRST_PARTY, UnsignedSource.LOCAL})

    @staticmethod
    def parse(values: Sequence[str]) -> frozenset[UnsignedSource]:
        """``--allow-unsigned`` values: source names, or ``none``."""
        names = {v.strip() for value in values for v in value.split(",") if v.strip()}
        if names == {"none"}:
            return frozenset()
        known = {s.value for s in UnsignedSource}
        unknown = sorted(names - known)
        if unknown:
            raise BadRequestError(
                f"--allow-unsigned: unknown source {', '.join(unknown)}; the daemon can check only "
                f"{', '.join(sorted(known))} (or say none)")
        return frozenset(UnsignedSource(n) for n in names)


def _claimed_source(request: Request) -> UnsignedSource | None:
    """The source the client claims, checked against how it reached the daemon."""
    claimed = request.query_params.get("source") or None
    if claimed is None:
        return None
    known = {s.value for s in UnsignedSource}
    if claimed not in known:
        raise UntrustedSourceError(
            f"source {claimed!r} cannot be checked by this daemon, so it vouches for nothing; an "
            f"unsigned package may come only from {', '.join(sorted(known))}: sign it "
            f"(`mfx plugin pack DIR --key KEYFILE`) and trust the key (`mfx trust add NAME KEYFILE`)")
    source = UnsignedSource(claimed)
    if source is UnsignedSource.LOCAL and not _over_unix_socket(request):
        raise UntrustedSourceError(
            "source local is accepted only over the daemon's unix socket (the machine's own user), "
            "not over the network listener; sign the package and trust its key instead")
    return source


def _over_unix_socket(request: Request) -> bool:
    """Whether the request came over the daemon's 0600 unix socket (its owner's own user):
    uvicorn reports such a socket's address as ``(path, None)``, a TCP one with a port."""
    server = request.scope.get("server")
    return server is None or server[1] is None


def _first_party_dir(info: PackageInfo, plugin_paths: Sequence[Path]) -> Path | None:
    """The --plugin-path folder whose files are exactly the package's, if any."""
    packed = {rel: digest for rel, digest in info.files.items() if rel != EXECUTABLES}
    for root in plugin_paths:
        candidate = Path(root) / info.name
        try:
            if candidate.is_dir() and directory_digests(candidate) == packed:
                return candidate
        except (OSError, PackageError):
            continue
    return None


def plugin_store(home: Path) -> Path:
    """Where installed packages live: ``<home>/plugins/<name>/<version>/``."""
    return home / "plugins"


def trust_dir(home: Path) -> Path:
    return home / "trust"


def installed_digest(directory: Path) -> str | None:
    """The package digest of an installed version (None: not installed from a package)."""
    try:
        return "sha256:" + hashlib.sha256((directory / SUMS).read_bytes()).hexdigest()
    except OSError:
        return None


def installed_packages(home: Path, name: str | None = None) -> list[dict[str, Any]]:
    """Every ``<name>/<version>/`` of the plugin store (of one plugin, with ``name``), by name
    and then semantic version."""
    root = plugin_store(home)
    found: list[tuple[str, Version, dict[str, Any]]] = []
    if name:
        names = [name]
    else:
        names = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    for plugin in names:
        plugin_dir = root / plugin
        if plugin.startswith(".") or not plugin_dir.is_dir():
            continue
        for version_dir in plugin_dir.iterdir():
            try:
                version = Version.parse(version_dir.name)
            except ValueError:
                continue
            if not version_dir.is_dir() or not (version_dir / MANIFEST).is_file():
                continue
            found.append((plugin, version, {
                "name": plugin, "version": version_dir.name, "digest": installed_digest(version_dir),
                "path": str(version_dir),
            }))
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [entry for _, _, entry in found]


def package_routes(home: Path, unsigned: UnsignedPolicy, store: Store,
                   admission: Admission) -> list[Route]:
    """The routes to pass to ``ApiServer(extra_routes=...)``."""
    api = _PackagesApi(Path(home), unsigned, store, admission)
    return [
        Route(f"{PREFIX}/packages", api.packages, methods=["GET", "POST"]),
        Route(f"{PREFIX}/trustedkeys", api.trusted_keys, methods=["GET", "POST"]),
        Route(f"{PREFIX}/trustedkeys/{{name}}", api.trusted_key, methods=["GET", "DELETE"]),
    ]


def _refusal(error: MfxError, *, upload: Path | None = None, filename: str = "") -> Response:
    """A Status for a refused package or key; paths of the daemon's temporary files are
    replaced by the name the client gave the file."""
    if isinstance(error, ValidationError):
        return json_response(status_from_error(error, kind=PLUGIN_MANIFEST, name=error.name or None),
                             error.code)
    code, message = error.code, str(error)
    if isinstance(error, SecurityError):  # a broken package is the client's; a refused one, policy
        code = 400 if isinstance(error, (ChecksumMismatchError, PackageError)) else 403
    if upload is not None:
        message = message.replace(str(upload), filename)
    return json_response(status_object(code, message, reason=error.reason), code)


class _PackagesApi:
    def __init__(self, home: Path, unsigned: UnsignedPolicy, store: Store, admission: Admission) -> None:
        self.home = home
        self.unsigned = unsigned
        self.store = store
        self.admission = admission
        self.trust = TrustStore(trust_dir(home))
        self._install_lock = anyio.Lock()

    def _tmp(self) -> Path:
        tmp = self.home / "tmp"
        tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        return tmp

    # --- packages ----------------------------------------------------------------------

    async def packages(self, request: Request) -> Response:
        if request.method == "GET":
            name = request.query_params.get("name") or None
            problem = validation.dns1123_subdomain_problem(name) if name else None
            if problem:
                return json_response(status_object(400, f"name: {problem}"), 400)
            items = await anyio.to_thread.run_sync(installed_packages, self.home, name)
            return json_response({"kind": "PackageList", "apiVersion": API_VERSION, "metadata": {},
                                  "items": [{"kind": "Package", "apiVersion": API_VERSION, **item}
                                            for item in items]})
        return await self._install(request)

    async def _install(self, request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip()
        if media not in PACKAGE_TYPES:
            return json_response(status_object(
                415, f"a package is uploaded as application/gzip (the .tgz bytes), not {media or 'nothing'}; "
                     "use `mfx plugin install FILE`"), 415)
        try:
            source = _claimed_source(request)
        except MfxError as error:
            return _refusal(error)
        filename = _SAFE_FILENAME.sub("_", Path(request.query_params.get("filename") or "").name)
        if not filename.strip("."):
            filename = "package.tgz"  # no name, or "." / "..": never a path of its own
        workdir = Path(await anyio.to_thread.run_sync(
            lambda: tempfile.mkdtemp(prefix="upload-", dir=self._tmp())))
        upload = workdir / filename
        try:
            try:
                await self._receive(request, upload)
            except ClientDisconnect:
                return Response(status_code=400)
            except MfxError as error:
                return _refusal(error)
            async with self._install_lock:
                try:
                    return await self._install_file(upload, source)
                except UntrustedSourceError as error:
                    allowed = sorted(self.unsigned.allowed(self.trust))
                    if source not in allowed:
                        what = (f"accepts unsigned plugins from {', '.join(allowed)} "
                                "(mfx plugin install FILE --source NAME)" if allowed
                                else "accepts no unsigned plugins")
                        error = UntrustedSourceError(f"{error}; this daemon {what}")
                    return _refusal(error, upload=upload, filename=filename)
                except MfxError as error:
                    return _refusal(error, upload=upload, filename=filename)
        finally:
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(workdir, ignore_errors=True))

    async def _receive(self, request: Request, upload: Path) -> None:
        size = 0
        with upload.open("wb") as out:  # small writes into a private file: not worth a thread each
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    error = MfxError(f"the package is larger than {MAX_UPLOAD_BYTES} bytes; refused",
                                     reason="RequestEntityTooLarge")
                    error.code = 413
                    raise error
                out.write(chunk)
        if size == 0:
            raise BadRequestError("the request body is empty: send the .tgz bytes of the package")

    def _verify(self, upload: Path, source: UnsignedSource | None) -> PackageInfo:
        policy = Policy(allow_unsigned_sources=frozenset(self.unsigned.allowed(self.trust)))
        info = verify(upload, self.trust, policy, source=source)
        if info.signer is None and source is UnsignedSource.FIRST_PARTY \
                and _first_party_dir(info, self.unsigned.plugin_paths) is None:
            raise UntrustedSourceError(
                f"{upload} claims source first-party, but its files differ from every "
                f"{info.name}/ folder in this daemon's --plugin-path; sign it and trust the key, "
                "or install it unsigned over the unix socket with --source local")
        return info

    async def _install_file(self, upload: Path, source: UnsignedSource | None) -> Response:
        info: PackageInfo = await anyio.to_thread.run_sync(self._verify, upload, source)
        desired = self._desired_object(info, source)
        target = plugin_store(self.home) / info.name / info.version
        if not target.resolve().is_relative_to(plugin_store(self.home).resolve()):
            raise PackageError(f"plugin {info.name!r} version {info.version!r} names a path outside the plugin store")
        fresh = await anyio.to_thread.run_sync(lambda: self._place(upload, info, target))
        try:
            obj, created = await self._create_or_update(desired)
        except BaseException:
            if fresh:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(lambda: shutil.rmtree(target, ignore_errors=True))
            raise
        signer = f"signed by {info.signer}" if info.signer else f"unsigned, from source {source}"
        log.info("installed plugin %s %s (%s, %s)", info.name, info.version, info.digest, signer)
        await self.store.record_event(EventRecord(
            involved_kind=PLUGIN_MANIFEST.kind, involved_name=info.name,
            involved_uid=obj["metadata"].get("uid", ""), involved_api_version=API_VERSION,
            type="Normal", reason="PackageInstalled",
            message=(f"installed version {info.version} ({info.digest}, {signer}) into {target}" if fresh else
                     f"applied version {info.version} ({info.digest}, {signer}), installed before in {target}"),
            source="package-installer"))
        return json_response(obj, 201 if created else 200)

    def _desired_object(self, info: PackageInfo, source: UnsignedSource | None) -> Obj:
        """The packed manifest, validated, with the package annotations; raises ValidationError."""
        obj: Obj = dict(info.manifest)
        obj.pop("status", None)
        metadata = {k: v for k, v in dict(obj.get("metadata") or {}).items()
                    if k not in validation.SERVER_METADATA_FIELDS}
        annotations = dict(metadata.get("annotations") or {})
        for key in PACKAGE_ANNOTATIONS:
            annotations.pop(key, None)
        annotations[DIGEST_ANNOTATION] = info.digest
        if info.signer:
            annotations[SIGNER_ANNOTATION] = info.signer
        if source:
            annotations[SOURCE_ANNOTATION] = source.value
        metadata["annotations"] = annotations
        obj["metadata"] = metadata
        return self.admission.admit(obj)

    def _place(self, upload: Path, info: PackageInfo, target: Path) -> bool:
        """Unpack into ``target`` unless the same digest is there; True if newly written."""
        if target.exists():
            existing = installed_digest(target)
            if existing == info.digest:
                return False
            what = f"digest {existing}" if existing else "files that were not installed from a package"
            raise ConflictError(
                f"plugin {info.name} version {info.version} is already installed at {target} with {what}, "
                f"and this package has digest {info.digest}; a released version never changes: "
                f"give the new build a new spec.version (and pack it again)")
        staging = Path(tempfile.mkdtemp(prefix="unpack-", dir=self._tmp()))
        try:
            unpack(upload, staging / "files", expected_digest=info.digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging / "files", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return True

    async def _create_or_update(self, desired: Obj) -> tuple[Obj, bool]:
        name = desired["metadata"]["name"]
        for _attempt in range(5):
            try:
                live = await self.store.get(PLUGIN_MANIFEST.kind, name)
            except NotFoundError:
                try:
                    return await self.store.create(desired), True
                except AlreadyExistsError:
                    continue
            merged = {**live, "spec": desired["spec"]}
            merged.pop("status", None)
            meta = dict(live["metadata"])
            for key in ("labels", "annotations"):
                kept = {k: v for k, v in (meta.get(key) or {}).items() if k not in PACKAGE_ANNOTATIONS}
                value = {**kept, **(desired["metadata"].get(key) or {})}
                if value:
                    meta[key] = value
                else:
                    meta.pop(key, None)
            merged["metadata"] = meta
            if all(merged.get(k) == live.get(k) for k in ("spec", "metadata")):
                return live, False  # the same package again: nothing to write
            try:
                return await self.store.update(self.admission.admit(merged)), False
            except ConflictError:
                continue  # written in between: read again
        raise ConflictError(f'pluginmanifests "{name}" keeps changing during the install; try again')

    # --- trusted keys ------------------------------------------------------------------

    async def trusted_keys(self, request: Request) -> Response:
        try:
            if request.method == "GET":
                keys = await anyio.to_thread.run_sync(self.trust.list)
                items = await anyio.to_thread.run_sync(lambda: [_key_object(k) for k in keys])
                return json_response({"kind": "TrustedKeyList", "apiVersion": API_VERSION, "metadata": {},
                                      "items": items})
            return await self._add_key(request)
        except MfxError as error:
            return _refusal(error)

    async def _add_key(self, request: Request) -> Response:
        doc = await read_object(request, limit=MAX_KEY_BYTES)
        if not isinstance(doc.get("name"), str) or not isinstance(doc.get("publicKeyPem"), str):
            raise BadRequestError("the request body must be {\"name\": STRING, \"publicKeyPem\": STRING}")
        name, pem = doc["name"], doc["publicKeyPem"]

        def add() -> TrustedKey:
            if any(k.name == name for k in self.trust.list()):
                raise AlreadyExistsError(
                    f"a trusted key named {name!r} exists already; remove it first "
                    f"(`mfx trust remove {name}`) or choose another name")
            with tempfile.NamedTemporaryFile(dir=self._tmp(), suffix=".pub") as pem_file:
                pem_file.write(pem.encode())
                pem_file.flush()
                try:
                    return self.trust.add(name, Path(pem_file.name))
                except SignatureError as exc:
                    raise BadRequestError(str(exc).replace(pem_file.name, "publicKeyPem"),
                                          reason="InvalidKey") from None

        key = await anyio.to_thread.run_sync(add)
        log.info("trusted key %s added (%s)", key.name, key.fingerprint)
        return json_response(await anyio.to_thread.run_sync(_key_object, key), 201)

    async def trusted_key(self, request: Request) -> Response:
        name = request.path_params["name"]

        def find() -> dict[str, Any]:
            key = next((k for k in self.trust.list() if k.name == name), None)
            if key is None:
                raise NotFoundError(f"no trusted key named {name!r}; `mfx trust list` shows the names")
            return _key_object(key)

        try:
            found = await anyio.to_thread.run_sync(find)
            if request.method == "DELETE":
                await anyio.to_thread.run_sync(self.trust.remove, name)
                log.info("trusted key %s removed", name)
            return json_response(found)
        except MfxError as error:
            return _refusal(error)


def _key_object(key: TrustedKey) -> dict[str, Any]:
    return {"kind": "TrustedKey", "apiVersion": API_VERSION, "metadata": {"name": key.name},
            "fingerprint": key.fingerprint, "publicKeyPem": key.path.read_text()}
