"""The committed Grafana dashboards are what the generator builds, round-trip through the
SDK's models, and every panel has the Prometheus datasource variable and PromQL that parses
and names only catalogued metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from observability import dashboards_generate

REPO = Path(__file__).resolve().parents[1]
DASHBOARD_DIR = REPO / "observability" / "dashboards"
CATALOG = REPO / "observability" / "METRICS.md"


def committed() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel.get("type") != "row"]


def concrete(expr: str) -> str:
    """A panel's PromQL as Grafana sends it for one choice of the variables."""
    return (expr.replace("$__rate_interval", "1m").replace("$plugin", "hello-rpc").replace("$sink", "speakers"))


def test_the_committed_json_is_what_the_generator_builds(tmp_path: Path) -> None:
    assert committed() == dashboards_generate.build_all(), (
        "observability/dashboards is stale: run python -m observability.dashboards_generate")
    assert dashboards_generate.main(["--check"]) == 0
    (tmp_path / "mfx-overview.json").write_text("{}")
    assert dashboards_generate.main(["--check", "--output", str(tmp_path)]) == 1


def test_each_dashboard_round_trips_through_the_sdk_models() -> None:
    for name, data in committed().items():
        model = Dashboard.from_json(data)
        again = json.loads(json.dumps(model, cls=JSONEncoder))
        assert again == data, f"{name} changes when read back by the SDK"


def test_every_panel_uses_the_datasource_variable_and_has_promql() -> None:
    for name, data in committed().items():
        variables = {v["name"]: v for v in data["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert panels(data), name
        for panel in panels(data):
            where = f"{name}: {panel.get('title')}"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["expr"].strip(), where
                assert target["datasource"]["uid"] == "${datasource}", where


def test_the_drill_down_and_audio_dashboards_have_their_variables() -> None:
    dashboards = committed()
    plugin_vars = {v["name"]: v for v in dashboards["mfx-plugin.json"]["templating"]["list"]}
    assert plugin_vars["plugin"]["query"] == "label_values(mfx_plugin_info, name)"
    assert all("$plugin" in t["expr"] for p in panels(dashboards["mfx-plugin.json"]) for t in p["targets"])
    sink_vars = {v["name"]: v for v in dashboards["mfx-audio.json"]["templating"]["list"]}
    assert sink_vars["sink"]["query"] == "label_values(mfx_audio_sink_info, sink)"


def test_queries_name_only_catalogued_metrics() -> None:
    known = set(re.findall(r"^\|\s*`(mfx_[a-z0-9_]+)`", CATALOG.read_text(), flags=re.M))
    for name, data in committed().items():
        for panel in panels(data):
            for target in panel["targets"]:
                for metric in re.findall(r"\bmfx_[a-z0-9_]+", target["expr"]):
                    base = re.sub(r"_(bucket|count|sum)$", "", metric)
                    assert metric in known or base in known, f"{name}: {panel['title']}: unknown {metric}"


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is missing: install the Debian package prometheus (make system)")
    # promtool has no bare PromQL parser in 2.42; recording rules are parsed the same way.
    rules = []
    for name, data in committed().items():
        for index, panel in enumerate(panels(data)):
            for target in panel["targets"]:
                rules.append({"record": f"mfx:dashboard_{Path(name).stem.replace('-', '_')}:{index}_{target['refId']}",
                              "expr": concrete(target["expr"])})
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
