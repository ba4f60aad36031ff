"""UIExtension plugins in the terminal player: which ones are live, and what each one asks for.

A Ready PluginManifest that lists ``UIExtension`` gets a panel. Its ``layout()``, ``keys()``
and ``themes()`` are asked again whenever its ``status.runtime.generation`` changes (a hot
reload swapped a new version in), so an edit shows within one watch event; its ``render``
is called at every player state change. A failed reload leaves Ready True with reason
``ReloadFailed``: the old version still answers, so the panel stays and the status line
says why the new one was refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from textual.theme import Theme

from mfx.api.ui_actions import panel_layout
from mfx.errors import MfxError
from mfx.tui.client import ApiClient
from mfx.tui.text import condition


@dataclass(frozen=True)
class Generation:
    """What identifies one loaded version of an extension: the object, its runtime's
    generation and the note of its last reload (the Ready message names the generation
    serving after a reload, also when ``status.runtime`` was written at start only)."""

    uid: str
    generation: int
    resource_generation: int
    reload_note: str = ""


@dataclass
class Extension:
    name: str
    version: Generation
    region: str = "bottom"
    rows: int = 1
    title: str = ""
    keys: list[str] = field(default_factory=list)
    themes: dict[str, Theme] = field(default_factory=dict)


def live_extensions(objects: Mapping[str, Mapping[str, Any]]) -> dict[str, Generation]:
    """The Ready UIExtensions by name, with the generation of the version running."""
    live = {}
    for name, obj in objects.items():
        spec = obj.get("spec") or {}
        if "UIExtension" not in (spec.get("interfaces") or []):
            continue
        ready = condition(obj, "Ready")
        if ready.get("status") != "True":
            continue
        runtime = (obj.get("status") or {}).get("runtime") or {}
        live[name] = Generation(uid=str(obj.get("metadata", {}).get("uid", "")),
                                generation=int(runtime.get("generation") or 0),
                                resource_generation=int(obj.get("metadata", {}).get("generation") or 0),
                                reload_note=str(ready.get("message", "")) if ready.get("reason") == "Reloaded" else "")
    return live


def reload_problems(objects: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``name -> why`` for every UIExtension whose last reload was refused."""
    problems = {}
    for name, obj in objects.items():
        ready = condition(obj, "Ready")
        if ready.get("reason") == "ReloadFailed":
            problems[name] = str(ready.get("message") or "")
    return problems


def textual_theme(name: str, palette: Mapping[str, Any]) -> Theme:
    """A Textual theme from a UIExtension palette (``primary`` required)."""
    colours: dict[str, Any] = {key: str(palette[key]) for key in ("secondary", "accent", "foreground", "background", "surface",
                                                  "panel", "success", "warning", "error") if palette.get(key)}
    if not palette.get("primary"):
        raise MfxError(f"theme {name!r} has no primary colour; a palette needs at least {{'primary': '#rrggbb'}}")
    return Theme(name=name, primary=str(palette["primary"]), dark=bool(palette.get("dark", True)), **colours)


async def describe(client: ApiClient, name: str, version: Generation) -> Extension:
    """Ask a UIExtension where its panel goes, the keys it binds and its themes."""
    place = panel_layout(await client.call_plugin(name, "layout"), name)
    keys = [str(key) for key in await client.call_plugin(name, "keys") or []]
    themes = {}
    for theme in await client.call_plugin(name, "themes") or []:
        palette = await client.call_plugin(name, "theme", theme)
        themes[str(theme)] = textual_theme(str(theme), palette or {})
    return Extension(name=name, version=version, region=place.region, rows=place.rows, title=place.title,
                     keys=keys, themes=themes)
