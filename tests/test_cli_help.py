"""Every kubectl verb of mfx answers --help with usage examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfx.cli.main import KUBECTL_VERBS
from tests.daemon_harness import run_cli


@pytest.mark.parametrize("command", [c.name for c in KUBECTL_VERBS])
def test_help_shows_examples(command: str, tmp_path: Path) -> None:
    result = run_cli(tmp_path, command, "--help")
    assert result.exit_code == 0
    examples = result.output.split("Examples:")[1].split("Options:")[0]
    assert f"mfx {command}" in examples
