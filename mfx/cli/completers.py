"""Shell completion of kinds and object names, for the arguments of the object verbs.

Completion runs the real ``mfx`` with ``_MFX_COMPLETE`` set (click's machinery); these callbacks
ask the daemon for the names of existing objects, so ``mfx get pm <TAB>`` offers the plugins
that are there now. A daemon that does not answer completes nothing, quietly.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

from mfx.api.kinds import PLUGIN_MANIFEST, USER_KINDS, KindInfo, resolve_kind
from mfx.cli.client import Client, Endpoint
from mfx.errors import MfxError

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
