"""What a node agent reports about its machine: host, system, versions and sound devices."""

from __future__ import annotations

import logging
import platform
import socket
from dataclasses import dataclass, field
from typing import Any

import anyio

import mfx

log = logging.getLogger("mfx.node.facts")

# Go's names for the machine types, which kubernetes.io/arch uses.
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
         "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
         "riscv64": "riscv64"}

HOSTNAME_LABEL = "kubernetes.io/hostname"
OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"


@dataclass(frozen=True)
class NodeFacts:
    hostname: str
    os: str
    arch: str
    kernel_version: str
    python: str
    agent_version: str
    sound_devices: tuple[str, ...] = ()
    addresses: tuple[tuple[str, str], ...] = field(default=())  # (type, address)

    def node_info(self) -> dict[str, str]:
        return {"agentVersion": self.agent_version, "os": self.os, "arch": self.arch,
                "hostname": self.hostname, "kernelVersion": self.kernel_version, "python": self.python}

    def labels(self) -> dict[str, str]:
        """The well-known labels every node carries, as the kubelet sets them."""
        return {HOSTNAME_LABEL: self.hostname, OS_LABEL: self.os, ARCH_LABEL: self.arch}

    def status_fields(self) -> dict[str, Any]:
        return {"nodeInfo": self.node_info(), "soundDevices": list(self.sound_devices),
                "addresses": [{"type": t, "address": a} for t, a in self.addresses]}


def machine_arch() -> str:
    machine = platform.machine().lower()
    return _ARCH.get(machine, machine or "unknown")


def sound_devices() -> tuple[str, ...]:
    """The ALSA playback PCMs the current configuration shows (``aplay -L``), or none when
    ALSA cannot be asked: a node without sound still registers."""
    from mfx.audio.alsa_device import list_devices

    try:
        return tuple(list_devices())
    except Exception as error:  # the extension missing or libasound failing: report no devices
        log.warning("could not list ALSA devices (%s); the node reports none", error)
        return ()


def _addresses(hostname: str) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = [("Hostname", hostname)]
    try:
        infos = socket.getaddrinfo(hostname, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except OSError:
        infos = []
    for info in infos:
        address = str(info[4][0])
        if not address.startswith("127.") and ("InternalIP", address) not in found:
            found.append(("InternalIP", address))
    return tuple(found)


def gather_facts_now() -> NodeFacts:
    """Blocking (ALSA and the resolver): call it in a worker thread."""
    hostname = socket.gethostname()
    return NodeFacts(
        hostname=hostname,
        os=platform.system().lower() or "unknown",
        arch=machine_arch(),
        kernel_version=platform.release(),
        python=platform.python_version(),
        agent_version=mfx.__version__,
        sound_devices=sound_devices(),
        addresses=_addresses(hostname),
    )


async def gather_facts() -> NodeFacts:
    return await anyio.to_thread.run_sync(gather_facts_now)
