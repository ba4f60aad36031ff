"""The plugin author's local steps, which need no daemon: ``mfx plugin init``, ``keygen``, ``pack``, ``verify``.

Packaging and signing load cryptography, and validation jsonschema: each command imports
what it uses, so other mfx commands start without them. Progress lines go to stderr,
results to stdout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.api.schema import load_schemas
from mfx.cli import output
from mfx.cli.context import CliContext, pass_cli
from mfx.cli.scaffold_names import TYPES
from mfx.errors import BadRequestError, ValidationError
from mfx.home import default_home

if TYPE_CHECKING:
    from mfx.api.packaging import PackageInfo

# A source name ``mfx plugin verify --allow-unsigned`` judges unsigned packages by.
_LOCAL_CHECK = "verify --allow-unsigned"


@click.command("init")
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
    from mfx.api.packaging import MANIFEST
    from mfx.cli.scaffold import scaffold

    target, files = scaffold(name, type_, parent)
    for path in files:
        output.progress(f"  wrote {path}")
    click.echo(f"created {type_} plugin {name!r} in {target}")
    click.echo("next:")
    click.echo(f"  mfx serve --plugin-path {parent} &          # if the daemon is not running yet")
    click.echo(f"  mfx apply -f {target / MANIFEST}")
    click.echo(f"  mfx wait --for=condition=Ready pm/{name} --timeout=60s")


@click.command("keygen")
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
    from mfx.api.signing import generate_keypair

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
    from mfx.api.packaging import SKIPPED_NAMES

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


@click.command("pack")
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
    from mfx.api.packaging import MANIFEST, pack
    from mfx.api.signing import load_private_key
    from mfx.cli.manifests import Source, load_and_validate

    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BadRequestError(f"{directory} has no {MANIFEST}; create a plugin with 'mfx plugin init'")
    output.progress(f"validating {manifest_path}")
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
    output.progress(f"packing {directory}" + (f", signing with {key_path}" if key_path else " (unsigned)"))
    info = pack(directory, target, private_key=private)
    click.echo(f"packed {target} ({output.human_size(target.stat().st_size)})")
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


@click.command("verify")
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
    from mfx.api import validation
    from mfx.api.packaging import MANIFEST, verify
    from mfx.api.signing import Policy, TrustStore
    from mfx.cli.manifests import in_package

    trust_dir = trust_dir or (ctx.home or default_home()) / "trust"
    store = TrustStore(trust_dir)
    output.progress(f"verifying {file} against the trusted keys in {trust_dir}")
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
        raise in_package(error, file, MANIFEST) from None
    click.echo(f"  manifest:  PluginManifest {info.name} {info.version} ({info.type}) is valid")
    click.echo(f"verified {file}")
