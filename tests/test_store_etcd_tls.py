"""The etcd store over TLS with a client certificate (``--etcd-cacert/--etcd-cert/--etcd-key``),
against a real etcd member that requires one."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfx.errors import StoreUnavailableError
from mfx.store.etcd import EtcdStore
from mfx.store.etcd_keys import EtcdTLS, parse_store_url
from tests.etcd_env import ETCD, free_ports, wait_healthy


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                            ("client", "extendedKeyUsage=clientAuth")):
        (directory / f"{name}.ext").write_text(extension + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=directory)


@pytest.fixture(scope="module")
def tls_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One etcd member serving clients over TLS and requiring a client certificate."""
    root = tmp_path_factory.mktemp("etcd-tls")
    make_certificates(root)
    client_port, peer_port = free_ports(2)
    client_url, peer_url = f"https://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    log = (root / "etcd.log").open("wb")
    process = subprocess.Popen(
        [ETCD, "--name", "tls", "--data-dir", str(root / "data"),
         "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
         "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
         "--initial-cluster", f"tls={peer_url}", "--cert-file", str(root / "server.crt"),
         "--key-file", str(root / "server.key"), "--client-cert-auth", "--trusted-ca-file", str(root / "ca.crt"),
         "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_healthy([f"127.0.0.1:{client_port}"], root / "etcd.log",
                     tls=["--cacert", str(root / "ca.crt"), "--cert", str(root / "client.crt"),
                          "--key", str(root / "client.key")])
        yield f"etcd://127.0.0.1:{client_port}/tls-test", root
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.anyio
async def test_the_store_talks_to_etcd_over_tls_with_a_client_certificate(tls_etcd: tuple[str, Path]) -> None:
    url, certs = tls_etcd
    tls = EtcdTLS(certs / "ca.crt", certs / "client.crt", certs / "client.key")
    async with EtcdStore(parse_store_url(url, tls)) as store:
        created = await store.create({"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "AudioSink",
                                      "metadata": {"name": "card"}, "spec": {"device": "default"}})
        assert await store.get("AudioSink", "card") == created


@pytest.mark.anyio
async def test_without_the_client_certificate_etcd_is_not_reachable(tls_etcd: tuple[str, Path]) -> None:
    url, certs = tls_etcd
    store = EtcdStore(parse_store_url(url, EtcdTLS(ca_file=certs / "ca.crt")), timeout=1.0)
    with pytest.raises(StoreUnavailableError, match="cannot reach etcd at 127.0.0.1:"):
        await store.open()
