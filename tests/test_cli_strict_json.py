"""What a user types as JSON on the command line is read as strictly as a request body:
a duplicate key is an error naming it, never one of the two values silently dropped."""

from __future__ import annotations

from pathlib import Path

from mfx.server.services import default_services
from tests.daemon_harness import REPO, ThreadDaemon, run_cli


def test_patch_and_call_refuse_duplicate_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ThreadDaemon(home, services=default_services(), plugin_paths=[REPO / "plugins"]).running():
        applied = run_cli(home, "apply", "-f", str(REPO / "plugins" / "hello-rpc" / "plugin.yaml"))
        assert applied.exit_code == 0, applied.output
        # The generation counts changes of the spec; the controller may write the status meanwhile.
        before = run_cli(home, "get", "pm", "hello-rpc", "-o", "jsonpath={.metadata.generation}").output

        patched = run_cli(home, "patch", "pm", "hello-rpc", "-p",
                          '{"spec":{"config":{"greeting":"Hi","greeting":"Bye"}}}')
        assert patched.exit_code == 1
        assert '--patch: spec.config.greeting: duplicate key "greeting"' in patched.output
        after = run_cli(home, "get", "pm", "hello-rpc", "-o", "jsonpath={.metadata.generation}").output
        assert after == before

        # kubectl takes YAML for -p as well.
        yaml_patch = run_cli(home, "patch", "pm", "hello-rpc", "-p", "spec: {config: {greeting: Hi}}")
        assert yaml_patch.exit_code == 0, yaml_patch.output
        assert run_cli(home, "get", "pm", "hello-rpc", "-o", "jsonpath={.spec.config.greeting}").output == "Hi"

        called = run_cli(home, "call", "pm/hello-rpc", "greet", '{"name": "Ada", "name": "Eve"}')
        assert called.exit_code == 1 and 'PARAMS: name: duplicate key "name"' in called.output
