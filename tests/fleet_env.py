"""A fleet on one machine: every host in a network namespace of its own, joined by a bridge.

```python
with start_fleet(tmp_path, agents=("a", "b", "c")) as fleet:
    fleet.mfx(fleet.servers[0], "get", "nodes")          # through an API server's socket
    fleet.network.cut(fleet.agents[0].host)               # link down: host a is cut off
```

Hosts (namespaces named ``f<pid>-<host>``, so runs never collide, all deleted at the end):

- ``cp1``, ``cp2``, ``cp3``: the control plane, one etcd member each (10.N.0.1-3:2379); ``cp1``
  and ``cp2`` also run ``mfx serve --store etcd://... --no-local-agent --listen ADDR:6443``, each
  with a home of its own. Both homes hold the same token and the same CA (copied from the first
  before either starts), so a client or agent given one server's token and CA trusts both.
- one host per agent (10.N.0.11...): ``mfx agent --server https://cp1:6443,https://cp2:6443``.
- ``ops``: the user's machine (10.N.0.100), for kubectl and plain watch clients.
- the switch: a bridge each host's veth is a port of; ``cut(host)`` sets that port down.

Nothing gets an address in the root namespace and no traffic leaves the machine. Unix sockets
cross namespaces (the file system is shared), so ``mfx --home SERVER_HOME ...`` reaches a server
whatever the network does. Needs root and ``ip netns``; ``NetnsUnavailable`` says why not.
Every process is started in a namespace by ``ip netns exec`` (which execs, so the pid is the
program's) and killed, and every namespace deleted, on the way out, even after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from mfx.api.kinds import resolve_kind
from mfx.server.certificates import ensure_tls
from tests.daemon_harness import REPO, mfx_command

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
API_PORT = 6443
POLL = 0.05
DEADLINE = 60.0  # a hang guard for every wait, not a speed check


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2, no permission)."""


def wait_for(what: str, check: Callable[[], Any], *, timeout: float = DEADLINE, poll: float = POLL) -> Any:
    """``check()``'s first truthy answer, polled every ``poll`` s; a deadline guards against a hang."""
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            answer = check()
            if answer:
                return answer
            deadline.wait(poll)
    finally:
        timer.cancel()
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetnsUnavailable(f"'ip {' '.join(args)}' failed: {done.stderr.strip()}")


@dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    address: str
    port: str  # the bridge port (in the switch namespace) this host's veth is plugged into

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class Network:
    """The switch namespace and its hosts; ``close()`` deletes every namespace made."""

    run_id: str
    subnet: str = "10.77.0"
    hosts: dict[str, Host] = field(default_factory=dict)
    _made: list[str] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"f{self.run_id}-sw"

    def open(self) -> None:
        if os.geteuid() != 0:
            raise NetnsUnavailable("the fleet test makes network namespaces: run it as root")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("the fleet test needs iproute2 ('ip'): apt-get install iproute2")
        self._add_namespace(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)

    def add_host(self, name: str, last_octet: int) -> Host:
        host = Host(name, f"f{self.run_id}-{name}", f"{self.subnet}.{last_octet}", f"v-{name}")
        self._add_namespace(host.namespace)
        # Both ends are made straight in their namespaces: nothing appears in the root one.
        _ip("link", "add", host.port, "netns", self.switch, "type", "veth", "peer", "name", "eth0",
            "netns", host.namespace)
        _ip("-n", self.switch, "link", "set", host.port, "master", "br0")
        _ip("-n", self.switch, "link", "set", host.port, "up")
        _ip("-n", host.namespace, "link", "set", "lo", "up")
        _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.namespace, "link", "set", "eth0", "up")
        self.hosts[name] = host
        return host

    def cut(self, host: Host) -> None:
        """Unplug ``host``: its bridge port goes down, so nothing reaches it or leaves it."""
        _ip("-n", self.switch, "link", "set", host.port, "down")

    def heal(self, host: Host) -> None:
        _ip("-n", self.switch, "link", "set", host.port, "up")

    def close(self) -> None:
        for name in reversed(self._made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self._made.clear()


class Process:
    """A program on a host; its output goes to ``log``, read by ``said``."""

    def __init__(self, host: Host, argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.host = host
        self.argv = list(argv)
        self.log = log
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.host.command(self.argv), stdout=out, stderr=subprocess.STDOUT,
                                          env=self.env)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def said(self, text: str) -> bool:
        return text in self.output()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None


@dataclass
class EtcdMember:
    name: str
    host: Host
    data_dir: Path
    process: Process | None = None

    @property
    def client_url(self) -> str:
        return f"http://{self.host.address}:2379"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host.address}:2380"

    @property
    def endpoint(self) -> str:
        return f"{self.host.address}:2379"


