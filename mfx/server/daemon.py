"""``mfx serve``: the composition root that wires store, API, controllers and listeners.

Everything the daemon runs lives in one anyio task group; SIGTERM/SIGINT set the shutdown
event, the listeners drain, the controllers stop their plugins, and the store closes.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

import mfx
from mfx.observability.metrics import Metrics
from mfx.server.admission import Admission
from mfx.server.api import ApiServer
from mfx.server.auth import load_or_create_token
from mfx.server.listeners import bind_tcp, bind_unix, make_server
from mfx.server.lock import HomeLock
from mfx.store.sqlite import SQLiteStore

log = logging.getLogger("mfx.daemon")


def default_home() -> Path:
    env = os.environ.get("MFX_HOME")
    if env:
        return Path(env).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mfx"


@dataclass
class DaemonConfig:
    home: Path = field(default_factory=default_home)
    listen: str | None = None  # "127.0.0.1:PORT": TCP listener that requires the bearer token
    metrics_address: str | None = None  # "127.0.0.1:PORT": /metrics without a token, for Prometheus
    plugin_paths: list[Path] = field(default_factory=list)
    workers: int = 4
    resync_seconds: float = 600.0
    allow_unsigned_sources: tuple[str, ...] = ("first-party", "local")

    @property
    def socket_path(self) -> Path:
        return self.home / "mfx.sock"

    @property
    def token_path(self) -> Path:
        return self.home / "token"

    @property
    def database_path(self) -> Path:
        return self.home / "state.db"


# A part of the daemon that runs for its lifetime (controllers, player, ...).
Service = Callable[["DaemonContext", TaskGroup], Awaitable[None]]


@dataclass
class DaemonContext:
    config: DaemonConfig
    store: SQLiteStore
    metrics: Metrics
    api: ApiServer
    shutdown: anyio.Event


async def run_daemon(
    config: DaemonConfig,
    *,
    services: list[Service] | None = None,
    on_ready: Callable[[DaemonContext], None] | None = None,
    handle_signals: bool = True,
) -> None:
    """Run until SIGTERM/SIGINT (or until ``shutdown`` is set, for embedding and tests)."""
    config.home.mkdir(parents=True, exist_ok=True)
    os.chmod(config.home, 0o700)
    lock = HomeLock(config.home / "mfx.lock")
    lock.acquire()
    try:
        async with SQLiteStore(config.database_path) as store:
            metrics = Metrics()
            metrics.build_info.info({"version": mfx.__version__})
            shutdown = anyio.Event()
            api = ApiServer(store=store, admission=Admission(), metrics=metrics, shutdown=shutdown)
            context = DaemonContext(config=config, store=store, metrics=metrics, api=api, shutdown=shutdown)
            await _serve(context, services or [], on_ready, handle_signals)
    finally:
        lock.release()


async def _serve(context: DaemonContext, services: list[Service],
                 on_ready: Callable[[DaemonContext], None] | None, handle_signals: bool) -> None:
    config = context.config
    async with anyio.create_task_group() as daemon_group:
        if handle_signals:
            daemon_group.start_soon(_watch_signals, context.shutdown)
        async with anyio.create_task_group() as group:
            for service in services:
                await service(context, group)
            servers = [(make_server(context.api.app()), bind_unix(config.socket_path))]
            if config.listen:
                token = load_or_create_token(config.token_path)
                servers.append((make_server(context.api.app(token=token)), bind_tcp(config.listen)))
            if config.metrics_address:
                servers.append((make_server(context.api.metrics_app()), bind_tcp(config.metrics_address)))
            for server, sock in servers:
                group.start_soon(server.serve, [sock])
            while not all(server.started for server, _ in servers):
                await anyio.sleep(0.01)  # uvicorn has no started event; start-up only
            where = str(config.socket_path)
            if config.listen:
                where += f" and http://{config.listen} (bearer token in {config.token_path})"
            if config.metrics_address:
                where += f"; metrics on http://{config.metrics_address}/metrics"
            log.info("mfx %s serving on %s", mfx.__version__, where)
            if on_ready is not None:
                on_ready(context)
            await context.shutdown.wait()
            log.info("shutting down")
            for server, _ in servers:
                server.should_exit = True
            # Services watch the shutdown event themselves; this group ends when all are done.
        daemon_group.cancel_scope.cancel()
    try:
        config.socket_path.unlink()
    except FileNotFoundError:
        pass


async def _watch_signals(shutdown: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            shutdown.set()
            return
