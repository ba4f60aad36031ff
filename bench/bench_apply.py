"""``mfx apply -f DIR`` of 1000 manifest files against inserting the same rows straight into
SQLite, and against kubectl applying the same kind of directory to the same daemon, in one
run; and ``get`` of one object p50/p99 over the API.

Figures (each apply creates 1000 new objects, from its own directory of 1000 YAML files; the
mfx figures are the median of REPEATS applies after one warm-up apply, as the machine is
shared and a first apply also pays for the daemon's first-use compilations; each apply follows
a run of the SQLite baseline, so a machine that slows down or speeds up during the benchmark
moves both alike):
- ``mfx apply -f DIR`` in-process (the CLI's command with the daemon in the same process, as
  the earlier per-object figure was taken), against plain sqlite3 inserts, one transaction per
  row (the median of its runs, one before each apply, each into a new file), for reference:
  here the CLI reads the answer and prints while the daemon's controllers, in the same
  interpreter, work on what it applied;
- the same as a user runs it (a new ``mfx`` process, started as the installed script starts
  it, over the unix socket), against the same baseline; the requirement is baseline/value <= 3,
  i.e. a ratio >= 0.333 (interpreter start-up and imports included, on an interpreter
  without an editable-install import hook, see ``bench.installed``; with compiled bytecode
  cached, as an installed package has it, even where the environment sets
  PYTHONDONTWRITEBYTECODE: the cache lives in the run's temporary directory, filled by the
  warm-up process; timed from a launcher process, ``bench.launcher``, as is kubectl);
- that ``mfx apply`` process against ``kubectl apply --server-side -f DIR`` (one request per
  object, over TLS with the bearer token, discovery cache warm): the ratio is how many times
  faster mfx is (the requirement: >= 10);
- the per-object requests ``mfx apply`` falls back to against a daemon without the bulk path
  (pipelined), for reference;
- ``mfx apply`` (a new process) until the controllers have reconciled every object it
  created (each one's status written for its spec: the plugins are suspended, so none
  starts), against the apply alone: what a GitOps sync waits for before it is done.

The daemon runs as ``mfx serve`` runs it, controllers included, so the API answers while they
react to what was applied. After each apply (outside its timing) the controllers finish with
the objects it created, which are then deleted (and finalized) again: every measurement starts
from the same daemon, idle, holding none of the benchmark's objects, as each baseline run
inserts into a new file.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from bench.bench_cli import MFX_SCRIPT
from bench.common import Figure, median, percentile
from bench.daemon import is_reconciled, wait_gone, wait_until
from bench.installed import installed_python
from bench.launcher import run_timed
from mfx.api.kinds import PLUGIN_MANIFEST
from mfx.cli.client import Client, Endpoint
from mfx.cli.main import build_cli
from mfx.collector import YOUNG_COLLECTION_THRESHOLD
from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon

OBJECTS = 1000
REPEATS = 5
TARGET = "baseline/value <= 3 (ratio >= 0.333)"

MANIFEST = """\
apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata:
  name: {name}
  labels:
    bench: apply
spec:
  version: 1.0.0
  type: rpc
  entryPoint: python -m bench_plugin
  suspend: true
"""


def manifest(i: int) -> dict[str, object]:
    return {
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest",
        "metadata": {"name": f"bench-{i:04d}", "labels": {"bench": "apply"}},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m bench_plugin", "suspend": True},
    }


def raw_sqlite_inserts(path: Path) -> float:
    """The floor: the same JSON rows, one transaction per row (durable like an apply)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE objects (kind TEXT, name TEXT, body TEXT, PRIMARY KEY (kind, name))")
    started = time.perf_counter()
    for i in range(OBJECTS):
        with conn:
            conn.execute("INSERT INTO objects VALUES (?, ?, ?)", ("PluginManifest", f"bench-{i:04d}",
                                                                  json.dumps(manifest(i))))
    elapsed = time.perf_counter() - started
    conn.close()
    return OBJECTS / elapsed


def manifest_directory(root: Path, prefix: str) -> Path:
    directory = root / prefix
    directory.mkdir()
    for i in range(OBJECTS):
        (directory / f"{prefix}-{i:04d}.yaml").write_text(MANIFEST.format(name=f"{prefix}-{i:04d}"))
    return directory


def _rate(lines: str, started: float) -> float:
    elapsed = time.perf_counter() - started
    _check(lines)
    return OBJECTS / elapsed


def _check(lines: str) -> None:
    created = [line for line in lines.splitlines() if line.endswith(" created")]
    assert len(created) == OBJECTS, lines[-500:]


