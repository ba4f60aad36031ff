"""``mfx serve``: the composition root that wires store, API, controllers and listeners.

Everything the daemon runs lives in one anyio task group; SIGTERM/SIGINT set the shutdown
event, the listeners drain, the controllers stop their plugins, and the store closes.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

import mfx
from mfx import cpu_affinity
from mfx.audio.file_tap import FileTap, plan
from mfx.collector import young_collections_every
from mfx.cpu_affinity import CpuAffinity
from mfx.cpu_watch import WATCH_SECONDS, keep_shared_cpu_free
from mfx.engine.api import AudioEngine, EngineMode
from mfx.engine.sink_registry import SinkRegistry
from mfx.home import default_home
from mfx.server.admission import Admission
from mfx.server.api import ApiServer
from mfx.server.auth import load_or_create_token
from mfx.server.certificates import ensure_tls
from mfx.server.listeners import (
    ConnectionLimits,
    QuietServer,
    bind_tcp,
    bind_unix,
    make_server,
    parse_address,
    write_listen_address,
)
from mfx.server.lock import HomeLock
from mfx.server.logs_api import log_routes
from mfx.server.packages_api import UnsignedPolicy, package_routes
from mfx.server.plugin_log_routing import plugin_records_routed_to
from mfx.server.tls_listener import serve_tls
from mfx.store.backends import store_for
from mfx.store.base import MaintainedStore, Store
from mfx.store.cache import ObjectCache
from mfx.store.etcd_keys import DEFAULT_COMPACTION_SECONDS, EtcdTLS
from mfx.store.plugin_logs import PluginLogStore
from mfx.store.sqlite import SQLiteStore
from mfx.store.sqlite_checkpoint import Checkpoint
from observability.metrics import Metrics
from observability.process_metrics import pids_from_snapshot
from observability.state_metrics import ObjectStateCollector
from reconciler import EventBus, ServiceRegistry

log = logging.getLogger("mfx.daemon")


@dataclass(frozen=True)
class ExtraListener:
    """One more app on a TCP address: ``build(context, group)`` returns its ASGI app once the
    services run (it may start its own tasks in ``group``, which end at shutdown); the real
    address is written to HOME/``name``-address (``mfx ui`` reads it) and removed at exit."""

    name: str
    address: str
    build: Callable[[DaemonContext, TaskGroup], Awaitable[Any]]

    def address_path(self, home: Path) -> Path:
        return home / f"{self.name}-address"


@dataclass
class DaemonConfig:
    home: Path = field(default_factory=default_home)
    # "HOST:PORT" TCP listeners; both require the bearer token. ``listen`` serves HTTPS (what
    # kubectl and ``mfx --server`` talk to), ``listen_http`` plain HTTP (scripts, curl).
    listen: str | None = None
    listen_http: str | None = None
    metrics_address: str | None = None  # "127.0.0.1:PORT": /metrics without a token, for Prometheus
    plugin_paths: list[Path] = field(default_factory=list)
    workers: int = 4
    resync_seconds: float = 600.0
    # Sources of unsigned plugin packages (``--allow-unsigned``); None: the default policy
    # (mfx.server.packages_api.UnsignedPolicy).
    allow_unsigned_sources: tuple[str, ...] | None = None
    connection_limits: ConnectionLimits = field(default_factory=ConnectionLimits)  # per TCP listener
    # Without a sound card (and without ALSA_CONFIG_PATH), play into an ALSA file tap under
    # HOME/audio. It sets ALSA_CONFIG_PATH in this process's environment, where libasound
    # reads it, so only a daemon that owns its process turns it on (``mfx serve`` does).
    file_tap: bool = False
    # Once ready, move everything start-up built out of the collector's reach (gc.freeze), so
    # a full collection's pause (it holds the GIL) cannot starve the audio writer thread; undone
    # on exit. It changes the whole process, so only the owner of the process turns it on:
    # ``mfx serve``, or a test that plays real-time audio the way ``mfx serve`` would.
    freeze_startup_objects: bool = False
    # Young collections after this many allocations instead of 700 (mfx.collector), while the
    # daemon runs; None leaves the collector as it is. Process-wide too: ``mfx serve`` and
    # ``mfx agent`` set it.
    young_collection_threshold: int | None = None
    # The daemon's interpreter threads (event loop, store writer, plugin calls) share one CPU;
    # child processes and native plugin code keep every CPU (mfx.cpu_affinity). It changes
    # the threads of the process, so only its owner turns it on: ``mfx serve``, ``mfx agent``.
    pin_interpreter_threads: bool = False
    cpu_watch_seconds: float = WATCH_SECONDS  # how often a pinned daemon looks whether its CPU is taken
    # The audio engine process keeps playing when this daemon stops (an upgrade, a crash) and
    # the next daemon adopts it; otherwise the daemon shuts the engine down on its way out.
    # ``mfx serve`` sets it; a daemon embedded in a test or a program cleans up after itself.
    engine_outlives_daemon: bool = False
    audio_engine: EngineMode = EngineMode.PROCESS
    # Where objects live: None is the SQLite file in HOME; "etcd://h1:2379,h2:2379[/prefix]" an
    # etcd cluster that several daemons may share (``etcd_tls``: its CA and client certificate).
    store_url: str | None = None
    etcd_tls: EtcdTLS = field(default_factory=EtcdTLS)
    # How often etcd's history is compacted (to the revision of one interval before, as
    # kube-apiserver does); 0: never (another API server or an operator does it).
    etcd_compaction_seconds: float = DEFAULT_COMPACTION_SECONDS
    # Apps of their own on TCP addresses of their own, built from the running daemon (the web
    # UI: ``mfx serve --ui-address``); the daemon needs to know nothing of what they serve.
    extra_listeners: list[ExtraListener] = field(default_factory=list)
    # This machine's Node (mfx.server.fleet_services): its name (None: the host name), the
    # labels its agent adds (--node-labels), the seconds its Lease holds after each renewal
    # (renewed every quarter of it, as the kubelet), and the leader election's timing
    # (client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period).
    node_name: str | None = None
    node_labels: dict[str, str] = field(default_factory=dict)
    node_lease_seconds: int = 40
    leader_lease_seconds: float = 15.0
    leader_renew_deadline: float = 10.0
    leader_retry_period: float = 2.0

    @property
    def socket_path(self) -> Path:
        return self.home / "mfx.sock"

    @property
    def token_path(self) -> Path:
        return self.home / "token"

    @property
    def listen_address_path(self) -> Path:
        """Where the HTTPS listener's address is written, for ``mfx config kubeconfig``."""
        return self.home / "listen-address"

    @property
    def listen_http_address_path(self) -> Path:
        """Where the plain HTTP listener's address is written (its real port, even for ``:0``)."""
        return self.home / "listen-http-address"

    @property
    def database_path(self) -> Path:
        return self.home / "state.db"


