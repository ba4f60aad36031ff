"""A real 3-member etcd cluster on loopback, for the etcd store's tests.

``etcd_cluster`` (session-scoped) starts three ``/usr/bin/etcd`` members on free ports in a tmp
directory and stops them at the end; ``etcd_prefix`` gives each test its own key prefix so
tests never see each other's objects. A member can be killed and started again (same data
directory, ``--initial-cluster-state existing``) to test failover and quorum loss.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_healthy(endpoints: list[str], *logs: Path, tls: list[str] | None = None,
                 timeout: float = 30.0) -> None:
    """Until ``etcdctl endpoint health`` passes on ``endpoints`` (polled, under a safety deadline)."""
    deadline = time.monotonic() + timeout
    env = {**os.environ, "ETCDCTL_API": "3"}
    while True:
        result = subprocess.run(
            ["etcdctl", "--endpoints", ",".join(endpoints), *(tls or []), "--command-timeout", "1s",
             "endpoint", "health"],
            capture_output=True, env=env, check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            text = "\n".join(log.read_text(errors="replace")[-2000:] for log in logs if log.exists())
            raise RuntimeError(f"etcd did not become healthy: {result.stderr.decode()}\n{text}")
        time.sleep(0.05)  # polling a condition with a deadline


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"


@dataclass
class EtcdCluster:
    root: Path
    members: list[Member] = field(default_factory=list)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def endpoints(self) -> str:
        return ",".join(m.endpoint for m in self.members)

    @property
    def url(self) -> str:
        """The ``--store`` value naming every member."""
        return f"etcd://{self.endpoints}"

    def _command(self, member: Member, state: str) -> list[str]:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        return [
            ETCD, "--name", member.name, "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url, "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial, "--initial-cluster-token", self.token,
            "--initial-cluster-state", state,
            # Short raft timers: a lost leader is replaced in well under a second on loopback.
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--log-level", "warn",
        ]

    def start_member(self, member: Member, *, state: str = "new") -> None:
        log = member.log_path.open("ab")
        member.process = subprocess.Popen(self._command(member, state), stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill(self, member: Member, sig: int = signal.SIGKILL) -> None:
        if member.process is not None and member.process.poll() is None:
            member.process.send_signal(sig)
            member.process.wait(timeout=30)
        member.process = None

    def restart(self, member: Member) -> None:
        self.start_member(member, state="existing")

    def start(self) -> None:
        ports = free_ports(2 * 3)
        for i in range(3):
            name = f"infra{i + 1}"
            self.members.append(Member(name, ports[2 * i], ports[2 * i + 1], self.root / name,
                                       self.root / f"{name}.log"))
        for member in self.members:
            self.start_member(member)
        self.wait_healthy()

    def wait_healthy(self) -> None:
        """Until every running member answers that the cluster has a leader."""
        running = [m for m in self.members if m.process is not None]
        wait_healthy([m.endpoint for m in running], *(m.log_path for m in self.members))

    def stop(self) -> None:
        for member in self.members:
            self.kill(member, signal.SIGTERM)


@pytest.fixture(scope="session")
def etcd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    if not os.path.exists(ETCD):
        pytest.fail("etcd is not installed: apt-get install etcd-server etcd-client")
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def restore_members(etcd_cluster: EtcdCluster) -> Iterator[EtcdCluster]:
    """The cluster, for a test that kills members: whatever it killed is running again (and
    the cluster healthy) for the next test."""
    yield etcd_cluster
    for member in etcd_cluster.members:
        if member.process is None:
            etcd_cluster.restart(member)
    etcd_cluster.wait_healthy()


@pytest.fixture
def etcd_prefix() -> str:
    """A key prefix of this test's own."""
    return f"/mfx-test-{uuid.uuid4().hex[:12]}"
