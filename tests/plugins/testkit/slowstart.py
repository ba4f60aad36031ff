"""A Python-module plugin with a configurable slow start and health switch, for tests.

Entry point ``python:testkit.slowstart:SlowStartPlugin`` with ``plugin_dir`` =
``tests/plugins`` (``type: dynamic_library`` or ``hot_reload``).

Config (all optional):

- ``name`` (str, default ``"slowstart"``): written into every record.
- ``startDelay`` (seconds, default 0): ``start()`` sleeps this long (async, so the event loop
  stays free and the sleep is cancellable, like a real plugin waiting for I/O).
- ``crashOnStart`` (bool): ``start()`` raises ``RuntimeError`` after the delay.
- ``crashWhileExists`` (path): ``start()`` raises while that file exists.
- ``stopWhileExists`` (path): ``stop()`` waits while that file exists (async, like startDelay).
- ``rejectConfig`` (bool): ``update_config`` refuses a config that sets it (the old one stays).
- ``failHealth`` (bool): ``health()`` raises ``RuntimeError``; ``update_config`` can flip it.
- ``recordFile`` (path): JSON lines appended on each lifecycle step,
  ``{"event": "start_begin" | "start_end" | "stop", "name": ..., "t": time.monotonic()}``
  (``start_end`` is not written when the start crashes). ``time.monotonic`` is system-wide
  on Linux, so records of plugins in other processes compare too.

Service method: ``ping(value=None)`` returns ``{"pong": value, "name": name}``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

import anyio

from mfx.sdk.plugin import Plugin, PluginInfo


class SlowStartPlugin(Plugin):
    info = PluginInfo(name="slowstart", version="1.0.0", description="test plugin",
                      interfaces=("TestKit",))

    def initialize(self, config: Mapping[str, Any]) -> None:
        super().initialize(config)

    def update_config(self, config: Mapping[str, Any]) -> None:
        if config.get("rejectConfig"):
            raise ValueError("rejectConfig is set: this config is refused")
        super().update_config(config)

    @property
    def _name(self) -> str:
        return str(self.config.get("name", "slowstart"))

    def _record(self, event: str) -> None:
        path = self.config.get("recordFile")
        if not path:
            return
        line = json.dumps({"event": event, "name": self._name, "t": time.monotonic()})
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")

    async def start(self) -> None:
        self._record("start_begin")
        delay = float(self.config.get("startDelay", 0) or 0)
        if delay > 0:
            await anyio.sleep(delay)
        marker = self.config.get("crashWhileExists")
        if marker and os.path.exists(str(marker)):  # noqa: ASYNC240 - a test plugin; one stat
            raise RuntimeError(f"{self._name}: {marker} exists (crashWhileExists)")
        if self.config.get("crashOnStart"):
            raise RuntimeError(f"{self._name}: crashOnStart is set")
        self._record("start_end")

    def health(self) -> Any:
        if self.config.get("failHealth"):
            raise RuntimeError(f"{self._name}: failHealth is set")
        return {"ok": True}

    async def stop(self) -> None:
        marker = self.config.get("stopWhileExists")
        # Another process removes the file: there is no event to wait on, so it is polled.
        while marker and os.path.exists(str(marker)):  # noqa: ASYNC110, ASYNC240
            await anyio.sleep(0.02)
        self._record("stop")

    def ping(self, value: Any = None) -> dict[str, Any]:
        return {"pong": value, "name": self._name}
