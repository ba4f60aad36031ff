"""`kubectl get pm` against the daemon with 1000 PluginManifests, beside `mfx get pm` on the
same daemon, in one run.

Figures (median wall time of REPEATS runs each, discovery cache warm for kubectl):
- ``kubectl get pm`` over TLS with the bearer token (two ``limit=500`` Table pages), against
  ``mfx get pm`` as a user runs it (a new process, over the unix socket);
- the same ``mfx get pm`` in-process (no interpreter start-up or imports), to show how much of
  the difference is the CLI's start-up;
- the HTTP part alone: the two Table pages kubectl asks for, fetched with httpx over TLS, against
  the same pages as plain JSON lists (what the Table rendering costs the server).

The objects are suspended plugins (the controller settles them once, then leaves them alone);
the benchmark waits until every one has been reconciled before measuring.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from click.testing import CliRunner

from bench.bench_cli import MFX_SCRIPT
from bench.common import Figure, median
from bench.installed import installed_python
from mfx.cli.main import build_cli

OBJECTS = 1000
REPEATS = 10
BASE = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"


def plugin(i: int) -> dict[str, object]:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
            "metadata": {"name": f"bench-{i:04d}", "labels": {"bench": "kubectl"}},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m bench_plugin", "suspend": True}}


def _wait(predicate: Callable[[], bool], what: str, daemon: subprocess.Popen[bytes], log: Path,
          timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if daemon.poll() is not None:
            raise RuntimeError(f"mfx serve exited with {daemon.returncode}:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _timed_runs(fn: Callable[[], None]) -> float:
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return median(samples) * 1000


def run() -> list[Figure]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("no kubectl binary on PATH (make system installs one)")
    with tempfile.TemporaryDirectory(prefix="mfx-bench-kubectl-") as tmp:
        root = Path(tmp)
        home = root / "home"
        env = {**os.environ, "MFX_HOME": str(home)}
        mfx = [installed_python(root), "-c", MFX_SCRIPT, "--home", str(home)]  # as installed: no editable hook
        log = root / "daemon.log"
        with log.open("wb") as output:
            daemon = subprocess.Popen([*mfx, "serve", "--listen", "127.0.0.1:0"], env=env,
                                      stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait(lambda: (home / "listen-address").exists() and (home / "mfx.sock").exists(), "the daemon", daemon, log)
            local = httpx.Client(transport=httpx.HTTPTransport(uds=str(home / "mfx.sock")), base_url="http://mfx",
                                 timeout=30)
            _wait(lambda: local.get("/readyz").status_code == 200, "the daemon to be ready", daemon, log)
            for i in range(OBJECTS):
                local.post(BASE, json=plugin(i)).raise_for_status()

            def settled() -> bool:
                items = local.get(BASE).json()["items"]
                return all((o.get("status") or {}).get("observedGeneration") == 1 for o in items)

            _wait(settled, "the controller to reconcile every object once", daemon, log)

            kubeconfig = root / "kubeconfig"
            result = CliRunner().invoke(build_cli(), ["--home", str(home), "config", "kubeconfig",
                                                      "--output", str(kubeconfig)])
            assert result.exit_code == 0, result.output
            kube = [kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", str(root / "kube-cache")]

            def kubectl_get() -> None:
                done = subprocess.run([*kube, "get", "pm"], capture_output=True, text=True, check=True)
                assert done.stdout.count("\n") == OBJECTS + 1, done.stdout[-300:]

            def mfx_get() -> None:
                done = subprocess.run([*mfx, "get", "pm"], capture_output=True, text=True, check=True, env=env)
                assert done.stdout.count("\n") == OBJECTS + 1, done.stdout[-300:]

            runner = CliRunner()

            def mfx_get_in_process() -> None:
                done = runner.invoke(build_cli(), ["--home", str(home), "get", "pm"])
                assert done.exit_code == 0 and done.output.count("\n") == OBJECTS + 1, done.output[-300:]

            kubectl_get()  # warm the discovery and OpenAPI caches, as a user's second run has them
            kubectl_ms = _timed_runs(kubectl_get)
            mfx_ms = _timed_runs(mfx_get)
            mfx_get_in_process()
            in_process_ms = _timed_runs(mfx_get_in_process)

            address = (home / "listen-address").read_text().strip()
            token = (home / "token").read_text().strip()
            remote = httpx.Client(base_url=f"https://{address}", verify=ssl.create_default_context(cafile=str(home / "tls" / "ca.crt")), timeout=30,
                                  headers={"Authorization": f"Bearer {token}"})

            def pages(accept: str) -> None:
                params: dict[str, str] = {"limit": "500"}
                while True:
                    page = remote.get(BASE, params=params, headers={"Accept": accept}).json()
                    token_ = page["metadata"].get("continue")
                    if not token_:
                        return
                    params["continue"] = token_

            pages(TABLE)
            table_ms = _timed_runs(lambda: pages(TABLE))
            list_ms = _timed_runs(lambda: pages("application/json"))
            remote.close()
            local.close()
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    return [
        Figure(f"kubectl get pm ({OBJECTS} objects, TLS + token)", kubectl_ms, "ms",
               baseline_name="mfx get pm, new process, unix socket", baseline=mfx_ms),
        Figure(f"mfx get pm in-process ({OBJECTS} objects)", in_process_ms, "ms",
               baseline_name="mfx get pm, new process", baseline=mfx_ms),
        Figure("the two limit=500 Table pages kubectl fetches (httpx, TLS)", table_ms, "ms",
               baseline_name="the same pages as plain JSON lists", baseline=list_ms),
    ]
