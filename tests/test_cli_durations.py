"""Every duration option refuses a bad value as a usage error naming the option (exit 2),
before anything is started or asked of the daemon; never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon_harness import run_cli


@pytest.mark.parametrize(("args", "option"), [
    (("serve", "--resync", "soon"), "--resync"),
    (("serve", "--resync", "0s"), "--resync"),
    (("serve", "--store", "etcd://127.0.0.1:1", "--etcd-compaction-interval", "often"),
     "--etcd-compaction-interval"),
    (("top", "--interval", "abc"), "--interval"),
    (("top", "--interval", "0"), "--interval"),
    (("logs", "pm/x", "--since", "yesterday"), "--since"),
    (("wait", "pm/x", "--for", "condition=Ready", "--timeout", "1x"), "--timeout"),
    (("delete", "pm", "x", "--timeout", "-"), "--timeout"),
    (("reconcile", "gitsource/x", "--timeout", "forever"), "--timeout"),
])
def test_a_bad_duration_is_a_usage_error_naming_the_option(tmp_path: Path, args: tuple[str, ...],
                                                           option: str) -> None:
    result = run_cli(tmp_path / "home", *args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "home" / "mfx.sock").exists()  # nothing was started
