"""hello-rpc: an example RPC plugin for mfx (a greeter)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mfx.sdk import Plugin, PluginInfo

log = logging.getLogger(__name__)


class HelloPlugin(Plugin):
    info = PluginInfo(
        name="hello-rpc",
        version="0.1.0",
        description="Greets by name",
        interfaces=("Greeter",),
    )

    def __init__(self) -> None:
        super().__init__()
        self.greeting = "Hello"
        self.started = False
        self.greeted = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        self.update_config(config)

    def update_config(self, config: Mapping[str, Any]) -> None:
        greeting = config.get("greeting", "Hello")
        if not isinstance(greeting, str) or not greeting:
            raise ValueError(f"config.greeting must be a non-empty string, got {greeting!r}")
        super().update_config(config)
        self.greeting = greeting
        log.info("greeting set to %r", greeting)

    def start(self) -> None:
        self.started = True

    def health(self) -> dict[str, Any]:
        if not self.started:
            raise RuntimeError("not started yet: the daemon calls start() after initialize()")
        return {"greeted": self.greeted}

    def greet(self, name: str) -> str:
        self.greeted += 1
        return f"{self.greeting}, {name}!"

    def echo(self, value: Any) -> Any:
        return value

    def export_state(self) -> Any:
        return {"greeted": self.greeted}

    def import_state(self, state: Any) -> None:
        if isinstance(state, dict):
            self.greeted = int(state.get("greeted", 0))