# A part of the daemon that runs for its lifetime (controllers, player, ...).
Service = Callable[["DaemonContext", TaskGroup], Awaitable[None]]


@dataclass
class DaemonContext:
    config: DaemonConfig
    store: Store
    metrics: Metrics
    api: ApiServer
    shutdown: anyio.Event
    log_store: PluginLogStore
    cache: ObjectCache
    # Set by the controllers service (mfx.server.services) before the API starts serving:
    service_registry: ServiceRegistry | None = None  # interface -> Ready providers (for the player)
    event_bus: EventBus | None = None
    manager: Any = None  # the reconciler Manager (reconciler.Manager)
    sink_registry: SinkRegistry | None = None  # open AudioSinks; the player plays to .default()
    audio_engine: AudioEngine | None = None  # the audio engine process (mfx.engine), supervised
    file_tap: FileTap | None = None  # where ALSA's default device writes, when there is no sound card
    node_agent: Any = None  # this machine's node agent (mfx.node.NodeAgent), once registered
    leader: Any = None  # the leader election of the fleet-wide controllers (mfx.node.LeaderElector)


async def run_daemon(
    config: DaemonConfig,
    *,
    services: list[Service] | None = None,
    on_ready: Callable[[DaemonContext], None] | None = None,
    handle_signals: bool = True,
    open_store: Callable[[DaemonConfig], AbstractAsyncContextManager[Store]] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or until ``shutdown`` is set, for embedding and tests).

    ``open_store``: where objects live instead of ``config.store_url`` (``mfx agent`` passes
    an ``ApiStore``: the same daemon, its objects behind a remote API server)."""
    config.home.mkdir(parents=True, exist_ok=True)
    os.chmod(config.home, 0o700)
    lock = HomeLock(config.home / "mfx.lock")
    lock.acquire()  # before anything in HOME changes: another daemon may serve it
    tap: FileTap | None = None
    # Before the store or anything else starts a thread: the threads started from here on
    # share the loop's CPU.
    cpu = CpuAffinity.choose(pin=config.pin_interpreter_threads)
    # The daemon's tasks and threads find ``cpu`` in their context.
    with cpu_affinity.in_effect(cpu), young_collections_every(config.young_collection_threshold):
        try:
            cpu.pin()
            tap = _set_up_file_tap(config.home) if config.file_tap else None
            opened = (open_store(config) if open_store is not None
                      else store_for(config.store_url, config.database_path, config.etcd_tls,
                                    compaction_seconds=config.etcd_compaction_seconds))
            async with opened as store:
                metrics = Metrics()
                metrics.build_info.info({"version": mfx.__version__})
                shutdown = anyio.Event()
                admission = Admission()
                unsigned = UnsignedPolicy(
                    sources=(None if config.allow_unsigned_sources is None
                             else UnsignedPolicy.parse(config.allow_unsigned_sources)),
                    plugin_paths=tuple(p.resolve() for p in config.plugin_paths))
                log_store = PluginLogStore(config.home / "logs")
                cache = ObjectCache(store)
                metrics.registry.register(ObjectStateCollector(cache.snapshot))
                metrics.plugin_process_sampler.sample_from(pids_from_snapshot(cache.snapshot))
                api = ApiServer(store=store, admission=admission, metrics=metrics, shutdown=shutdown,
                                extra_routes=[*package_routes(config.home, unsigned, store, admission),
                                              *log_routes(log_store, shutdown, store=store)])
                context = DaemonContext(config=config, store=store, metrics=metrics, api=api, shutdown=shutdown,
                                        log_store=log_store, cache=cache, file_tap=tap)
                # The controller's messages about a plugin (logged with extra={"plugin": name})
                # land in that plugin's log beside its own output.
                with plugin_records_routed_to(log_store), log_store.background_writes():
                    await _serve(context, services or [], on_ready, handle_signals)
        finally:
            if tap is not None:
                os.environ.pop("ALSA_CONFIG_PATH", None)
            cpu.release()  # an embedding program's thread goes back to where it was
            lock.release()


def store_upkeep(store: Store, metrics: Metrics) -> Callable[[], Awaitable[None]] | None:
    """What keeps ``store`` in shape while the daemon serves it: etcd's compaction, SQLite's
    checkpoints (each one measured); None for a store without upkeep."""
    if isinstance(store, SQLiteStore):
        def measured(checkpoint: Checkpoint) -> None:
            metrics.store_wal_checkpoint_duration_seconds.observe(checkpoint.seconds)
            metrics.store_wal_checkpoint_pages_total.inc(checkpoint.copied)

        return functools.partial(store.maintain, on_checkpoint=measured)
    if isinstance(store, MaintainedStore):
        return store.maintain
    return None


def _set_up_file_tap(home: Path) -> FileTap | None:
    """Give ALSA a default device on a machine without a sound card: a file tap under HOME."""
    tap = plan(home, os.environ)
    if tap is None:
        return None
    tap.write()
    # libasound reads the variable when the sink opens its PCM, in this process.
    os.environ["ALSA_CONFIG_PATH"] = str(tap.config)
    log.warning("no sound card and ALSA_CONFIG_PATH is not set: ALSA's default device is a file tap "
                "(%s); what mfx plays lands in %s, listen with: %s (mfx serve --no-file-tap turns "
                "this off)", tap.config, tap.output, tap.listen_command())
    return tap


async def _serve(context: DaemonContext, services: list[Service],
                 on_ready: Callable[[DaemonContext], None] | None, handle_signals: bool) -> None:
    config = context.config
    async with anyio.create_task_group() as daemon_group:
        if handle_signals:
            daemon_group.start_soon(_watch_signals, context.shutdown)
        daemon_group.start_soon(context.cache.run)
        daemon_group.start_soon(keep_shared_cpu_free, cpu_affinity.current(), config.cpu_watch_seconds)
        upkeep = store_upkeep(context.store, context.metrics)
        if upkeep is not None:
            daemon_group.start_soon(upkeep)
        async with anyio.create_task_group() as group:
            for service in services:
                await service(context, group)
            servers = [(make_server(context.api.app()), bind_unix(config.socket_path)),
                       *_tcp_servers(context)]
            if config.metrics_address:
                servers.append((make_server(context.api.metrics_app(), limits=config.connection_limits),
                                bind_tcp(config.metrics_address)))
            for extra in config.extra_listeners:
                sock = bind_tcp(extra.address)
                servers.append((make_server(await extra.build(context, group), limits=config.connection_limits), sock))
                write_listen_address(extra.address_path(config.home), sock)
            for server, sock in servers:
                group.start_soon(server.serve, [sock])
            # uvicorn has no started event: poll its flag, at start-up only.
            while not all(server.started for server, _ in servers):  # noqa: ASYNC110
                await anyio.sleep(0.01)
            where = str(config.socket_path)
            if config.listen:
                where += f", https://{config.listen_address_path.read_text().strip()}"
            if config.listen_http:
                where += f", http://{config.listen_http_address_path.read_text().strip()}"
            if config.listen or config.listen_http:
                where += f" (bearer token in {config.token_path})"
            if config.metrics_address:
                where += f"; metrics on http://{config.metrics_address}/metrics"
            for extra in config.extra_listeners:
                where += f"; {extra.name} on http://{extra.address_path(config.home).read_text().strip()}/"
            log.info("mfx %s serving on %s", mfx.__version__, where)
            if config.freeze_startup_objects:
                gc.freeze()
            if on_ready is not None:
                on_ready(context)
            try:
                await context.shutdown.wait()
            finally:
                if config.freeze_startup_objects:
                    gc.unfreeze()
            log.info("shutting down")
            for server, _ in servers:
                server.should_exit = True
            # Services watch the shutdown event themselves; this group ends when all are done.
        daemon_group.cancel_scope.cancel()
    for path in (config.socket_path, config.listen_address_path, config.listen_http_address_path,
                 *(extra.address_path(config.home) for extra in config.extra_listeners)):
        path.unlink(missing_ok=True)


def _tcp_servers(context: DaemonContext) -> list[tuple[QuietServer, socket.socket]]:
    """The HTTPS and plain HTTP listeners that are configured, each with its own connection
    gate; each one's address is written to HOME, or a stale file of a killed daemon removed."""
    config = context.config
    servers: list[tuple[QuietServer, socket.socket]] = []
    token = load_or_create_token(config.token_path) if config.listen or config.listen_http else None
    for address, path, tls in ((config.listen, config.listen_address_path, True),
                               (config.listen_http, config.listen_http_address_path, False)):
        if not address:
            path.unlink(missing_ok=True)
            continue
        sock = bind_tcp(address)
        server = make_server(context.api.app(token=token), limits=config.connection_limits)
        if tls:
            server = serve_tls(server, ensure_tls(config.home, parse_address(address)[0]).server_context())
        write_listen_address(path, sock)
        servers.append((server, sock))
    return servers


async def _watch_signals(shutdown: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            shutdown.set()
            return
