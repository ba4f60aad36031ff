"""`mfx get -o jsonpath=TEMPLATE` prints what `kubectl get -o jsonpath=TEMPLATE` prints, for the
same objects on the same daemon; templates are checked before anything is fetched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.server.jsonpath import render
from tests.daemon_harness import run_cli
from tests.test_apply import plugin_yaml
from tests.test_kubectl import PROBED_STATUS, KubeDaemon, start_kube_daemon

pytestmark = pytest.mark.integration

READY_STATUS = {"status": {"restartCount": 3, "conditions": [
    {"type": "Ready", "status": "True", "reason": "Running", "message": "0.1.0 running",
     "lastTransitionTime": "2026-01-01T00:00:00Z"},
    {"type": "Healthy", "status": "False", "reason": "ProbeFailed", "message": "<timeout> & retry",
     "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeDaemon]:
    kube = start_kube_daemon(tmp_path_factory.mktemp("jsonpath"))
    try:
        kube.ok("apply", "-f", "-", input=plugin_yaml("alpha", tier="core"))
        kube.ok("apply", "-f", "-", input=plugin_yaml("beta", tier="extra", version="2.0.0"))
        kube.ok("apply", "-f", "-", input=plugin_yaml("gamma", tier="extra", version="2.1.0"))
        kube.ok("patch", "pm", "alpha", "--subresource=status", "--type=merge", "-p", json.dumps(READY_STATUS))
        kube.ok("patch", "pm", "beta", "--subresource=status", "--type=merge", "-p", json.dumps(PROBED_STATUS))
        kube.ok("label", "pm", "alpha", "gamma", "app.kubernetes.io/part-of=mfx")
        yield kube
    finally:
        kube.daemon.stop()


LIST_TEMPLATES = [
    "{.items[*].metadata.name}",
    '{range .items[*]}{.metadata.name}{"\\n"}{end}',
    '{range .items[*]}{.metadata.name}{"\\t"}{.spec.version}{"\\t"}{.status.restartCount}{"\\n"}{end}',
    "names: {.items[*].metadata.name}!",
    '{.items[?(@.spec.version=="2.0.0")].metadata.name}',
    '{.items[?(@.metadata.labels.tier!="core")].metadata.name}',
    "{.items[?(@.status.restartCount>2)].metadata.name}",
    "{.items[?(@.status)].metadata.name}",
    "{.items[0].spec.interfaces}",
    "{.items[0].metadata.labels}",
    "{.items[0].status.conditions}",
    "{.items[-1:].metadata.name}",
    "{.items[0:2].metadata.name}",
    "{.items[0,2].metadata.name}",
    "{.items[*]['kind','apiVersion']}",
    "{.items[*].status.missing}",
    '{range .items[*]}[{.metadata.name}:{range .status.conditions[*]}{.type}={.status},{end}]{end}',
    "{.kind}",
    "{.items[*].metadata.labels.app\\.kubernetes\\.io/part-of}",
    '{range .items[?(@.metadata.labels.app\\.kubernetes\\.io/part-of=="mfx")]}{.metadata.name},{end}',
]
OBJECT_TEMPLATES = [
    "{.metadata.name}",
    '{.status.conditions[?(@.type=="Ready")].status}',
    '{.status.conditions[?(@.type=="Healthy")].message}',
    "{.spec.healthCheck}",
    "{.metadata.labels.tier} {.spec.type}",
    "{$.metadata.name}",
    "{@.spec.version}",
]


@pytest.mark.parametrize("template", LIST_TEMPLATES)
def test_list_templates_print_as_kubectl_prints_them(kube: KubeDaemon, template: str) -> None:
    expected = kube.ok("get", "pm", "-o", f"jsonpath={template}")
    result = run_cli(kube.home, "get", "pm", "-o", f"jsonpath={template}")
    assert result.exit_code == 0, result.output
    assert result.output == expected


@pytest.mark.parametrize("template", OBJECT_TEMPLATES)
def test_object_templates_print_as_kubectl_prints_them(kube: KubeDaemon, template: str) -> None:
    expected = kube.ok("get", "pm", "alpha", "-o", f"jsonpath={template}")
    result = run_cli(kube.home, "get", "pm", "alpha", "-o", f"jsonpath={template}")
    assert result.exit_code == 0, result.output
    assert result.output == expected


def test_a_template_that_does_not_parse_is_refused_before_any_request(tmp_path: Path) -> None:
    # No daemon at this home: the template is refused first.
    result = run_cli(tmp_path / "nobody", "get", "pm", "-o", "jsonpath={.items[*].metadata.name")
    assert result.exit_code == 2
    assert "unclosed action" in result.output
    assert "jsonpath needs a template" in run_cli(tmp_path / "nobody", "get", "pm", "-o", "jsonpath").output
    assert "jsonpath needs a template" in run_cli(tmp_path / "nobody", "get", "pm", "-o", "jsonpath=").output


def test_the_kubectl_spelling_with_an_equals_sign_works(kube: KubeDaemon) -> None:
    expected = kube.ok("get", "pm", "-o=jsonpath={.items[*].metadata.name}")
    assert run_cli(kube.home, "get", "pm", "-o=jsonpath={.items[*].metadata.name}").output == expected == "alpha beta gamma"
    assert run_cli(kube.home, "get", "pm", "-o=name").output == kube.ok("get", "pm", "-o=name")


def test_an_index_past_the_end_is_an_error_as_in_kubectl(kube: KubeDaemon) -> None:
    kubectl = kube.kubectl("get", "pm", "-o", "jsonpath={.items[7].metadata.name}")
    result = run_cli(kube.home, "get", "pm", "-o", "jsonpath={.items[7].metadata.name}")
    assert kubectl.returncode != 0 and result.exit_code == 1
    assert "array index out of bounds: index 7, length 3" in kubectl.stderr
    assert result.output == "error: array index out of bounds: index 7, length 3\n"


@pytest.mark.parametrize(("value", "printed"), [
    (0.5, "0.5"), (1e6 + 0.5, "1.0000005e+06"), (123456.5, "123456.5"), (0.0001, "0.0001"), (0.00001, "1e-05"),
    (True, "true"), (None, "<nil>"), ("<&>", "<&>"), ({"b": "<", "a": [1, 2.5]}, '{"a":[1,2.5],"b":"\\u003c"}'),
])
def test_values_print_as_go_prints_them(value: object, printed: str) -> None:
    assert render("{.v}", {"v": value}) == printed
