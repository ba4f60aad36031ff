"""``mfx completion bash|zsh|fish``: the script a shell sources to complete ``mfx``.

The kinds and names it completes come from ``mfx.cli.completers``.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
PROGRAM = "mfx"
COMPLETE_VAR = "_MFX_COMPLETE"


def completion_script(shell: str, cli: click.Command) -> str:
    """The script a shell sources to complete ``mfx``."""
    shell_class = get_completion_class(shell)
    if shell_class is None:
        raise click.BadParameter(f"{shell}: expected one of {', '.join(SHELLS)}")
    return shell_class(cli, {}, PROGRAM, COMPLETE_VAR).source()


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    Kinds complete (mfx get <TAB>), and so do the names of the objects the daemon has
    (mfx get pm <TAB>, mfx describe pm/<TAB>, mfx logs <TAB>).

    \b
    Examples:
      source <(mfx completion bash)                      # this bash session
      mfx completion bash > ~/.local/share/bash-completion/completions/mfx
      mfx completion zsh > "${fpath[1]}/_mfx"            # zsh: then restart the shell
      mfx completion fish > ~/.config/fish/completions/mfx.fish
    """
    click.echo(completion_script(shell, ctx.find_root().command), nl=False)
