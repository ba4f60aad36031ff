"""An in-process C plugin's periodic health probes, through a real daemon: they run in rounds
(the quick path), and a library that turns unhealthy is seen and restarted from there."""

from __future__ import annotations

import os
import select
import subprocess
import threading
from pathlib import Path

from mfx.server.services import default_services
from tests.daemon_harness import REPO, ThreadDaemon
from tests.plugin_fixtures import apply as apply_objects
from tests.plugin_fixtures import condition, plugin_events, wait_for, wait_ready

SOURCE = """\
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "mfx_plugin.h"
static int instance;
MFX_EXPORT const char *mfx_plugin_info(void) { return "{\\"name\\": \\"sick\\", \\"version\\": \\"1.0.0\\", \\"abi\\": 1}"; }
MFX_EXPORT int mfx_plugin_abi_version(void) { return MFX_PLUGIN_ABI_VERSION; }
MFX_EXPORT void *mfx_plugin_init(const char *c, char *e, size_t n) { (void)c; (void)e; (void)n; return &instance; }
MFX_EXPORT int mfx_plugin_configure(void *h, const char *c, char *e, size_t n) { (void)h; (void)c; (void)e; (void)n; return MFX_OK; }
MFX_EXPORT int mfx_plugin_process(void *h, float *f, size_t n, int c, int r) { (void)h; (void)f; (void)n; (void)c; (void)r; return MFX_OK; }
/* Tells the test's pipe (if it still reads) the calling thread; does not return while the
   hang file exists; unhealthy while the marker file exists. */
MFX_EXPORT int mfx_plugin_health(void *h) {
    int fd = open(THREADS, O_WRONLY | O_NONBLOCK);
    (void)h;
    if (fd >= 0) {
        char line[32];
        int n = snprintf(line, sizeof line, "%ld\\n", (long)syscall(SYS_gettid));
        ssize_t written = write(fd, line, (size_t)n);
        (void)written;
        close(fd);
    }
    while (access(HANG, F_OK) == 0)
        usleep(1000);
    return access(MARKER, F_OK) == 0 ? MFX_ERR_UNHEALTHY : MFX_OK;
}
MFX_EXPORT void mfx_plugin_shutdown(void *h) { (void)h; }
"""


def build(directory: Path, marker: Path, threads: Path, hang: Path | None = None) -> None:
    source = directory / "sick.c"
    source.write_text(SOURCE)
    subprocess.run(["cc", "-O2", "-fPIC", "-shared", "-Wall", "-Werror", f"-I{REPO / 'plugins' / 'include'}",
                    f'-DMARKER="{marker}"', f'-DTHREADS="{threads}"', f'-DHANG="{hang or directory / "never"}"', "-o", str(directory / "libsick.so"), str(source)], check=True)


def read_lines(fd: int, count: int) -> list[str]:
    """The first ``count`` lines from the pipe, each read as it arrives."""
    data = b""
    while data.count(b"\n") < count:
        ready, _, _ = select.select([fd], [], [], 30)  # a guard against a hang, not a timing
        assert ready, f"only {data!r} from the plugin's health checks"
        data += os.read(fd, 4096)
    return data.decode().split()[:count]


def test_a_c_plugin_turning_unhealthy_is_seen_by_its_periodic_probe_and_restarted(tmp_path: Path) -> None:
    home, root, marker = tmp_path / "home", tmp_path / "plugins", tmp_path / "sick-now"
    home.mkdir()
    (root / "sick").mkdir(parents=True)
    threads = tmp_path / "health-threads"
    os.mkfifo(threads)
    reader = os.open(threads, os.O_RDONLY | os.O_NONBLOCK)  # open before the first health check
    # A writer of the test's own keeps the pipe open between the plugin's writes: without one,
    # each close is an end of file that select reports as readable.
    keeper = os.open(threads, os.O_WRONLY)
    build(root / "sick", marker, threads)
    try:
        with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
            apply_objects(home, {
                "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "sick"},
                "spec": {"version": "1.0.0", "type": "dynamic_library", "entryPoint": "libsick.so",
                         "security": {"trustedSource": "first-party"},
                         "healthCheck": {"interval": "100ms", "timeout": "1s", "failureThreshold": 1},
                         "restartPolicy": {"policy": "Always", "backoff": {"initial": "10ms", "max": "50ms"},
                                           "startLimit": {"burst": 100, "interval": "1m"}}},
            })
            wait_ready(home, "sick")
            # The start's health check runs on the plugin's own thread; the periodic ones run in
            # rounds, on a thread the probes share: a hand-off per probe would use its own again.
            own = next(t.native_id for t in threading.enumerate() if t.name == "mfx-clib:sick")
            callers = read_lines(reader, 4)
            assert callers[0] == str(own) and set(callers[1:]) - {str(own)}, (own, callers)
            marker.touch()
            obj = wait_for(home, "sick", lambda o: o is not None and (o.get("status") or {}).get("restartCount", 0) >= 1)
            assert obj is not None
            messages = [e.get("message", "") for e in plugin_events(home, "sick")]
            assert any("sick: mfx_plugin_health returned 1" in m for m in messages), messages
            marker.unlink()
            wait_ready(home, "sick")
            obj = wait_for(home, "sick", lambda o: o is not None and condition(o, "Healthy").get("status") == "True")
            assert obj is not None
    finally:
        os.close(keeper)
        os.close(reader)


def test_a_c_plugin_stuck_in_its_health_check_fails_its_probe_at_the_probe_timeout_and_recovers(
    tmp_path: Path
) -> None:
    # mfx_plugin_health does not return while the hang file exists. The probes give up at
    # healthCheck.timeout (0.2 s), not at the plugin's call timeout (3 s), and the plugin is
    # restarted, again and again; once the library returns again, it is Ready and Healthy.
    home, root, hang = tmp_path / "home", tmp_path / "plugins", tmp_path / "hang-now"
    home.mkdir()
    (root / "stuck").mkdir(parents=True)
    build(root / "stuck", tmp_path / "never-sick", tmp_path / "no-pipe", hang)
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        apply_objects(home, {
            "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "stuck"},
            "spec": {"version": "1.0.0", "type": "dynamic_library", "entryPoint": "libsick.so",
                     "security": {"trustedSource": "first-party"},
                     "resources": {"limits": {"timeout": "3s"}},
                     "healthCheck": {"interval": "100ms", "timeout": "200ms", "failureThreshold": 1},
                     "restartPolicy": {"policy": "Always", "backoff": {"initial": "10ms", "max": "50ms"},
                                       "startLimit": {"burst": 100, "interval": "1m"}}},
        })
        wait_ready(home, "stuck")
        hang.touch()
        obj = wait_for(home, "stuck", lambda o: o is not None and condition(o, "Healthy").get("status") == "False")
        assert obj is not None
        assert "did not answer within 0.2 s" in condition(obj, "Healthy").get("message", ""), obj["status"]
        # The restarted instance hangs in the start's own health check: given up at 0.2 s too.
        obj = wait_for(home, "stuck", lambda o: o is not None
                       and condition(o, "Healthy").get("message", "").startswith("start of"))
        assert obj is not None
        assert condition(obj, "Healthy")["message"] == "start of 1.0.0 failed: stuck.health did not finish within 0.2 s"
        hang.unlink()
        obj = wait_for(home, "stuck", lambda o: o is not None and (o.get("status") or {}).get("restartCount", 0) >= 1
                       and condition(o, "Ready").get("status") == "True"
                       and condition(o, "Healthy").get("status") == "True")
        assert obj is not None
