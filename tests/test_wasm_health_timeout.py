"""A WebAssembly plugin's health check ends at ``healthCheck.timeout``, through the real
daemon: a guest spinning in its health export fails the start's check at that timeout, with
the field to change named, not at the (much longer) call timeout."""

from __future__ import annotations

from pathlib import Path

from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon
from tests.plugin_fixtures import apply, condition, wait_for
from tests.test_wasm_call_deadlines import HEALTH_SPINNER
from tests.test_wasm_runtime import write_module

NAME = "spinner"


def test_a_health_check_spinning_in_the_guest_fails_at_the_health_timeout(tmp_path: Path) -> None:
    home, plugins = tmp_path / "home", tmp_path / "plugins"
    write_module(plugins / NAME, NAME, HEALTH_SPINNER)
    with ThreadDaemon(home, services=default_services(), plugin_paths=[plugins]).running():
        apply(home, {
            "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": NAME},
            "spec": {"version": "1.0.0", "type": "webassembly", "entryPoint": f"{NAME}.wasm",
                     "resources": {"limits": {"timeout": "60s", "memory": "1Mi"}},
                     "healthCheck": {"interval": "1h", "timeout": "200ms"}},
        })
        failed = wait_for(home, NAME, lambda o: o is not None
                          and condition(o, "Healthy").get("message", "").startswith("start of"))
        assert failed is not None
        assert condition(failed, "Healthy")["message"] == (
            "start of 1.0.0 failed: spinner.health exceeded its deadline of 0.2s (spec.healthCheck.timeout) "
            "and was interrupted")
        assert condition(failed, "Ready")["status"] == "False"