def run() -> list[Figure]:
    kubectl = shutil.which("kubectl")
    with tempfile.TemporaryDirectory(prefix="mfx-bench-apply-") as tmp:
        root = Path(tmp)
        python = installed_python(root)  # as an installed mfx starts: no editable-install hook
        raw_runs: list[float] = []

        def paired(apply: Callable[[Path], float], directory: Path) -> float:
            """``apply(directory)`` right after a run of the baseline: both taken at the same moment."""
            raw_runs.append(raw_sqlite_inserts(root / f"raw{len(raw_runs)}.db"))
            return apply(directory)

        home = root / "home"
        dirs = {name: manifest_directory(root, name) for name in ("warm", "warmprocess", "kubectl", "perobject")}
        inproc_dirs = [manifest_directory(root, f"inproc{i}") for i in range(REPEATS)]
        process_dirs = [manifest_directory(root, f"process{i}") for i in range(REPEATS)]
        with ThreadDaemon(home, services=default_services(), listen="127.0.0.1:0", freeze_startup_objects=True,
                          young_collection_threshold=YOUNG_COLLECTION_THRESHOLD).running() as daemon:
            runner = CliRunner()

            def reconciled(directory: Path, *, clear: bool = True) -> float:
                """When the controllers had reconciled every object of ``directory``'s apply;
                then (``clear``) those objects are deleted, and gone once the controllers let
                them go."""
                names = {f"{directory.name}-{i:04d}" for i in range(OBJECTS)}
                assert daemon.context is not None
                store = daemon.context.store
                done = float(daemon.call(wait_until, store, PLUGIN_MANIFEST.kind, names, is_reconciled))
                if clear:
                    with Client(Endpoint(socket=daemon.socket)) as client:
                        client.request("DELETE", PLUGIN_MANIFEST.resource_path, params={"labelSelector": "bench=apply"})
                    daemon.call(wait_gone, store, PLUGIN_MANIFEST.kind, names)
                return done

            def in_process_apply(directory: Path) -> float:
                started = time.perf_counter()
                done = runner.invoke(build_cli(), ["--home", str(home), "apply", "-f", str(directory)])
                rate = _rate(done.output, started)
                reconciled(directory)
                return rate

            env = {**os.environ, "MFX_HOME": str(home), "PYTHONPYCACHEPREFIX": str(root / "pycache")}
            env.pop("PYTHONDONTWRITEBYTECODE", None)

            applied_in: list[float] = []  # each new-process apply's own time
            reconciled_in: list[float] = []  # and from its start until all it created was reconciled

            def process_apply(directory: Path) -> float:
                # Timed by a launcher: see bench.launcher (this process hosts the daemon).
                done = run_timed([python, "-c", MFX_SCRIPT, "--home", str(home), "apply", "-f", str(directory)], env)
                _check(done.stdout)
                applied_in.append(done.seconds)
                reconciled_in.append(reconciled(directory) - done.started)
                return OBJECTS / done.seconds

            in_process_apply(dirs["warm"])
            in_process = median([paired(in_process_apply, d) for d in inproc_dirs])
            process_apply(dirs["warmprocess"])
            del applied_in[:], reconciled_in[:]
            new_process = median([paired(process_apply, d) for d in process_dirs])
            baseline = median(raw_runs)  # as noisy as the figures it is set against: the median of as many runs

            kubectl_rate = float("nan")
            if kubectl is not None:
                kubeconfig = root / "kubeconfig"
                made = runner.invoke(build_cli(), ["--home", str(home), "config", "kubeconfig",
                                                   "--output", str(kubeconfig)])
                assert made.exit_code == 0, made.output
                kube = [kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", str(root / "kube-cache")]
                subprocess.run([*kube, "api-resources"], capture_output=True, check=True)  # warm the caches
                applied = run_timed([*kube, "apply", "--server-side", "-f", str(dirs["kubectl"])])
                kubectl_rate = OBJECTS / applied.seconds
                assert applied.stdout.count("serverside-applied") == OBJECTS, applied.stdout[-500:]
                reconciled(dirs["kubectl"])

            from mfx.cli.apply_requests import pipelined
            from mfx.cli.manifests import load_objects

            client = Client(Endpoint(socket=daemon.socket))
            started = time.perf_counter()
            outcomes = list(pipelined(client, load_objects((str(dirs["perobject"]),), recursive=False),
                                      dry_run=False, force_conflicts=False))
            per_object = len(outcomes) / (time.perf_counter() - started)
            reconciled(dirs["perobject"], clear=False)

            samples = []
            for i in range(OBJECTS):
                begin = time.perf_counter()
                client.get(PLUGIN_MANIFEST, f"perobject-{i:04d}")
                samples.append((time.perf_counter() - begin) * 1000)
            client.close()
    return [
        Figure(f"mfx apply -f DIR of {OBJECTS} manifests, in-process", in_process, "objects/s",
               baseline_name="plain sqlite3 insert, one transaction per row", baseline=baseline,
               higher_is_better=True),
        Figure(f"mfx apply -f DIR of {OBJECTS} manifests, a new process", new_process, "objects/s",
               baseline_name="plain sqlite3 insert, one transaction per row", baseline=baseline,
               higher_is_better=True, target=TARGET),
        Figure(f"mfx apply -f DIR of {OBJECTS} manifests, a new process", new_process, "objects/s",
               baseline_name="kubectl apply --server-side -f DIR, same daemon (TLS + token)",
               baseline=kubectl_rate, higher_is_better=True, target="ratio >= 10"),
        Figure(f"per-object applies of {OBJECTS} manifests (the fallback, pipelined), in-process", per_object,
               "objects/s", baseline_name="plain sqlite3 insert, one transaction per row", baseline=baseline,
               higher_is_better=True),
        Figure(f"mfx apply -f DIR of {OBJECTS} manifests, a new process, until every object is reconciled",
               median(reconciled_in), "s", baseline_name="the apply alone (the same runs)",
               baseline=median(applied_in)),
        Figure("get one object over the API, p50", percentile(samples, 50), "ms"),
        Figure("get one object over the API, p99", percentile(samples, 99), "ms"),
    ]
