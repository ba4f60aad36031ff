"""The plugin author's and operator's tools: ``mfx plugin``, ``mfx trust``, ``mfx rollback``.

Local steps (``init``, ``keygen``, ``pack``, ``verify``) need no daemon; ``install``,
``list``, ``trust`` and ``rollback`` talk to the daemon over its API, which keeps the trust
store (``$MFX_HOME/trust``) and the plugin store (``$MFX_HOME/plugins/<name>/<version>``).
Progress lines go to stderr, results to stdout.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import click
import yaml

from mfx.api import validation
from mfx.api.kinds import GROUP, PLUGIN_MANIFEST, VERSION, resolve_kind
from mfx.api.packaging import (
    DIGEST_ANNOTATION,
    MANIFEST,
    PACKAGE_ANNOTATIONS,
    SIGNER_ANNOTATION,
    SKIPPED_NAMES,
    PackageInfo,
    pack,
    verify,
)
from mfx.api.schema import load_schemas
from mfx.api.semver import Version
from mfx.api.signing import (
    Policy,
    TrustStore,
    fingerprint,
    generate_keypair,
    load_private_key,
    load_public_key,
)
from mfx.cli import output
from mfx.cli.client import Client
from mfx.cli.main import CliContext
from mfx.cli.manifests import Source, load_and_validate
from mfx.cli.scaffold import TYPES, scaffold
from mfx.errors import BadRequestError, FieldError, NotFoundError, ValidationError
from mfx.home import default_home

pass_cli = click.make_pass_decorator(CliContext)

PACKAGES_PATH = f"/apis/{GROUP}/{VERSION}/packages"
TRUSTED_KEYS_PATH = f"/apis/{GROUP}/{VERSION}/trustedkeys"
# A source name ``mfx plugin verify --allow-unsigned`` judges unsigned packages by.
_LOCAL_CHECK = "verify --allow-unsigned"


def progress(message: str) -> None:
    click.echo(message, err=True)


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1048576:.1f} MiB"


# --- mfx plugin ----------------------------------------------------------------------------------


@click.group("plugin")
def plugin_group() -> None:
    """Write, package, sign, verify and install plugins.

    \b
    A plugin's life:
      mfx plugin init my-gain --type dynamic_library --dir plugins
      mfx plugin keygen ~/.config/mfx/signing.key ~/.config/mfx/signing.pub
      mfx trust add me ~/.config/mfx/signing.pub
      mfx plugin pack plugins/my-gain --key ~/.config/mfx/signing.key
      mfx plugin verify my-gain-0.1.0.tgz
      mfx plugin install my-gain-0.1.0.tgz
      mfx rollback pm/my-gain
    """


@plugin_group.command("init")
@click.argument("name")
@click.option("--type", "type_", type=click.Choice(TYPES), required=True, help="The plugin's runtime.")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to create the plugin folder NAME/.")
def init(name: str, type_: str, parent: Path) -> None:
    """Create a plugin folder DIR/NAME that applies and becomes Ready unchanged.

    It holds plugin.yaml (a PluginManifest, version 0.1.0), the source, and a README with
    the next commands. A webassembly plugin is a .wat source with a Makefile, compiled once
    here so it is ready to run.

    \b
    Examples:
      mfx plugin init greeter --type rpc --dir plugins
      mfx plugin init my-gain --type dynamic_library
      mfx plugin init status-line --type hot_reload
      mfx plugin init echo --type webassembly
    """
    target, files = scaffold(name, type_, parent)
    for path in files:
        progress(f"  wrote {path}")
    click.echo(f"created {type_} plugin {name!r} in {target}")
    click.echo("next:")
    click.echo(f"  mfx serve --plugin-path {parent} &          # if the daemon is not running yet")
    click.echo(f"  mfx apply -f {target / MANIFEST}")
    click.echo(f"  mfx wait --for=condition=Ready pm/{name} --timeout=60s")


@plugin_group.command("keygen")
@click.argument("private_key", metavar="PRIVATE", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("public_key", metavar="PUBLIC", type=click.Path(dir_okay=False, path_type=Path))
def keygen(private_key: Path, public_key: Path) -> None:
    """Create an Ed25519 key pair for signing packages (PEM files; the private one mode 0600).

    Keep PRIVATE secret and out of plugin folders (pack refuses to include it); give PUBLIC
    to whoever runs the daemon, for 'mfx trust add'.

    \b
    Example:
      mfx plugin keygen ~/.config/mfx/signing.key ~/.config/mfx/signing.pub
    """
    if public_key.exists():
        raise BadRequestError(f"{public_key} already exists; choose another path or delete it first")
    for path in (private_key, public_key):
        path.parent.mkdir(parents=True, exist_ok=True)
    key_fp = generate_keypair(private_key, public_key)
    click.echo(f"private key: {private_key} (keep it secret)")
    click.echo(f"public key:  {public_key}")
    click.echo(f"fingerprint: {key_fp}")
    click.echo("next:")
    click.echo(f"  mfx trust add NAME {public_key}                 # on the daemon that installs your plugins")
    click.echo(f"  mfx plugin pack DIR --key {private_key}")


def _private_keys_in(directory: Path) -> list[Path]:
    """Files under ``directory`` (as pack would take them) that hold a PEM private key."""
    found = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if d not in SKIPPED_NAMES]
        for name in names:
            path = Path(root) / name
            try:
                if path.is_symlink() or path.stat().st_size > 64 * 1024:
                    continue
                head = path.read_bytes()
            except OSError:
                continue
            if b"-----BEGIN" in head and b"PRIVATE KEY-----" in head:
                found.append(path)
    return sorted(found)


@plugin_group.command("pack")
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="The package file. Default: NAME-VERSION.tgz in the current directory.")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sign with this private key (from 'mfx plugin keygen').")
def pack_cmd(directory: Path, out: Path | None, key_path: Path | None) -> None:
    """Pack a plugin folder into a deterministic .tgz with checksums, signed with --key.

    The manifest is validated first (with file and line); the same folder always packs to
    the same bytes. Private keys inside the folder are refused.

    \b
    Examples:
      mfx plugin pack plugins/my-gain --key ~/.config/mfx/signing.key
      mfx plugin pack plugins/my-gain -o dist/my-gain.tgz      # unsigned
    """
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BadRequestError(f"{directory} has no {MANIFEST}; create a plugin with 'mfx plugin init'")
    progress(f"validating {manifest_path}")
    manifest = load_and_validate([Source(str(manifest_path), manifest_path.read_text())], load_schemas())
    if len(manifest) != 1 or manifest[0].obj.get("kind") != PLUGIN_MANIFEST.kind:
        raise BadRequestError(f"{manifest_path} must hold exactly one PluginManifest")
    keys = _private_keys_in(directory)
    if keys:
        raise BadRequestError(
            f"refusing to pack {', '.join(map(str, keys))}: a private key would be published with "
            "the plugin; move it out of the plugin folder")
    private = load_private_key(key_path) if key_path is not None else None
    obj = manifest[0].obj
    target = out or Path(f"{obj['metadata']['name']}-{obj['spec']['version']}.tgz")
    progress(f"packing {directory}" + (f", signing with {key_path}" if key_path else " (unsigned)"))
    info = pack(directory, target, private_key=private)
    click.echo(f"packed {target} ({_size(target.stat().st_size)})")
    _print_info(info)
    if not info.signed:
        click.echo("unsigned: the daemon installs it only from a source allowed to deliver unsigned "
                   "plugins (mfx plugin install FILE --source local); sign it with --key KEYFILE")


def _print_info(info: PackageInfo) -> None:
    click.echo(f"  name:      {info.name}")
    click.echo(f"  version:   {info.version}")
    click.echo(f"  type:      {info.type}")
    click.echo(f"  files:     {len(info.files)}")
    click.echo(f"  digest:    {info.digest}")
    if info.signed:
        signer = f" (trusted key {info.signer!r})" if info.signer else ""
        click.echo(f"  signed by: {info.key_fingerprint or 'a key that is not named'}{signer}")
    else:
        click.echo("  signed by: nobody (unsigned)")


@plugin_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trust-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Trusted public keys (NAME.pub). Default: the daemon home's trust/.")
@click.option("--allow-unsigned", is_flag=True, help="Accept a package without a trusted signature "
              "(checksums and manifest are still checked).")
@pass_cli
def verify_cmd(ctx: CliContext, file: Path, trust_dir: Path | None, allow_unsigned: bool) -> None:
    """Check a package locally, as the daemon will: members, checksums, signature, manifest.

    Exit 0 when it would be accepted; 1 with the reason when not.

    \b
    Examples:
      mfx plugin verify my-gain-0.1.0.tgz
      mfx plugin verify my-gain-0.1.0.tgz --trust-dir ~/.config/mfx/trust
    """
    trust_dir = trust_dir or (ctx.home or default_home()) / "trust"
    store = TrustStore(trust_dir)
    progress(f"verifying {file} against the trusted keys in {trust_dir}")
    policy = Policy(frozenset({_LOCAL_CHECK})) if allow_unsigned else Policy()
    info = verify(file, store, policy, source=_LOCAL_CHECK if allow_unsigned else None)
    click.echo(f"  members:   {len(info.files) + 1 + info.signed} plain files with safe names")
    click.echo(f"  checksums: {len(info.files)} files match SHA256SUMS, executable bits included")
    click.echo(f"  digest:    {info.digest}")
    if info.signer:
        click.echo(f"  signature: valid, by trusted key {info.signer!r} ({info.key_fingerprint})")
    elif info.signed:
        click.echo(f"  signature: by {info.key_fingerprint}, which is not trusted (accepted: --allow-unsigned)")
    else:
        click.echo("  signature: none (accepted: --allow-unsigned)")
    try:
        validation.validate_object(dict(info.manifest), schemas=load_schemas())
    except ValidationError as error:
        raise _in_manifest(error, file) from None
    click.echo(f"  manifest:  PluginManifest {info.name} {info.version} ({info.type}) is valid")
    click.echo(f"verified {file}")


def _in_manifest(error: ValidationError, package: Path) -> ValidationError:
    """The same field errors, located in the package's plugin.yaml."""
    return ValidationError([FieldError(path=e.path, message=e.message, file=f"{package}:{MANIFEST}")
                            for e in error.errors])