@dataclass
class ApiServer:
    """``mfx serve --no-local-agent`` on a control-plane host."""

    name: str
    host: Host
    home: Path
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host.address}:{API_PORT}"

    @property
    def socket(self) -> Path:
        return self.home / "mfx.sock"

    def ready(self) -> bool:
        assert self.process is not None
        if not self.process.running:
            raise AssertionError(f"mfx serve on {self.host.name} exited:\n{self.process.output()[-4000:]}")
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), base_url="http://mfx",
                              timeout=1.0) as client:
                return client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class AgentNode:
    """``mfx agent`` on a host of its own."""

    name: str
    host: Host
    home: Path
    process: Process | None = None

    def plugins(self) -> dict[str, int]:
        """Plugin name -> pid of the plugin processes this agent runs: its children working in
        HOME/state/NAME (where the runtime starts each plugin)."""
        assert self.process is not None
        state = self.home / "state"
        found: dict[str, int] = {}
        for pid in children(self.process.pid):
            try:
                cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            except OSError:
                continue
            if cwd.parent == state:
                found[cwd.name] = pid
        return found


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and ") Z " not in Path(f"/proc/{pid}/stat").read_text()


@dataclass
class Fleet:
    root: Path
    network: Network
    node_lease_seconds: int
    leader_lease_seconds: float
    plugin_paths: tuple[Path, ...]
    log_format: str = "text"
    etcd: list[EtcdMember] = field(default_factory=list)
    servers: list[ApiServer] = field(default_factory=list)
    agents: list[AgentNode] = field(default_factory=list)
    ops: Host | None = None
    _token: str = field(default_factory=lambda: uuid.uuid4().hex)

    # --- paths and commands ------------------------------------------------------------------

    @property
    def token_file(self) -> Path:
        return self.root / "token"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.crt"

    @property
    def store_url(self) -> str:
        return "etcd://" + ",".join(m.endpoint for m in self.etcd)

    def env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("MFX_HOME", None)
        return env

    def mfx(self, server: ApiServer, *args: str, timeout: float = 30.0,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``mfx --home SERVER_HOME ARGS``: the CLI on a server's unix socket, from the root namespace."""
        return subprocess.run([*mfx_command(), "--home", str(server.home), *args], env=self.env(), input=stdin,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def get_json(self, server: ApiServer, kind: str, name: str) -> Any:
        """The object as ``server`` answers over its socket (None when it does not answer 200):
        a plain HTTP GET, quick enough to poll."""
        path = f"{resolve_kind(kind).resource_path}/{name}"
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://mfx",
                              timeout=5.0) as client:
                answer = client.get(path)
        except httpx.HTTPError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def on(self, host: Host, *argv: str, timeout: float = 30.0,
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """A command run on ``host`` (in its namespace)."""
        return subprocess.run(host.command(argv), env=self.env(), capture_output=True, text=True,
                              timeout=timeout, input=stdin, check=False)

    # --- etcd ----------------------------------------------------------------------------------

    def _etcd_command(self, member: EtcdMember, state: str) -> list[str]:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.etcd)
        return [
            ETCD, "--name", member.name, "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial, "--initial-cluster-token", f"fleet-{self.network.run_id}",
            "--initial-cluster-state", state,
            "--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "warn",
        ]

    def start_etcd_member(self, member: EtcdMember, state: str = "new") -> None:
        member.process = Process(member.host, self._etcd_command(member, state),
                                 self.root / f"etcd-{member.name}.log").start()

    def etcd_healthy(self, members: Sequence[EtcdMember] | None = None) -> bool:
        """Every member of ``members`` (default: the running ones) answers that there is a leader."""
        running = [m for m in (members or self.etcd) if m.process is not None and m.process.running]
        done = self.on(running[0].host, "etcdctl", "--endpoints", ",".join(m.endpoint for m in running),
                       "--command-timeout", "1s", "endpoint", "health")
        return done.returncode == 0

    def etcd_leader(self) -> EtcdMember:
        """The member etcd reports as its leader."""
        running = [m for m in self.etcd if m.process is not None and m.process.running]
        done = self.on(running[0].host, "etcdctl", "--endpoints", ",".join(m.endpoint for m in running),
                       "-w", "json", "endpoint", "status")
        for status in json.loads(done.stdout or "[]"):
            header = status["Status"]
            # No "leader" (JSON omits a zero) while an election runs.
            if header.get("leader") and header["leader"] == header["header"]["member_id"]:
                return next(m for m in self.etcd if m.endpoint == status["Endpoint"])
        raise AssertionError(f"no etcd leader in {done.stdout}")

    # --- API servers ----------------------------------------------------------------------------

    def start_server(self, server: ApiServer) -> None:
        argv = [*mfx_command(), "serve", "--home", str(server.home), "--store", self.store_url,
                "--no-local-agent", "--listen", f"{server.host.address}:{API_PORT}",
                "--node-name", server.name, "--leader-lease-seconds", str(self.leader_lease_seconds),
                "--log-format", self.log_format]
        server.process = Process(server.host, argv, self.root / f"{server.name}.log", env=self.env()).start()
        wait_for(f"mfx serve on {server.host.name} to answer", server.ready)

    def _prepare_server_home(self, home: Path, host: Host) -> None:
        """The shared token and CA, in place before the daemon looks for them."""
        home.mkdir(parents=True, mode=0o700)
        token = home / "token"
        token.write_text(self._token + "\n")
        token.chmod(0o600)
        if not self.ca_file.exists():
            files = ensure_tls(home, host.address)
            shutil.copy(files.ca_cert, self.ca_file)
            return
        first = self.servers[0].home / "tls"
        (home / "tls").mkdir(mode=0o700)
        for name in ("ca.crt", "ca.key"):
            shutil.copy2(first / name, home / "tls" / name)

    # --- agents -----------------------------------------------------------------------------------

    def start_agent(self, agent: AgentNode) -> None:
        argv = [*mfx_command(), "agent", "--home", str(agent.home),
                "--server", ",".join(s.url for s in self.servers),
                "--token-file", str(self.token_file), "--ca-file", str(self.ca_file),
                "--node-name", agent.name, "--node-labels", f"host={agent.host.name}",
                "--node-lease-seconds", str(self.node_lease_seconds), "--no-file-tap",
                "--log-format", self.log_format,
                *(f"--plugin-path={p}" for p in self.plugin_paths)]
        agent.process = Process(agent.host, argv, self.root / f"{agent.name}.log", env=self.env()).start()

    def node_ready(self, name: str, status: str = "True", server: ApiServer | None = None) -> bool:
        node = self.get_json(server or self.live_server(), "nodes", name) or {}
        return any(c.get("type") == "Ready" and c.get("status") == status
                   for c in node.get("status", {}).get("conditions", []))

    def live_server(self) -> ApiServer:
        return next(s for s in self.servers if s.process is not None and s.process.running)

    def leader(self, server: ApiServer | None = None) -> str:
        """The holder of the ``mfx-controllers`` Lease, as a server reports it ("" when none)."""
        lease = self.get_json(server or self.live_server(), "leases", "mfx-controllers") or {}
        return str(lease.get("spec", {}).get("holderIdentity") or "")

    def server_of(self, identity: str) -> ApiServer:
        return next(s for s in self.servers if identity.startswith(f"{s.name}_"))

    def print_logs(self, lines: int = 30) -> None:
        for log in sorted(self.root.glob("*.log")):
            print(f"--- {log.name} (last {lines} lines)")
            print("\n".join(log.read_text(errors="replace").splitlines()[-lines:]))

    def close(self) -> None:
        for process in [*(a.process for a in self.agents), *(s.process for s in self.servers),
                        *(m.process for m in self.etcd)]:
            if process is not None:
                process.stop(signal.SIGKILL if not process.running else signal.SIGTERM, timeout=15)
        # Plugins an agent left behind (it was SIGKILLed) are still in its namespace: end them.
        for agent in self.agents:
            for pid in _pids_in(agent.host.namespace):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.network.close()


def _pids_in(namespace: str) -> list[int]:
    done = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False)
    return [int(p) for p in done.stdout.split()]


