"""Run a real mfx daemon for a test: in a thread (fast, measured by coverage) or as a
subprocess (for signals, SIGKILL durability, the lock and the socket's mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from anyio.from_thread import start_blocking_portal
from click.testing import CliRunner, Result

from mfx.cli.main import build_cli
from mfx.server.daemon import DaemonConfig, DaemonContext, Service, run_daemon
from mfx.store.api_connection import ApiConnection
from mfx.store.api_store import ApiStore

REPO = Path(__file__).resolve().parents[1]


class ThreadDaemon:
    """``mfx serve`` on its own event loop in a background thread."""

    def __init__(self, home: Path, *, services: list[Service] | None = None, **config: object) -> None:
        self.config = DaemonConfig(home=home, **config)  # type: ignore[arg-type]
        self.services = services
        self.context: DaemonContext | None = None

    @contextmanager
    def running(self) -> Iterator[ThreadDaemon]:
        ready = threading.Event()

        def on_ready(context: DaemonContext) -> None:
            self.context = context
            ready.set()

        with start_blocking_portal() as portal:
            self.portal = portal
            future = portal.start_task_soon(
                lambda: run_daemon(self.config, services=self.services, on_ready=on_ready, handle_signals=False))
            while not ready.wait(0.05):
                if future.done():
                    future.result()  # raises what stopped the daemon
            try:
                yield self
            finally:
                assert self.context is not None
                portal.call(self.context.shutdown.set)
                future.result(timeout=30)

    def call(self, fn: Any, *args: object) -> Any:
        """Run ``fn(*args)`` (sync or async) on the daemon's own event loop."""
        return self.portal.call(fn, *args)

    @property
    def socket(self) -> Path:
        return self.config.socket_path


def run_cli(home: Path, *args: str, input: str | None = None) -> Result:
    """Run the real ``mfx`` command in-process against the daemon of ``home``."""
    runner = CliRunner()
    return runner.invoke(build_cli(), ["--home", str(home), *args], input=input, catch_exceptions=False)


def mfx_command() -> list[str]:
    return [sys.executable, "-m", "mfx.cli"]


class SubprocessDaemon:
    """``mfx serve`` as a child process; what it prints goes to a file beside its home.

    A file, not a pipe: a daemon logging faster than a test reads (a plugin's start and stop
    are a line each) would fill a pipe's 64 KiB and block in its next log call, as a daemon
    whose stderr nobody reads does."""

    def __init__(self, home: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.extra = extra
        self.env = {**os.environ, "MFX_HOME": str(home), **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None

    def start(self) -> SubprocessDaemon:
        self.home.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.home.parent, prefix=f"{self.home.name}-serve-", suffix=".log")
        self.log = Path(name)
        with os.fdopen(fd, "wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [*mfx_command(), "serve", "--home", str(self.home), *self.extra],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Block until /readyz answers on the socket (or the process dies)."""
        assert self.process is not None
        transport = httpx.HTTPTransport(uds=str(self.home / "mfx.sock"))
        with httpx.Client(transport=transport, base_url="http://mfx", timeout=1.0) as client:
            for _ in range(600):
                if self.process.poll() is not None:
                    raise RuntimeError(f"mfx serve exited with {self.process.returncode}:\n{self.output()}")
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except (httpx.TransportError, FileNotFoundError):
                    pass
                threading.Event().wait(0.05)
        raise TimeoutError("mfx serve did not become ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        """What the daemon has printed so far."""
        return self.log.read_bytes().decode(errors="replace") if self.log is not None else ""


@asynccontextmanager
async def api_store_on_daemon(home: Path) -> AsyncIterator[ApiStore]:
    """``ApiStore`` on the TCP listener of a real daemon (API server over SQLite, no controllers)."""
    daemon = ThreadDaemon(home, listen_http="127.0.0.1:0")
    with daemon.running():
        url = "http://" + daemon.config.listen_http_address_path.read_text().strip()
        token = daemon.config.token_path.read_text().strip()
        async with ApiStore(ApiConnection((url,), token=token)) as store:
            yield store