def _packed_name(data: bytes) -> str | None:
    """The plugin name in a package's manifest, best effort (only to tell created from configured)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            doc = yaml.safe_load(member.read(1024 * 1024)) if member is not None else None
    except (tarfile.TarError, OSError, EOFError, KeyError, yaml.YAMLError):
        return None
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and not validation.dns1123_subdomain_problem(name) else None


@plugin_group.command("install")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", metavar="local|first-party",
              help="Where an unsigned package comes from; the daemon checks the claim and its own "
                   "policy (mfx serve --allow-unsigned): local is accepted over the unix socket while "
                   "no key is trusted, first-party when the files equal the plugin in --plugin-path.")
@pass_cli
def install(ctx: CliContext, file: Path, source: str | None) -> None:
    """Upload a package to the daemon, which verifies, unpacks and applies it.

    The daemon checks the package against its trust store and policy, unpacks it into
    $MFX_HOME/plugins/NAME/VERSION/ and creates or updates the PluginManifest (annotated
    with the package digest). A version already installed with other contents is refused.

    \b
    Examples:
      mfx plugin install my-gain-0.1.0.tgz
      mfx plugin install my-gain-0.1.0.tgz --source local      # unsigned, for development
    """
    data = file.read_bytes()
    client = ctx.client
    progress(f"uploading {file} ({_size(len(data))}) to the daemon at {client.endpoint.describe()}")
    params = {"filename": file.name, **({"source": source} if source else {})}
    before: dict[str, Any] | None = None
    name = _packed_name(data)
    if name:
        try:
            before = client.get(PLUGIN_MANIFEST, name)
        except NotFoundError:
            pass
    try:
        obj = client.request("POST", PACKAGES_PATH, params=params, body=data, content_type="application/gzip")
    except ValidationError as error:
        raise _in_manifest(error, file) from None
    meta, spec = obj["metadata"], obj["spec"]
    annotations = meta.get("annotations") or {}
    signer = annotations.get(SIGNER_ANNOTATION)
    how = f"signed by {signer!r}" if signer else f"unsigned, from source {source!r}"
    if before is None:
        verb = "created"
    elif before["metadata"]["resourceVersion"] == meta["resourceVersion"]:
        verb = "unchanged"
    else:
        verb = "configured"
    click.echo(f"{output.object_ref(PLUGIN_MANIFEST, meta['name'])} {verb}: version {spec['version']}, "
               f"{annotations.get(DIGEST_ANNOTATION)}, {how}")
    click.echo(f"next: mfx wait --for=condition=Ready pm/{meta['name']} --timeout=60s")


@plugin_group.command("list")
@pass_cli
def list_cmd(ctx: CliContext) -> None:
    """List the installed packages (the daemon's plugin store) and which version each plugin uses.

    \b
    Example:
      mfx plugin list
    """
    client = ctx.client
    packages = client.request("GET", PACKAGES_PATH)["items"]
    if not packages:
        click.echo("No packages installed; install one with 'mfx plugin install FILE'.", err=True)
        return
    in_use = {o["metadata"]["name"]: o["spec"].get("version") for o in client.list(PLUGIN_MANIFEST)["items"]}
    rows = [[p["name"], p["version"], in_use.get(p["name"]) == p["version"], p.get("digest")] for p in packages]
    output.render_table(["NAME", "VERSION", "IN USE", "DIGEST"], rows)


# --- mfx trust -------------------------------------------------------------------------------------


@click.group("trust")
def trust_group() -> None:
    """Manage the public keys the daemon trusts to sign plugin packages.

    \b
    Examples:
      mfx trust add alice alice.pub
      mfx trust list
      mfx trust remove alice
    """


def _key_row(key: dict[str, Any]) -> list[Any]:
    return [key["metadata"]["name"], key.get("fingerprint")]


@trust_group.command("add")
@click.argument("name")
@click.argument("keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_cli
def trust_add(ctx: CliContext, name: str, keyfile: Path) -> None:
    """Trust the public key in KEYFILE (PEM, from 'mfx plugin keygen') under NAME.

    \b
    Example:
      mfx trust add alice alice.pub
    """
    pem = keyfile.read_bytes()
    if b"PRIVATE KEY-----" in pem:
        raise BadRequestError(
            f"{keyfile} holds a private key; give the public key (the PUBLIC file of "
            "'mfx plugin keygen') and keep the private one secret")
    key_fp = fingerprint(load_public_key(keyfile))
    key = ctx.client.request("POST", TRUSTED_KEYS_PATH, body={"name": name, "publicKeyPem": pem.decode()})
    click.echo(f'trusted key "{key["metadata"]["name"]}" added ({key.get("fingerprint", key_fp)})')


@trust_group.command("list")
@pass_cli
def trust_list(ctx: CliContext) -> None:
    """List the trusted keys with their fingerprints.

    \b
    Example:
      mfx trust list
    """
    items = ctx.client.request("GET", TRUSTED_KEYS_PATH)["items"]
    if not items:
        click.echo("No trusted keys; add one with 'mfx trust add NAME KEYFILE'.", err=True)
        return
    output.render_table(["NAME", "FINGERPRINT"], [_key_row(k) for k in items])


@trust_group.command("remove")
@click.argument("name")
@pass_cli
def trust_remove(ctx: CliContext, name: str) -> None:
    """Stop trusting the key NAME (installed plugins stay; new packages it signed are refused).

    \b
    Example:
      mfx trust remove alice
    """
    ctx.client.request("DELETE", f"{TRUSTED_KEYS_PATH}/{name}")
    click.echo(f'trusted key "{name}" removed')


# --- mfx rollback ----------------------------------------------------------------------------------


def _plugin_name(ref: str) -> str:
    kind_text, sep, name = ref.partition("/")
    if not sep:
        return ref
    if resolve_kind(kind_text) is not PLUGIN_MANIFEST:
        raise BadRequestError(f"rollback works on plugins (pm/NAME), not {kind_text}")
    return name


def previous_version(obj: dict[str, Any], installed: list[str]) -> tuple[str, str]:
    """The version before the current one, and where it was found: the newest entry of
    ``status.history`` that differs from ``spec.version`` and did not fail to start (result
    ``RolledBack``), else the newest installed version older than it."""
    current = obj["spec"]["version"]
    for entry in (obj.get("status") or {}).get("history") or []:
        if not isinstance(entry, dict) or entry.get("result") == "RolledBack":
            continue  # a version that failed to start is no place to go back to
        version = entry.get("version")
        if isinstance(version, str) and version != current:
            return version, "status.history"
    older = [v for v in installed if Version.parse(v) < Version.parse(current)]
    if older:
        return max(older, key=Version.parse), "the plugin store"
    name = obj["metadata"]["name"]
    raise NotFoundError(
        f"no version of {name} to go back to: status.history records none but {current}, and the "
        f"plugin store holds {', '.join(installed) or 'no version'} (none older than {current}); "
        f"install an older package ('mfx plugin install FILE') or name a version with --to VERSION")


@click.command("rollback")
@click.argument("ref", metavar="pm/NAME")
@click.option("--to", "to_version", metavar="VERSION", help="The version to go back to. Default: the previous one.")
@pass_cli
def rollback(ctx: CliContext, ref: str, to_version: str | None) -> None:
    """Put a plugin back on its previous version (sets spec.version).

    The previous version is the newest one in status.history (recorded by the controller)
    that is not the current one, else the newest installed package older than it.

    \b
    Examples:
      mfx rollback pm/local-music
      mfx rollback pm/local-music --to 1.2.0
    """
    client: Client = ctx.client
    name = _plugin_name(ref)
    obj = client.get(PLUGIN_MANIFEST, name)
    current = obj["spec"]["version"]
    packages = client.request("GET", PACKAGES_PATH, params={"name": name})["items"]
    installed = {p["version"]: p.get("digest") for p in packages}
    if to_version is None:
        target, where = previous_version(obj, list(installed))
    else:
        try:
            Version.parse(to_version)
        except ValueError as exc:
            raise BadRequestError(f"--to: {exc}") from None
        history = [e.get("version") for e in (obj.get("status") or {}).get("history") or [] if isinstance(e, dict)]
        if to_version == current:
            raise BadRequestError(f"{name} is at version {current} already")
        if to_version not in installed and to_version not in history:
            known = sorted({*installed, *(v for v in history if isinstance(v, str))} - {current})
            raise NotFoundError(
                f"version {to_version} of {name} is neither installed nor in status.history; known: "
                f"{', '.join(known) or 'none'}; install it first ('mfx plugin install FILE')")
        target, where = to_version, "--to"
    patch: dict[str, Any] = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                             "spec": {"version": target}}
    # The package annotations describe the package in use: the target's digest when the
    # plugin store holds it (none otherwise); who signed it is not known any more.
    annotations = obj["metadata"].get("annotations") or {}
    changes = {key: None for key in PACKAGE_ANNOTATIONS if key in annotations}
    if installed.get(target):
        changes[DIGEST_ANNOTATION] = installed[target]
    if changes:
        patch["metadata"]["annotations"] = changes
    # Say what runs (status.resolvedVersion), not spec.version: after a failed upgrade they differ.
    running = (obj.get("status") or {}).get("resolvedVersion")
    unrun = f" (spec.version was {current}, which does not run)" if running not in (None, current) else ""
    progress(f"rolling {name} back from {running or current} to {target} (from {where})")
    client.patch(PLUGIN_MANIFEST, name, patch)
    ref_text = output.object_ref(PLUGIN_MANIFEST, name)
    if running is None:
        click.echo(f"{ref_text} rolled back: {current} -> {target} (spec.version; no version of it runs now)")
    elif running == target:
        click.echo(f"{ref_text} rolled back to {target}, the version that runs now{unrun}")
    else:
        click.echo(f"{ref_text} rolled back: {running} -> {target}{unrun}")
    click.echo(f"next: mfx wait --for=condition=Ready pm/{name} --timeout=60s")


COMMANDS: tuple[click.Command, ...] = (plugin_group, trust_group, rollback)
