"""``mfx get --show-labels`` and ``--sort-by``, as kubectl users type them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import ThreadDaemon, run_cli
from tests.test_get_watch import watch
from tests.test_kubectl import LineReader

PLUGIN = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata:
  name: {name}
  {labels}
spec:
  version: {version}
  type: rpc
  entryPoint: python -m hello
  suspend: true
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with ThreadDaemon(tmp_path / "home").running() as daemon:
        manifests = "---\n".join([
            PLUGIN.format(name="alpha", labels="labels: {tier: core, app: player}", version="1.10.0"),
            PLUGIN.format(name="beta", labels="", version="1.2.0"),
            PLUGIN.format(name="gamma", labels="labels: {tier: audio}", version="0.9.0"),
        ])
        assert run_cli(daemon.config.home, "apply", "-f", "-", input=manifests).exit_code == 0
        yield daemon.config.home


def column(output: str, header: str) -> dict[str, str]:
    """Each row's text under ``header`` (the last column: the rest of the line), by NAME."""
    lines = output.splitlines()
    start = lines[0].index(header)
    return {line.split()[0]: line[start:].strip() for line in lines[1:]}


def test_show_labels_adds_a_labels_column(home: Path) -> None:
    result = run_cli(home, "get", "pm", "--show-labels")
    assert result.exit_code == 0
    assert result.output.splitlines()[0].split()[-1] == "LABELS"
    assert column(result.output, "LABELS") == {"alpha": "app=player,tier=core", "beta": "<none>",
                                               "gamma": "tier=audio"}
    wide = run_cli(home, "get", "pm", "-o", "wide", "--show-labels").output
    assert wide.splitlines()[0].split()[-2:] == ["HEALTHY", "LABELS"]


def test_sort_by_a_field_of_the_objects(home: Path) -> None:
    by_version = run_cli(home, "get", "pm", "--sort-by=.spec.version")
    assert [line.split()[0] for line in by_version.output.splitlines()[1:]] == ["gamma", "alpha", "beta"]
    by_tier = run_cli(home, "get", "pm", "--sort-by", "{.metadata.labels.tier}", "-o", "name")
    assert by_tier.output.splitlines() == ["pluginmanifest.mfx.musicfox.io/beta",  # none: first
                                           "pluginmanifest.mfx.musicfox.io/gamma",
                                           "pluginmanifest.mfx.musicfox.io/alpha"]
    assert run_cli(home, "patch", "pm", "beta", "-p", '{"spec":{"version":"1.2.1"}}').exit_code == 0  # generation 2
    generations = run_cli(home, "get", "pm", "--sort-by=.metadata.generation", "-o", "jsonpath={.items[*].metadata.name}")
    assert generations.output.split() == ["alpha", "gamma", "beta"]


def test_a_sort_by_that_does_not_parse_is_refused_before_any_request(home: Path) -> None:
    result = run_cli(home, "get", "pm", "--sort-by=.spec[")
    assert result.exit_code == 2
    assert "error parsing jsonpath .spec[" in result.output
    watched = run_cli(home, "get", "pm", "-w", "--sort-by=.spec.version")
    assert watched.exit_code == 2 and "drop one" in watched.output


def test_a_watch_with_labels_prints_a_row_when_they_change(home: Path) -> None:
    process = watch(home, "get", "pm", "gamma", "-w", "--show-labels")
    try:
        reader = LineReader(process)
        reader.until("tier=audio")
        assert run_cli(home, "label", "pm", "gamma", "tier=edge", "--overwrite").exit_code == 0
        assert reader.until("gamma")[-1].endswith("tier=edge")
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_custom_columns(home: Path) -> None:
    result = run_cli(home, "get", "pm", "-o", "custom-columns=NAME:.metadata.name,TIER:.metadata.labels.tier,V:{.spec.version}",
                     "--sort-by=.metadata.name")
    assert result.exit_code == 0
    assert [line.split() for line in result.output.splitlines()] == [
        ["NAME", "TIER", "V"], ["alpha", "core", "1.10.0"], ["beta", "<none>", "1.2.0"], ["gamma", "audio", "0.9.0"]]
    lines = result.output.splitlines()
    assert lines[1].index("core") == lines[0].index("TIER")  # lined up
    several = run_cli(home, "get", "pm", "alpha", "-o", "custom-columns=KEYS:.metadata.labels.*")
    assert several.output.splitlines()[1] in ("player,core", "core,player")
    nothing = run_cli(home, "get", "pm", "-l", "tier=none", "-o", "custom-columns=NAME:.metadata.name")
    assert nothing.exit_code == 0 and "No resources found." in nothing.output and "NAME" not in nothing.output


@pytest.mark.parametrize(("spec", "message"), [
    ("NAME", "expected HEADER:JSONPATH, got 'NAME'"),
    ("NAME:.a,", "expected HEADER:JSONPATH, got ''"),
    ("N:.spec[", "column N: error parsing jsonpath .spec["),
])
def test_custom_columns_that_do_not_parse_are_refused(home: Path, spec: str, message: str) -> None:
    result = run_cli(home, "get", "pm", "-o", f"custom-columns={spec}")
    assert result.exit_code == 2 and message in result.output


def test_a_watch_with_custom_columns_prints_a_row_per_change(home: Path) -> None:
    process = watch(home, "get", "pm", "gamma", "-w", "-o", "custom-columns=NAME:.metadata.name,TIER:.metadata.labels.tier")
    try:
        reader = LineReader(process)
        header, row = reader.until("audio")
        assert header.split() == ["NAME", "TIER"] and row.split() == ["gamma", "audio"]
        assert run_cli(home, "label", "pm", "gamma", "tier=edge", "--overwrite").exit_code == 0
        changed = reader.until("edge")[-1]
        assert changed.split() == ["gamma", "edge"] and changed.index("edge") == header.index("TIER")
    finally:
        process.terminate()
        process.communicate(timeout=10)
