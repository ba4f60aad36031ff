"""A daemon's log records about a plugin reach that daemon's plugin logs only: two daemons in
one process keep their plugins' logs apart, code outside every daemon reaches none, and the
handler is gone from the loggers once the daemon ends."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from mfx.server.plugin_log_routing import PLUGIN_RECORD_LOGGERS, plugin_records_routed_to
from mfx.server.services import default_services
from mfx.store.plugin_logs import PluginLogStore
from tests.daemon_harness import REPO, ThreadDaemon

log = logging.getLogger("mfx.test.plugin-log-routing")


def messages(store: PluginLogStore, plugin: str) -> list[str]:
    return [r["message"] for r in store.read(plugin)]


def test_each_daemon_gets_only_the_records_logged_inside_it(tmp_path: Path) -> None:
    first, second = PluginLogStore(tmp_path / "first"), PluginLogStore(tmp_path / "second")
    before = {name: list(logging.getLogger(name).handlers) for name in PLUGIN_RECORD_LOGGERS}
    both_attached = threading.Barrier(3)
    both_logged = threading.Barrier(3)

    def daemon(store: PluginLogStore, message: str) -> None:
        with plugin_records_routed_to(store):
            both_attached.wait(10)
            log.warning(message, extra={"plugin": "hello"})
            both_logged.wait(10)

    threads = [threading.Thread(target=daemon, args=(first, "from the first")),
               threading.Thread(target=daemon, args=(second, "from the second"))]
    for thread in threads:
        thread.start()
    both_attached.wait(10)
    log.warning("from outside every daemon", extra={"plugin": "hello"})
    both_logged.wait(10)
    for thread in threads:
        thread.join(10)

    assert messages(first, "hello") == ["from the first"]
    assert messages(second, "hello") == ["from the second"]
    assert {name: list(logging.getLogger(name).handlers) for name in PLUGIN_RECORD_LOGGERS} == before


def manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m hello_rpc"}}


def test_two_real_daemons_keep_their_plugins_logs_apart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mfx")  # the controller says "starting" at info
    plugins = [REPO / "plugins"]
    with ThreadDaemon(tmp_path / "a", services=default_services(), plugin_paths=plugins).running() as a, \
            ThreadDaemon(tmp_path / "b", services=default_services(), plugin_paths=plugins).running() as b:
        assert a.context is not None and b.context is not None
        a.call(a.context.store.create, manifest("hello-rpc"))
        log_store = a.context.log_store

        async def first_controller_record() -> None:
            with anyio.fail_after(60):  # "the controller said nothing about the plugin"
                async for record in log_store.follow("hello-rpc"):
                    if record["stream"] == "controller":
                        return

        a.call(first_controller_record)
        assert b.context.log_store.read("hello-rpc") == []