@contextlib.contextmanager
def start_fleet(root: Path, *, agents: Sequence[str] = ("node-a", "node-b", "node-c"), node_lease_seconds: int = 2,
                leader_lease_seconds: float = 2.0, plugin_paths: Sequence[Path] = (),
                log_format: str = "text") -> Iterator[Fleet]:
    """Namespaces, etcd, two API servers and the agents, all torn down at the end."""
    run_id = str(os.getpid())
    network = Network(run_id)
    fleet = Fleet(root, network, node_lease_seconds, leader_lease_seconds, tuple(plugin_paths), log_format)
    try:
        network.open()
        for i in range(3):
            host = network.add_host(f"cp{i + 1}", i + 1)
            fleet.etcd.append(EtcdMember(f"etcd{i + 1}", host, root / f"etcd{i + 1}"))
        for i, name in enumerate(agents):
            network.add_host(name, 11 + i)
        fleet.ops = network.add_host("ops", 100)
        for member in fleet.etcd:
            fleet.start_etcd_member(member)
        wait_for("etcd to elect a leader", fleet.etcd_healthy)
        for i in range(2):
            host = network.hosts[f"cp{i + 1}"]
            server = ApiServer(f"cp{i + 1}", host, root / f"cp{i + 1}-home")
            fleet._prepare_server_home(server.home, host)
            fleet.servers.append(server)
        fleet.token_file.write_text(fleet._token + "\n")
        fleet.token_file.chmod(0o600)
        for server in fleet.servers:
            fleet.start_server(server)
        for name in agents:
            agent = AgentNode(name, network.hosts[name], root / f"{name}-home")
            fleet.agents.append(agent)
            fleet.start_agent(agent)
        for agent in fleet.agents:
            wait_for(f"node {agent.name} Ready", lambda a=agent: fleet.node_ready(a.name))
        yield fleet
    except BaseException:
        fleet.print_logs()  # pytest shows them beside the failure
        raise
    finally:
        fleet.close()


def log_lines(stream: IO[str]) -> Iterator[dict[str, Any]]:
    """JSON log records (``--log-format json``) of a text stream, skipping other lines."""
    for line in stream:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                yield record
