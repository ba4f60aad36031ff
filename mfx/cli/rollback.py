"""``mfx rollback``: put a plugin back on the version it ran before (sets spec.version)."""

from __future__ import annotations

from typing import Any

import click

from mfx.api.kinds import PLUGIN_MANIFEST, resolve_kind
from mfx.api.semver import Version
from mfx.cli import output
from mfx.cli.api_paths import PACKAGES_PATH
from mfx.cli.client import Client
from mfx.cli.context import CliContext, pass_cli
from mfx.errors import BadRequestError, NotFoundError


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
    from mfx.api.packaging import DIGEST_ANNOTATION, PACKAGE_ANNOTATIONS

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
    output.progress(f"rolling {name} back from {running or current} to {target} (from {where})")
    client.patch(PLUGIN_MANIFEST, name, patch)
    ref_text = output.object_ref(PLUGIN_MANIFEST, name)
    if running is None:
        click.echo(f"{ref_text} rolled back: {current} -> {target} (spec.version; no version of it runs now)")
    elif running == target:
        click.echo(f"{ref_text} rolled back to {target}, the version that runs now{unrun}")
    else:
        click.echo(f"{ref_text} rolled back: {running} -> {target}{unrun}")
    click.echo(f"next: mfx wait --for=condition=Ready pm/{name} --timeout=60s")
