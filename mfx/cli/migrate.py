"""``mfx migrate``: import the settings of another player (go-musicfox) as mfx manifests.

It only reads and writes files, and asks the daemon for its local-music manifest when one answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

import mfx
from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.cli.context import CliContext, pass_cli
from mfx.errors import BadRequestError, DaemonUnavailableError, NotFoundError
from mfx.home import default_home

if TYPE_CHECKING:
    from mfx.music.migrate import ReportItem

# The first-party manifest beside the package in the source tree (what `make run` applies).
FIRST_PARTY_LOCAL_MUSIC = Path(mfx.__file__).resolve().parent.parent / "plugins" / "local-music" / "plugin.yaml"


@click.group()
def migrate() -> None:
    """Import the settings of another player as mfx manifests."""


@migrate.command("go-musicfox")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="go-musicfox.ini (default: the first found of $MUSICFOX_ROOT/, ~/.config/go-musicfox/, "
                   "~/.config/musicfox/, ~/.go-musicfox/).")
@click.option("--from", "base_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="The local-music PluginManifest to rewrite (default: the daemon's pm/local-music when a "
                   "daemon answers, else the first-party plugins/local-music/plugin.yaml).")
@click.option("-o", "--output-dir", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("mfx-migrated"), show_default=True,
              help="Where the manifests are written; `mfx apply -f` takes the folder as it is.")
@click.option("--player-config", "player_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The player.yaml the player settings are merged into (default: the daemon home's).")
@pass_cli
def migrate_go_musicfox_cmd(ctx: CliContext, config_path: Path | None, base_path: Path | None, out_dir: Path,
                            player_path: Path | None) -> None:
    """Turn a go-musicfox configuration into mfx desired state, and say what did not carry over.

    \b
    Rewrites the local-music PluginManifest (its dependencies, configSchema and other
    folders kept) with go-musicfox's download folder as a music folder; merges the play
    mode into the daemon's player.yaml (read when the daemon starts); then lists every
    setting, carried over or not, and why.
    \b
    Examples:
      mfx migrate go-musicfox
      mfx migrate go-musicfox --config ~/.config/go-musicfox/go-musicfox.ini -o manifests/migrated
      mfx apply -f manifests/migrated
    """
    # The music package is imported here: it loads the player's modules, which no other command needs.
    from mfx.music.migrate import config_candidates, find_config, migrate_go_musicfox

    path = config_path or find_config(config_candidates())
    base, label = _base_manifest(ctx, base_path)
    result = migrate_go_musicfox(path, base)
    click.echo(f"read {path}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, document in result.manifests().items():
        target = out_dir / name
        target.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
        folders = ", ".join(document["spec"]["config"]["folders"])
        click.echo(f"wrote {target}: pm/{document['metadata']['name']} rewritten from {label}; "
                   f"music folders: {folders}")
    for folder in result.left_out_folders:
        click.echo(f"left out music folder {folder} of {label}: it does not exist here")
    if result.player_config:
        target = player_path or (ctx.home or default_home()) / "player.yaml"
        _merge_player_config(target, result.player_config)
        settings = ", ".join(f"{k}: {v}" for k, v in result.player_config.items())
        click.echo(f"wrote {target}: {settings} (the daemon reads it when it starts: restart `mfx serve`)")
    _print_report("carried over", result.carried_over())
    _print_report("not carried over", result.not_carried_over())
    click.echo(f"next: mfx apply -f {out_dir}")


def _base_manifest(ctx: CliContext, given: Path | None) -> tuple[dict[str, Any], str]:
    """The local-music manifest to rewrite, and where it came from: the file given, else what
    the daemon runs (so folders added since are kept), else the first-party manifest."""
    if given is not None:
        return _load_manifest(given), str(given)
    try:
        return ctx.client.get(PLUGIN_MANIFEST, "local-music"), "the daemon's pm/local-music"
    except (DaemonUnavailableError, NotFoundError):
        pass
    if FIRST_PARTY_LOCAL_MUSIC.is_file():
        return _load_manifest(FIRST_PARTY_LOCAL_MUSIC), str(FIRST_PARTY_LOCAL_MUSIC)
    raise NotFoundError("no local-music PluginManifest to rewrite: no daemon has one and the first-party "
                        f"{FIRST_PARTY_LOCAL_MUSIC} is not here; pass --from PATH/plugin.yaml")


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadRequestError(f"{path}: cannot read the manifest: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequestError(f"{path}: expected one PluginManifest document")
    return document


def _merge_player_config(path: Path, settings: dict[str, Any]) -> None:
    """Merge ``settings`` into the player.yaml at ``path``, keeping its other settings; checked
    as the player checks it, so the daemon never starts on a file it refuses."""
    existing: Any = {}
    if path.exists():
        try:
            existing = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise BadRequestError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(existing, dict):
        raise BadRequestError(f"{path}: expected a mapping of player settings")
    # Imported here: the player module pulls in numpy and the audio path, which no other
    # command needs at start.
    from mfx.music.player import PlayerConfig

    merged = {**existing, **settings}
    PlayerConfig.from_mapping(merged, where=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _print_report(title: str, items: list[ReportItem]) -> None:
    click.echo(f"{title} ({len(items)}):")
    for item in items:
        click.echo(f"  [{item.section}] {item.key} = {item.value!r}: {item.note}")
