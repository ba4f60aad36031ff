"""The ``mfx`` command: kubectl's verbs for the mfx kinds, plus the player and plugin tools."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from mfx.cli.client import Client, Endpoint
from mfx.errors import MfxError, ValidationError


@dataclass
class CliContext:
    home: Path | None
    server: str | None
    token: str | None
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(Endpoint.from_env(self.home, self.server, self.token))
        return self._client


class MfxGroup(click.Group):
    """Turns every mfx error into one clear line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ValidationError as error:
            for item in error.errors:
                click.echo(f"error: {item}", err=True)
            sys.exit(1)
        except MfxError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in registration order: the kubectl verbs first


@click.group(cls=MfxGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", type=click.Path(path_type=Path), envvar="MFX_HOME",
              help="Daemon home (socket, state). Default: $MFX_HOME or ~/.local/state/mfx.")
@click.option("--server", envvar="MFX_SERVER",
              help="Talk to a daemon's TCP listener instead of the socket: HOST:PORT or https://HOST:PORT "
                   "for its --listen (HTTPS, verified against HOME/tls/ca.crt), http://HOST:PORT for its "
                   "--listen-http.")
@click.option("--token", envvar="MFX_TOKEN", help="Bearer token for --server (default: read HOME/token).")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, server: str | None, token: str | None) -> None:
    """mfx: a declarative control plane for a plugin-based music player.

    \b
    Start the daemon, then manage it the way you use kubectl:
      mfx serve &
      mfx apply -f manifests/
      mfx wait --for=condition=Ready pm --all --timeout=60s
      mfx get all
      mfx describe pm local-music
    """
    ctx.obj = CliContext(home=home, server=server, token=token)
    ctx.call_on_close(lambda: ctx.obj._client.close() if ctx.obj._client else None)


def build_cli() -> click.Group:
    """The ``mfx`` group with every command added (idempotent), in the order --help lists them."""
    from mfx.cli import commands, gitops, observe, player_cmds, plugin_ops, plugin_tools
    from mfx.cli.demo import demo
    from mfx.cli.kubeconfig import config_group
    from mfx.cli.serve import serve

    sections: tuple[tuple[click.Command, ...], ...] = (
        commands.KUBECTL_VERBS,
        plugin_ops.COMMANDS + gitops.COMMANDS + (observe.top,),
        player_cmds.COMMANDS,  # its `resume` also resumes suspended objects (mfx resume pm/NAME)
        plugin_tools.COMMANDS + (config_group, serve, demo),
    )
    for section in sections:
        for command in section:
            cli.add_command(command)
    return cli


def main() -> None:
    build_cli()(prog_name="mfx")

