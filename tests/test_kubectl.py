"""The real kubectl against the daemon's TCP listener, with the kubeconfig `mfx config kubeconfig`
writes: discovery, apply (client- and server-side), get with printer columns, watch, wait,
describe with events, explain from OpenAPI v3, Status errors (401, 404, 409, 415, 422)."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import Result

from tests.daemon_harness import REPO, SubprocessDaemon, run_cli
from tests.test_apply import plugin_yaml

pytestmark = pytest.mark.integration

KUBECTL = shutil.which("kubectl")
if KUBECTL is None:
    pytest.skip("no kubectl binary on PATH (make system installs one)", allow_module_level=True)

PROBED_STATUS = {"status": {"conditions": [{"type": "Probed", "status": "True", "reason": "WrittenByTest",
                                            "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}


@dataclass
class KubeDaemon:
    """A daemon listening on TCP, and a kubeconfig for it written by ``mfx config kubeconfig``."""

    home: Path
    kubeconfig: Path
    cache: Path
    daemon: SubprocessDaemon

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        return subprocess.run([KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache), *args],
                              input=input, capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: str, input: str | None = None) -> str:
        done = self.kubectl(*args, input=input)
        assert done.returncode == 0, f"kubectl {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
        return done.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        assert KUBECTL is not None
        return subprocess.Popen([KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def mfx(self, *args: str) -> Result:
        """The real ``mfx`` command, in-process (its own start-up is not what these tests measure)."""
        return run_cli(self.home, *args)


def start_kube_daemon(root: Path) -> KubeDaemon:
    home = root / "home"
    # Port 0: the daemon binds a free port and records it in HOME/listen-address.
    daemon = SubprocessDaemon(home, "--listen", "127.0.0.1:0", "--plugin-path", str(REPO / "plugins")).start()
    kube = KubeDaemon(home=home, kubeconfig=root / "kubeconfig", cache=root / "kube-cache", daemon=daemon)
    written = kube.mfx("config", "kubeconfig", "--output", str(kube.kubeconfig))
    assert written.exit_code == 0, written.output
    return kube


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeDaemon]:
    kube = start_kube_daemon(tmp_path_factory.mktemp("kubectl"))
    try:
        yield kube
    finally:
        kube.daemon.stop()


class LineReader:
    """Lines of a process's stdout, read by a thread (select() on a buffered pipe misses lines
    already in the buffer)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, wanted: str | Callable[[list[str]], bool], timeout: float = 15) -> list[str]:
        """The lines up to the first that contains ``wanted`` (or whose words satisfy it)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            if wanted(line.split()) if callable(wanted) else wanted in line:
                return seen
        raise AssertionError(f"{wanted!r} never appeared; saw {seen}")


def test_kubeconfig_points_at_the_tls_listener_with_the_token(kube: KubeDaemon) -> None:
    config = yaml.safe_load(kube.kubeconfig.read_text())
    assert config["current-context"] == "mfx"
    cluster = config["clusters"][0]["cluster"]
    address = (kube.home / "listen-address").read_text().strip()
    assert cluster["server"] == f"https://{address}"
    assert cluster["certificate-authority-data"]
    assert config["users"][0]["user"]["token"] == (kube.home / "token").read_text().strip()
    assert kube.kubeconfig.stat().st_mode & 0o077 == 0


def test_api_resources_and_discovery(kube: KubeDaemon) -> None:
    rows = {line.split()[0]: line for line in kube.ok("api-resources").splitlines()[1:]}
    assert {"pluginmanifests", "audiosinks", "gitsources", "events"} <= set(rows)
    assert "pm,plugin,plugins" in rows["pluginmanifests"] and "PluginManifest" in rows["pluginmanifests"]
    assert "false" in rows["pluginmanifests"].split() and "ev" in rows["events"].split()
    assert set(kube.ok("api-versions").split()) == {"mfx.musicfox.io/v1alpha1", "v1"}
    group = json.loads(kube.ok("get", "--raw", "/apis/mfx.musicfox.io"))
    assert group["preferredVersion"]["version"] == "v1alpha1"
    assert json.loads(kube.ok("get", "--raw", "/version"))["gitVersion"].startswith("v")


def test_apply_creates_then_patches_with_a_merge_patch(kube: KubeDaemon, tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "a.yaml").write_text(plugin_yaml("apply-a"))
    (folder / "b.yaml").write_text(plugin_yaml("apply-b"))
    out = kube.ok("apply", "-f", str(folder))
    assert "pluginmanifest.mfx.musicfox.io/apply-a created" in out and "apply-b created" in out

    (folder / "a.yaml").write_text(plugin_yaml("apply-a", version="1.1.0", tier="edge"))
    verbose = kube.kubectl("apply", "-f", str(folder), "-v=8")
    assert verbose.returncode == 0, verbose.stderr
    assert "apply-a configured" in verbose.stdout and "apply-b unchanged" in verbose.stdout
    # kubectl 1.32 learned from /openapi/v3 that the server validates fields and takes merge patches.
    assert "PATCH https://" in verbose.stderr and "fieldValidation=Strict" in verbose.stderr
    assert "Content-Type: application/merge-patch+json" in verbose.stderr

    obj = yaml.safe_load(kube.ok("get", "pm", "apply-a", "-o", "yaml"))
    assert obj["spec"]["version"] == "1.1.0" and obj["metadata"]["labels"] == {"tier": "edge"}
    assert obj["metadata"]["generation"] == 2
    last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["version"] == "1.1.0"
    assert "apply-a unchanged" in kube.ok("apply", "-f", str(folder))
    dry = kube.ok("apply", "-f", str(folder), "--dry-run=server")
    assert "apply-a unchanged (server dry run)" in dry

    # delete -f waits until the controller's finalizer lets the objects go.
    deleted = kube.ok("delete", "-f", str(folder))
    assert 'pluginmanifest.mfx.musicfox.io "apply-a" deleted' in deleted and '"apply-b" deleted' in deleted
    assert kube.kubectl("get", "pm", "apply-a").returncode == 1


def test_get_prints_the_crd_printer_columns(kube: KubeDaemon) -> None:
    kube.ok("apply", "-f", "-", input=plugin_yaml("columns"))
    table = kube.ok("get", "pm", "columns").splitlines()
    assert table[0].split() == ["NAME", "VERSION", "TYPE", "READY", "REASON", "DESIRED", "NODES-READY", "UP-TO-DATE",
                                "AGE"]
    # VERSION is the version that runs; kubectl leaves it empty while none does.
    assert table[1].split()[:2] == ["columns", "rpc"]
    wide = kube.ok("get", "pluginmanifests", "columns", "-o", "wide").splitlines()[0].split()
    assert "DEPENDENCIES" in wide and "RESTARTS" in wide
    assert kube.ok("get", "pm", "-l", "tier=core", "-o", "name").count("pluginmanifest.mfx.musicfox.io/") >= 1


def test_get_pages_through_a_long_list(kube: KubeDaemon) -> None:
    kube.ok("apply", "-f", "-", input="---\n".join(plugin_yaml(f"page-{i}", tier="paged") for i in range(7)))
    verbose = kube.kubectl("get", "pm", "-l", "tier=paged", "--chunk-size=3", "-o", "name", "-v=6")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout.split() == [f"pluginmanifest.mfx.musicfox.io/page-{i}" for i in range(7)]
    assert verbose.stderr.count("continue=") == 2


def test_an_invalid_object_is_refused_with_the_field_path(kube: KubeDaemon) -> None:
    bad = plugin_yaml("invalid", version="one") + "  bogus: 1\n"
    done = kube.kubectl("apply", "-f", "-", input=bad)
    assert done.returncode == 1
    assert 'The PluginManifest "invalid" is invalid' in done.stderr
    assert "spec.version" in done.stderr and "not a semantic version" in done.stderr
    assert "spec.bogus" in done.stderr and 'unknown field "bogus"' in done.stderr
    assert kube.kubectl("get", "pm", "invalid").returncode == 1


def test_a_stale_replace_is_a_conflict(kube: KubeDaemon, tmp_path: Path) -> None:
    kube.ok("apply", "-f", "-", input=plugin_yaml("stale"))
    snapshot = tmp_path / "stale.yaml"
    snapshot.write_text(kube.ok("get", "pm", "stale", "-o", "yaml"))
    kube.ok("patch", "pm", "stale", "--type=merge", "-p", '{"spec":{"version":"1.0.1"}}')
    snapshot.write_text(snapshot.read_text().replace("version: 1.0.0", "version: 1.0.2"))
    done = kube.kubectl("replace", "-f", str(snapshot))
    assert done.returncode == 1
    assert "Conflict" in done.stderr and "the object has been modified" in done.stderr
    assert kube.ok("get", "pm", "stale", "-o", "jsonpath={.spec.version}") == "1.0.1"
    again = kube.kubectl("create", "-f", str(snapshot))
    assert again.returncode == 1 and "AlreadyExists" in again.stderr


def test_patch_types(kube: KubeDaemon) -> None:
    kube.ok("apply", "-f", "-", input=plugin_yaml("patched"))
    kube.ok("patch", "pm", "patched", "--type=json", "-p", '[{"op":"replace","path":"/spec/version","value":"3.0.0"}]')
    assert kube.ok("get", "pm", "patched", "-o", "jsonpath={.spec.version}") == "3.0.0"
    kube.ok("label", "pm", "patched", "color=blue")
    assert "patched" in kube.ok("get", "pm", "-l", "color=blue", "-o", "name")
    strategic = kube.kubectl("patch", "pm", "patched", "-p", '{"spec":{"version":"3.1.0"}}')
    assert strategic.returncode == 1
    assert "strategic merge patch is not supported" in strategic.stderr and "--type=merge" in strategic.stderr


def test_server_side_apply_tracks_managers_and_conflicts(kube: KubeDaemon) -> None:
    first = kube.kubectl("apply", "--server-side", "-f", "-", input=plugin_yaml("ssa"))
    assert first.returncode == 0 and "serverside-applied" in first.stdout, first.stderr
    obj = json.loads(kube.ok("get", "pm", "ssa", "-o", "json", "--show-managed-fields"))
    entry = obj["metadata"]["managedFields"][0]
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply"
    assert "f:version" in entry["fieldsV1"]["f:spec"]

    other = "\n".join(line for line in plugin_yaml("ssa", version="2.0.0").splitlines() if "interfaces" not in line)
    conflict = kube.kubectl("apply", "--server-side", "--field-manager=ops", "-f", "-", input=other)
    assert conflict.returncode == 1 and "conflict" in conflict.stderr.lower() and "spec.version" in conflict.stderr
    kube.ok("apply", "--server-side", "--field-manager=ops", "--force-conflicts", "-f", "-", input=other)
    assert kube.ok("get", "pm", "ssa", "-o", "jsonpath={.spec.version}") == "2.0.0"

    # A field the manager stops applying, and no other manager applies, is removed. (The
    # version agrees with ops' now: co-owned, no conflict.)
    kube.ok("apply", "--server-side", "-f", "-", input=other)
    assert kube.ok("get", "pm", "ssa", "-o", "jsonpath={.spec.interfaces}") == ""


def test_wait_and_watch_see_the_controller_make_a_plugin_ready(kube: KubeDaemon) -> None:
    # Watching every PluginManifest before the plugin exists: its rows come from watch events.
    watch = kube.popen("get", "pm", "--watch")
    rows = LineReader(watch)
    wait = None
    try:
        kube.ok("apply", "-f", str(REPO / "plugins" / "hello-rpc" / "plugin.yaml"))
        wait = kube.popen("wait", "--for=condition=Ready", "pm/hello-rpc", "--timeout=30s")
        # kubectl prints the header with the first row it has: at once when other tests left
        # plugins, with the first event when there were none.
        lines = rows.until("hello-rpc")
        assert [line.split()[:4] for line in lines if line.startswith("NAME")] == [["NAME", "VERSION", "TYPE", "READY"]]
        assert lines[-1].split()[:2] == ["hello-rpc", "rpc"]  # nothing runs yet
        # The daemon's plugin controller starts it and writes Ready=True into its status.
        row = rows.until(lambda words: words[:1] == ["hello-rpc"] and "True" in words)[-1].split()
        assert row[:5] == ["hello-rpc", "0.1.0", "rpc", "True", "Running"]
        out, err = wait.communicate(timeout=30)
        assert wait.returncode == 0, err
        assert "pluginmanifest.mfx.musicfox.io/hello-rpc condition met" in out
    finally:
        for process in (watch, wait):
            if process is not None and process.poll() is None:
                process.terminate()
                process.communicate(timeout=10)
    # What the controller reported is on the object's events, as describe shows them (the
    # recorder writes them beside the status, so give it a moment).
    deadline = time.monotonic() + 15
    while "Ready=True: 0.1.0 running" not in (events := kube.ok("describe", "pm", "hello-rpc").split("Events:")[1]):
        assert time.monotonic() < deadline, events
        threading.Event().wait(0.2)
    assert "pluginmanifest-controller" in events


def test_a_status_written_through_the_subresource_reaches_watch_and_wait(kube: KubeDaemon) -> None:
    kube.ok("apply", "-f", "-", input=plugin_yaml("probed"))
    wait = kube.popen("wait", "--for=condition=Probed", "pm/probed", "--timeout=30s")
    try:
        # What an external controller does (the daemon's own writes other conditions).
        kube.ok("patch", "pm", "probed", "--subresource=status", "--type=merge", "-p", json.dumps(PROBED_STATUS))
        out, err = wait.communicate(timeout=30)
        assert wait.returncode == 0, err
    finally:
        if wait.poll() is None:
            wait.terminate()
            wait.communicate(timeout=10)


def test_describe_lists_the_objects_events(kube: KubeDaemon) -> None:
    kube.ok("apply", "-f", "-", input=plugin_yaml("described"))
    uid = kube.ok("get", "pm", "described", "-o", "jsonpath={.metadata.uid}")
    event = {
        "apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "described."},
        "involvedObject": {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
                           "name": "described", "uid": uid},
        "type": "Normal", "reason": "Started", "message": "plugin started in 12ms",
        "source": {"component": "pluginmanifest-controller"},
    }
    kube.ok("create", "-f", "-", input=json.dumps(event))
    kube.ok("create", "-f", "-", input=json.dumps(event))  # a repeat counts up
    described = kube.ok("describe", "pm", "described")
    assert "Name:         described" in described and "Version:       1.0.0" in described
    events = described.split("Events:")[1]
    assert "Started" in events and "pluginmanifest-controller" in events and "(x2 over" in events
    listed = kube.ok("get", "events", "--field-selector", "involvedObject.name=described")
    assert "pluginmanifest/described" in listed and "plugin started in 12ms" in listed
    assert "default" in kube.ok("get", "events", "-A", "--field-selector", "involvedObject.name=described")
    assert "No resources found" in kube.kubectl("get", "events", "-n", "elsewhere").stderr


def test_explain_reads_the_crd_schema_from_openapi_v3(kube: KubeDaemon) -> None:
    spec = kube.ok("explain", "pm.spec")
    assert "KIND:       PluginManifest" in spec and "FIELD: spec <Object>" in spec
    assert "healthCheck\t<Object>" in spec and "version\t<string> -required-" in spec
    assert "ENUM:\n    dynamic_library\n    rpc\n" in kube.ok("explain", "pluginmanifests.spec.type")
    assert "metadata\t<ObjectMeta>" in kube.ok("explain", "pm", "--recursive")
    labels = kube.ok("explain", "pm.metadata.labels")
    assert "map[string]string" in labels
    assert "FIELDS:" in kube.ok("explain", "audiosinks")
    missing = kube.kubectl("explain", "pm.spec.nope")
    assert missing.returncode == 1 and "nope" in missing.stderr


def test_delete_and_not_found(kube: KubeDaemon) -> None:
    kube.ok("apply", "-f", "-", input=plugin_yaml("doomed"))
    assert 'pluginmanifest.mfx.musicfox.io "doomed" deleted' in kube.ok("delete", "pm", "doomed")
    gone = kube.kubectl("get", "pm", "doomed")
    assert gone.returncode == 1 and 'Error from server (NotFound): pluginmanifests "doomed" not found' in gone.stderr
    assert kube.kubectl("delete", "pm", "doomed").returncode == 1


def test_requests_without_the_token_are_refused(kube: KubeDaemon, tmp_path: Path) -> None:
    config = yaml.safe_load(kube.kubeconfig.read_text())
    config["users"][0]["user"]["token"] = "wrong"
    wrong = tmp_path / "wrong"
    wrong.write_text(yaml.safe_dump(config))
    assert KUBECTL is not None
    base = [KUBECTL, "--kubeconfig", str(wrong), "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run([*base, "get", "pm"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "You must be logged in to the server" in done.stderr
    raw = subprocess.run([*base, "get", "--raw", "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"],
                         capture_output=True, text=True, timeout=30)
    assert raw.returncode == 1 and "a valid bearer token is required" in raw.stderr
    # mfx's own CLI still talks over the unix socket, without a token.
    assert kube.mfx("get", "pm").exit_code == 0
