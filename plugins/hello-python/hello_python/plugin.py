"""The plugin class named by the manifest's entry point.

Modules of the package import each other relatively (``from .words import ...``): the
runtime imports the package under a private name, not as ``hello_python``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfx.sdk.plugin import Plugin, PluginInfo

from .words import punctuate


class HelloPlugin(Plugin):
    info = PluginInfo(name="hello-python", version="0.1.0",
                      description="Greets by name.", interfaces=("Greeter",))

    def __init__(self) -> None:
        super().__init__()
        self._greeting = "Hello"
        self._greeted = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        super().initialize(config)
        self._greeting = str(config.get("greeting", "Hello"))

    def update_config(self, config: Mapping[str, Any]) -> None:
        self.initialize(config)

    def greet(self, name: str = "world") -> str:
        self._greeted += 1
        return punctuate(f"{self._greeting}, {name}")

    def greeted(self) -> int:
        return self._greeted
