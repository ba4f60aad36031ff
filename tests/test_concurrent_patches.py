"""Many clients patching one object without a resourceVersion all succeed, as with kubectl:
a patch that lost a race is applied again to the newer object, never answered with 409."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.daemon_harness import ThreadDaemon

BASE = "/apis/mfx.musicfox.io/v1alpha1/pluginmanifests"
CLIENTS = 50
PATCHES = 4


def test_unconditional_patches_from_many_clients_never_conflict(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ThreadDaemon(home).running():
        transport = httpx.HTTPTransport(uds=str(home / "mfx.sock"))
        with httpx.Client(transport=transport, base_url="http://mfx", timeout=120) as http:
            created = http.post(BASE, json={
                "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "busy"},
                "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m busy", "config": {}}})
            assert created.status_code == 201, created.text
        codes: list[int] = []
        start = threading.Barrier(CLIENTS)

        def client(index: int) -> None:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(home / "mfx.sock")),
                              base_url="http://mfx", timeout=120) as http:
                start.wait()
                for round_ in range(PATCHES):
                    answer = http.patch(f"{BASE}/busy", json={"spec": {"config": {f"c{index}": round_}}},
                                        headers={"Content-Type": "application/merge-patch+json"})
                    codes.append(answer.status_code)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert codes.count(200) == CLIENTS * PATCHES, sorted(set(codes))
        with httpx.Client(transport=transport, base_url="http://mfx") as http:
            config = http.get(f"{BASE}/busy").json()["spec"]["config"]
        assert config == {f"c{i}": PATCHES - 1 for i in range(CLIENTS)}  # no patch was lost
