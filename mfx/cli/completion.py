"""Shell completion: ``mfx completion bash|zsh|fish``, and the kinds and names it completes.

Completion runs the real ``mfx`` with ``_MFX_COMPLETE`` set (click's machinery); the callbacks
here ask the daemon for the names of existing objects, so ``mfx get pm <TAB>`` offers the
plugins that are there now. A daemon that does not answer completes nothing, quietly.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem, get_completion_class

from mfx.api.kinds import PLUGIN_MANIFEST, USER_KINDS, KindInfo, resolve_kind
from mfx.cli.client import Client, Endpoint
from mfx.errors import MfxError

SHELLS = ("bash", "zsh", "fish")
PROGRAM = "mfx"
COMPLETE_VAR = "_MFX_COMPLETE"
# Completion blocks the shell: a daemon that is slow to answer must not hang the prompt.
LOOKUP_TIMEOUT_SECONDS = 3.0


def _client(ctx: click.Context) -> Client:
    """A client for the daemon the command line points at (--home, --server, --token or env)."""
    root = ctx.find_root().params
    return Client(Endpoint.from_env(root.get("home"), root.get("server"), root.get("token")),
                  timeout=LOOKUP_TIMEOUT_SECONDS)


def _names(ctx: click.Context, kind: KindInfo) -> list[str]:
    try:
        with _client(ctx) as client:
            items = client.list(kind)["items"]
    except MfxError:
        return []
    return [str(obj["metadata"]["name"]) for obj in items]


def _kind_words(*, with_all: bool) -> list[str]:
    words = [kind.plural for kind in USER_KINDS]
    return (["all"] if with_all else []) + words


def _kinds(incomplete: str, *, with_all: bool) -> list[CompletionItem]:
    matches = [w for w in _kind_words(with_all=with_all) if w.startswith(incomplete)]
    if not matches:  # "pm", "sink": let short and singular names complete to themselves
        short = [w for kind in USER_KINDS for w in (*kind.short_names, kind.singular)]
        matches = [w for w in short if w.startswith(incomplete)]
    return [CompletionItem(w) for w in matches]


def _kind_or_none(text: str) -> KindInfo | None:
    try:
        return resolve_kind(text)
    except MfxError:
        return None


def _slash_names(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """``KIND/NA<TAB>``: the names of that kind, each as ``KIND/NAME``."""
    kind_text, _, prefix = incomplete.partition("/")
    kind = _kind_or_none(kind_text)
    if kind is None:
        return []
    return [CompletionItem(f"{kind_text}/{name}") for name in _names(ctx, kind) if name.startswith(prefix)]


def _complete_refs(ctx: click.Context, incomplete: str, *, with_all: bool) -> list[CompletionItem]:
    typed = [str(word) for word in ctx.params.get("resources") or ()]
    if "/" in incomplete:
        return _slash_names(ctx, incomplete)
    if not typed:
        return _kinds(incomplete, with_all=with_all)
    if "," in typed[0] or "/" in typed[0]:
        return []  # several kinds, or KIND/NAME form: no bare names follow
    kind = _kind_or_none(typed[0])
    if kind is None:
        return []
    return [CompletionItem(name) for name in _names(ctx, kind)
            if name.startswith(incomplete) and name not in typed[1:]]


def complete_resources(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``KIND [NAME...]`` and ``KIND/NAME`` arguments (describe, delete, wait)."""
    return _complete_refs(ctx, incomplete, with_all=False)


def complete_get_resources(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """As ``complete_resources``, with ``all`` among the kinds (``mfx get all``)."""
    return _complete_refs(ctx, incomplete, with_all=True)


def complete_plugin(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``pm/NAME`` or a bare plugin name (``mfx logs``)."""
    if "/" in incomplete:
        return _slash_names(ctx, incomplete)
    return [CompletionItem(name) for name in _names(ctx, PLUGIN_MANIFEST) if name.startswith(incomplete)]


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
