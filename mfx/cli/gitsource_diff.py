"""What the next sync of a GitSource would change, computed by the CLI (``mfx diff gitsource/NAME``).

It reads the GitSource from the daemon, fetches the same ref into a temporary repository with
its own ``git`` (with the same credential files, which it must be able to read), renders the
desired objects exactly as the controller does (``controllers.gitsource_render``), and diffs
each against the live object through the daemon's server-side dry run, like ``mfx diff -f``.
That needs no new API and never touches the daemon's git cache; the price is one fetch per diff.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio

from mfx.api.apply import merged_for_apply
from mfx.api.kinds import kind_for, resolve_kind
from mfx.api.models import GitSourceSpec, parse_spec
from mfx.api.objects import GITSOURCE_OWNER_LABEL, Obj
from mfx.api.schema import load_schemas
from mfx.cli.client import Client
from mfx.cli.object_diff import diff_view, print_diff
from mfx.cli.refs import named_refs
from mfx.errors import BadRequestError, NotFoundError


def diff_gitsources(client: Client, resources: tuple[str, ...]) -> bool:
    """Print what the next sync of each GitSource would change; True if anything would."""
    changed = False
    schemas = load_schemas()
    for kind, name in named_refs(resources):
        if kind.kind != "GitSource":
            raise BadRequestError(f"mfx diff KIND/NAME works for gitsources; for {kind.plural} use mfx diff -f FILE")
        source = client.get(kind, name)
        spec = parse_spec(source)
        assert isinstance(spec, GitSourceSpec)
        with tempfile.TemporaryDirectory(prefix=f"mfx-diff-{name}-") as tmp:
            # Rendering fetches with git like the controller does: import it only for this command.
            from controllers.gitsource_render import render, repository

            rendered = anyio.run(render, repository(Path(tmp), spec), spec, name, schemas)
        wanted = set(rendered.keys())
        for obj in rendered.objects:
            okind = kind_for(obj["apiVersion"], obj["kind"])
            try:
                live: Obj | None = client.get(okind, obj["metadata"]["name"])
            except NotFoundError:
                live = None
            after = (client.create(obj, okind, dry_run=True) if live is None
                     else client.replace(merged_for_apply(live, obj), okind, dry_run=True))
            changed |= print_diff(okind, obj["metadata"]["name"], diff_view(live), diff_view(after),
                                  source="gitsource")
        if spec.prune:
            for entry in ((source.get("status") or {}).get("inventory") or {}).get("entries") or []:
                if (entry["kind"], entry["name"]) in {(k.kind, k.name) for k in wanted}:
                    continue
                okind = resolve_kind(entry["kind"])
                try:
                    live = client.get(okind, entry["name"])
                except NotFoundError:
                    continue
                if ((live["metadata"].get("labels") or {}).get(GITSOURCE_OWNER_LABEL)) == name:
                    changed |= print_diff(okind, entry["name"], diff_view(live), [], source="gitsource")
    return changed
