"""How ``mfx agent`` reaches the API: its flags, or a kubeconfig, made into an ``ApiConnection``.

A kubeconfig is read the way kubectl reads it: the current context's cluster (``server``,
``certificate-authority`` or ``-data``, ``insecure-skip-tls-verify``) and user (``token``,
``tokenFile``, ``client-certificate``/``client-key`` or their ``-data``). Relative paths are
relative to the kubeconfig's folder; ``-data`` fields are written to HOME/kube (0600),
because the TLS stack reads certificates from files.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from mfx.errors import BadRequestError
from mfx.store.api_connection import ApiConnection


def split_servers(text: str) -> tuple[str, ...]:
    """``URL[,URL...]`` as a tuple; ``HOST:PORT`` alone means https, as ``mfx --server`` reads it."""
    urls = [u.strip() for u in text.split(",") if u.strip()]
    return tuple(u if "://" in u else f"https://{u}" for u in urls)


def read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as error:
        raise BadRequestError(f"--token-file {path}: {error.strerror or error}; copy the API server's "
                              "HOME/token there (or use --kubeconfig)") from None
    if not token:
        raise BadRequestError(f"--token-file {path} is empty; copy the API server's HOME/token there")
    return token


def _named(doc: dict[str, Any], section: str, name: str, path: Path) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            inner = entry.get(section[:-1])
            return inner if isinstance(inner, dict) else {}
    raise BadRequestError(f"kubeconfig {path}: no {section[:-1]} named {name!r}; "
                          f"check current-context and its {section[:-1]} in the file")


def _file(value: Any, data: Any, base: Path, store_as: Path) -> Path | None:
    if data:
        store_as.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        store_as.write_bytes(base64.b64decode(data))
        os.chmod(store_as, 0o600)
        return store_as
    if value:
        candidate = Path(str(value)).expanduser()
        return candidate if candidate.is_absolute() else base / candidate
    return None


def from_kubeconfig(path: Path, home: Path) -> ApiConnection:
    """The connection the current context of the kubeconfig ``path`` names."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise BadRequestError(f"--kubeconfig {path}: cannot read it ({error}); "
                              "'mfx config kubeconfig' on the API server's machine writes one") from None
    if not isinstance(doc, dict) or not doc.get("current-context"):
        raise BadRequestError(f"--kubeconfig {path}: no current-context; "
                              "'kubectl config use-context NAME --kubeconfig FILE' sets one")
    context = _named(doc, "contexts", str(doc["current-context"]), path)
    cluster = _named(doc, "clusters", str(context.get("cluster", "")), path)
    user = _named(doc, "users", str(context.get("user", "")), path) if context.get("user") else {}
    base = path.resolve().parent
    if not cluster.get("server"):
        raise BadRequestError(f"--kubeconfig {path}: the cluster of the current context has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = read_token(_file(user["tokenFile"], None, base, base) or Path(user["tokenFile"]))
    kube = home / "kube"
    return ApiConnection(
        servers=split_servers(str(cluster["server"])),
        token=str(token) if token else None,
        ca_file=_file(cluster.get("certificate-authority"), cluster.get("certificate-authority-data"),
                      base, kube / "ca.crt"),
        client_cert=_file(user.get("client-certificate"), user.get("client-certificate-data"),
                          base, kube / "client.crt"),
        client_key=_file(user.get("client-key"), user.get("client-key-data"), base, kube / "client.key"),
        insecure_skip_verify=bool(cluster.get("insecure-skip-tls-verify")),
    )


def agent_connection(servers: str | None, token_file: Path | None, kubeconfig: Path | None,
                     ca_file: Path | None, home: Path) -> ApiConnection:
    """The connection the flags of ``mfx agent`` describe (``--server`` overrides the
    kubeconfig's server; ``--token-file`` and ``--ca-file`` its credentials)."""
    if kubeconfig is not None:
        base = from_kubeconfig(kubeconfig, home)
        return ApiConnection(
            servers=split_servers(servers) if servers else base.servers,
            token=read_token(token_file) if token_file else base.token,
            ca_file=ca_file or base.ca_file, client_cert=base.client_cert, client_key=base.client_key,
            insecure_skip_verify=base.insecure_skip_verify)
    if not servers:
        raise BadRequestError("give the API server: --server URL[,URL...] (or --kubeconfig FILE)")
    return ApiConnection(servers=split_servers(servers),
                         token=read_token(token_file) if token_file else None, ca_file=ca_file)
