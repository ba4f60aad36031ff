"""``mfx ui``: where the daemon's web UI is, and opening it in a browser."""

from __future__ import annotations

import click

from mfx.cli.context import CliContext, pass_cli
from mfx.errors import NotFoundError


@click.command("ui")
@click.option("--open", "open_browser", is_flag=True, help="Also open the page in this machine's web browser.")
@pass_cli
def ui(ctx: CliContext, open_browser: bool) -> None:
    """Print the URL of the web UI of the running daemon ('mfx serve --ui-address').

    The web UI shows the plugin dependency graph live (states, the critical chain, each
    plugin's conditions, events and log), the player (now playing with lyrics, queue,
    search, controls), the audio sinks, health sparklines per plugin, and the panels and
    themes of UIExtension plugins. On a loopback address it needs no sign-in; on any other
    address it asks once for the API token (HOME/token).

    \b
    Examples:
      mfx serve --ui-address 127.0.0.1:8765 &
      mfx ui                 # http://127.0.0.1:8765/
      mfx ui --open          # and open it in the browser
    """
    from mfx.home import default_home

    home = ctx.home or default_home()
    path = home / "ui-address"
    if not path.exists():
        raise NotFoundError(f"no web UI is being served for {home}: start the daemon with "
                            "'mfx serve --ui-address 127.0.0.1:8765' (and check that it is running)")
    url = f"http://{path.read_text().strip()}/"
    click.echo(url)
    if open_browser:
        import webbrowser

        if not webbrowser.open(url):
            click.echo("no web browser found on this machine: open the URL above in one", err=True)
