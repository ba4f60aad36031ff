"""A WebAssembly plugin stuck in a host call is not reused: through the real daemon, the
call that hangs gets DeadlineExceeded at the plugin's timeout, the controller hears that
the instance is gone and restarts the plugin on a fresh one, which serves again."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.plugin_fixtures import condition, wait_for
from tests.test_wasm_call_deadlines import fifo_in
from tests.test_wasm_runtime import FS_PROBE, write_module

NAME = "fifo-reader"


def manifest(shared: Path) -> str:
    return yaml.safe_dump({
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
        "metadata": {"name": NAME},
        "spec": {
            "version": "1.0.0", "type": "webassembly", "entryPoint": f"{NAME}.wasm",
            "resources": {"limits": {"timeout": "100ms", "memory": "1Mi"}},
            "security": {"allowedPaths": [{"path": str(shared)}]},
            "restartPolicy": {"backoff": {"initial": "100ms", "max": "1s"}},
        },
    })


def test_a_plugin_stuck_in_a_host_call_is_restarted_not_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plugins = tmp_path / "plugins"
    write_module(plugins / NAME, NAME, FS_PROBE)
    with fifo_in(tmp_path / "shared") as fifo, ThreadDaemon(
            home, services=default_services(), plugin_paths=[plugins]).running() as daemon:
        applied = run_cli(home, "apply", "-f", "-", input=manifest(fifo.parent))
        assert applied.exit_code == 0, applied.output
        ready = run_cli(home, "wait", "--for=condition=Ready", f"pm/{NAME}", "--timeout=60s")
        assert ready.exit_code == 0, ready.output

        stuck = run_cli(home, "call", f"pm/{NAME}", "read", json.dumps(fifo.name))
        assert stuck.exit_code == 1
        assert "blocked outside WebAssembly" in stuck.output, stuck.output

        restarted = wait_for(home, NAME, lambda o: o is not None
                             and o["status"].get("restartCount", 0) >= 1
                             and condition(o, "Ready").get("status") == "True")
        assert restarted is not None
        (fifo.parent / "song.txt").write_text("fine")
        answer = run_cli(home, "call", f"pm/{NAME}", "read", '"song.txt"')
        assert answer.exit_code == 0, answer.output
        assert json.loads(answer.output) == {"errno": 0, "content": "fine"}
        assert daemon.context is not None
        assert daemon.context.metrics.registry.get_sample_value(
            "mfx_plugin_restarts_total", {"name": NAME}) is not None
