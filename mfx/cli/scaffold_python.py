"""The Python plugin templates: ``rpc`` (its own process, JSON-RPC), and the in-process
``dynamic_library`` and ``hot_reload`` (one class the daemon imports)."""

from __future__ import annotations

from dataclasses import dataclass

from mfx.cli.scaffold_common import manifest_yaml, readme
from mfx.cli.scaffold_names import VERSION, Names

# --- rpc -----------------------------------------------------------------------------------


def rpc(names: Names) -> dict[str, str]:
    package = names.package
    return {
        "plugin.yaml": manifest_yaml(
            names, type_="rpc", entry_point=f"python -m {package}",
            description="Greets by name; an out-of-process RPC plugin.",
            interfaces="Greeter",
            config="greeting: Hello\n",
            config_schema="type: object\nproperties:\n  greeting: {type: string, minLength: 1}\n"
                          "additionalProperties: false\n",
            limits="{memory: 256Mi, timeout: 5s, openFiles: 256, maxMessageSize: 1Mi}"),
        f"{package}/__init__.py": f'"""{names.plugin}: an mfx RPC plugin."""\n',
        f"{package}/plugin.py": f'''\
"""The plugin class: lifecycle methods for the daemon, public methods for callers.

Public methods (no leading underscore) are callable over JSON-RPC, e.g.
``greet("Ada")`` -> ``"Hello, Ada!"``. Logging goes to stderr, which the daemon forwards
into the plugin's log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mfx.sdk import Plugin, PluginInfo

log = logging.getLogger(__name__)


class {names.cls}(Plugin):
    info = PluginInfo(name="{names.plugin}", version="{VERSION}",
                      description="Greets by name.", interfaces=("Greeter",))

    def __init__(self) -> None:
        super().__init__()
        self._greeting = "Hello"
        self._started = False
        self._greeted = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        self.update_config(config)

    def update_config(self, config: Mapping[str, Any]) -> None:
        greeting = config.get("greeting", "Hello")
        if not isinstance(greeting, str) or not greeting:
            raise ValueError(f"config.greeting must be a non-empty string, got {{greeting!r}}")
        super().update_config(config)
        self._greeting = greeting

    def start(self) -> None:
        self._started = True
        log.info("{names.plugin} started")

    def health(self) -> dict[str, Any]:
        if not self._started:
            raise RuntimeError("not started yet")
        return {{"greeted": self._greeted}}

    def greet(self, name: str = "world") -> str:
        self._greeted += 1
        return f"{{self._greeting}}, {{name}}!"
''',
        f"{package}/__main__.py": f'''\
"""Entry point: ``python -m {package}`` (started by the mfx daemon, not by hand)."""

from mfx.sdk import serve
from {package}.plugin import {names.cls}

serve({names.cls}())
''',
        "README.md": readme(
            names, "rpc",
            f"An RPC plugin: the daemon starts `python -m {package}` as its own process (scrubbed "
            f"environment, resource limits) and talks JSON-RPC to it over a unix socket. The plugin "
            f"class is `{package}/plugin.py`."),
    }


@dataclass(frozen=True)
class InProcessClass:
    """What sets one in-process plugin class apart; ``in_process_module`` writes the rest."""

    docstring: str  # the module's, without the quotes
    base: str  # the mfx.sdk.music class it extends, also its one interface
    description: str
    setting: str  # the one config setting, kept as ``self._SETTING``
    setting_type: str  # float, int: how the setting is read
    default: str
    counter: str  # what ``health`` reports, counted as ``self._COUNTER``
    methods: str  # the type's own methods, after ``health``
    module_top: str = ""  # module-level code between the imports and the class


def in_process_module(names: Names, plugin: InProcessClass) -> str:
    """``plugin.py`` of an in-process plugin: its lifecycle methods, then the type's own."""
    top = f"\n{plugin.module_top}" if plugin.module_top else ""
    return f'''\
"""{plugin.docstring}"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfx.sdk.music import {plugin.base}
from mfx.sdk.plugin import PluginInfo
{top}

class {names.cls}({plugin.base}):
    info = PluginInfo(name="{names.plugin}", version="{VERSION}",
                      description="{plugin.description}", interfaces=("{plugin.base}",))

    def __init__(self) -> None:
        super().__init__()
        self._{plugin.setting} = {plugin.default}
        self._{plugin.counter} = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        super().initialize(config)
        self._{plugin.setting} = {plugin.setting_type}(config.get("{plugin.setting}", {plugin.default}))

    def update_config(self, config: Mapping[str, Any]) -> None:
        self.initialize(config)

    def health(self) -> dict[str, Any]:
        return {{"ok": True, "{plugin.counter}": self._{plugin.counter}}}
{plugin.methods}'''


# --- dynamic_library (a Python module) ----------------------------------------------------------

GAIN = InProcessClass(
    docstring="""An AudioProcessor that scales every sample by ``config.gain`` times the player's volume.

It runs inside the daemon (``type: dynamic_library``): keep ``process`` fast. Modules of
this package import each other relatively (``from .helpers import ...``): the daemon
imports the package under a private name.
""",
    base="AudioProcessor", description="Applies a gain.",
    setting="gain", setting_type="float", default="1.0", counter="blocks",
    methods='''
    def process(self, block: Any, sample_rate: int) -> Any:
        """float32 (frames, channels) in, the same shape out."""
        self._blocks += 1
        return block * (self._gain * self.volume)

    def gain(self) -> float:
        return self._gain
''')


def dynamic_library(names: Names) -> dict[str, str]:
    package = names.package
    return {
        "plugin.yaml": manifest_yaml(
            names, type_="dynamic_library", entry_point=f"python:{package}.plugin:{names.cls}",
            description="Applies a gain to the audio; an in-process Python plugin.",
            interfaces="AudioProcessor",
            config="gain: 1.0\n",
            config_schema="type: object\nproperties:\n  gain: {type: number, minimum: 0, maximum: 4}\n"
                          "additionalProperties: false\n",
            limits="{timeout: 1s, maxConcurrency: 8}"),
        f"{package}/__init__.py": f'"""{names.plugin}: an in-process mfx plugin."""\n',
        f"{package}/plugin.py": in_process_module(names, GAIN),
        "README.md": readme(
            names, "dynamic_library",
            f"An in-process plugin (`type: dynamic_library`, entry point "
            f"`python:{package}.plugin:{names.cls}`): the daemon imports `{package}/plugin.py` "
            "and calls it directly, with no isolation. Use it for trusted, fast code such as "
            "audio processing; use `rpc` or `webassembly` otherwise."),
    }


# --- hot_reload --------------------------------------------------------------------------------

STATUS_LINE = InProcessClass(
    docstring="""Renders the player state as one line. Edit ``render`` while the daemon runs: the new
version is loaded, checked and swapped in, keeping ``export_state()``; a broken edit leaves
the old version running.
""",
    base="UIExtension", description="One-line status view.",
    setting="width", setting_type="int", default="60", counter="rendered",
    module_top='_KEYS = {" ": "toggle", "n": "next", "p": "previous", "q": "quit"}\n',
    methods='''
    def render(self, state: Mapping[str, Any]) -> str:
        self._rendered += 1
        song = state.get("current") or {}
        line = f"{state.get('status', 'stopped')}: {song.get('title', 'nothing playing')}"
        return line[: self._width]

    def handle_input(self, key: str) -> str | None:
        return _KEYS.get(key)

    def export_state(self) -> Any:
        return {"rendered": self._rendered}

    def import_state(self, state: Any) -> None:
        if isinstance(state, dict):
            self._rendered = int(state.get("rendered", 0))
''')


def hot_reload(names: Names) -> dict[str, str]:
    package = names.package
    return {
        "plugin.yaml": manifest_yaml(
            names, type_="hot_reload", entry_point=f"python:{package}.plugin:{names.cls}",
            description="A one-line status view (UIExtension), reloaded when its source changes.",
            interfaces="UIExtension",
            config="width: 60\n",
            config_schema="type: object\nproperties:\n  width: {type: integer, minimum: 20, maximum: 400}\n"
                          "additionalProperties: false\n",
            limits="{timeout: 1s}",
            health="{interval: 10s, timeout: 1s, failureThreshold: 3}"),
        f"{package}/__init__.py": f'"""{names.plugin}: a hot-reloaded mfx UIExtension."""\n',
        f"{package}/plugin.py": in_process_module(names, STATUS_LINE),
        "README.md": readme(
            names, "hot_reload",
            f"A hot-reloaded plugin (`type: hot_reload`, entry point "
            f"`python:{package}.plugin:{names.cls}`): a `UIExtension` that renders the "
            "player's state as one line.",
            edit=f"\nWhile it runs, edit `render` in `{package}/plugin.py` and save: the daemon "
                 "loads the new version, checks it and swaps it in (`mfx events --for "
                 f"pm/{names.plugin}` shows the reload); a broken edit keeps the old one.\n"),
    }
