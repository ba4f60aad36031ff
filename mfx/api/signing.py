"""Ed25519 signatures over plugin package digests, the trust store, and the trust policy.

Keys are PEM files: the private key as unencrypted PKCS#8 (``-----BEGIN PRIVATE KEY-----``,
written with mode 0600), the public key as SubjectPublicKeyInfo
(``-----BEGIN PUBLIC KEY-----``). Both are what ``openssl genpkey -algorithm ed25519`` and
``openssl pkey -pubout`` produce, so keys can be made and inspected with standard tools.

What is signed is the package digest as text, ``sha256:<64 hex>`` (UTF-8), and a signature
travels as standard base64 of the 64 signature bytes. A key is identified by its
fingerprint, ``sha256:<hex>`` of the raw 32 public key bytes.

The trust store is a directory of named public keys (``<name>.pub``). The policy decides
what a package needs: a valid signature by a trusted key, unless it comes from a source
that is explicitly allowed to deliver unsigned plugins.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mfx.errors import SignatureError, UntrustedSourceError

KEY_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
TRUST_HINT = "trust the signer's public key with `mfx trust add NAME KEYFILE`"


def generate_keypair(private_path: Path, public_path: Path) -> str:
    """Write a new Ed25519 key pair as PEM files; return the public key's fingerprint.

    Refuses to overwrite an existing private key."""
    private_path, public_path = Path(private_path), Path(public_path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise SignatureError(
            f"{private_path} already exists; choose another path or delete the old key first"
        ) from exc
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return fingerprint(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise SignatureError(f"cannot read private key {path}: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        raise SignatureError(
            f"{path} is not an unencrypted PEM private key ({exc}); create one with "
            "`mfx plugin keygen` or `openssl genpkey -algorithm ed25519`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path} holds a {type(key).__name__}; expected an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read public key {path}: {exc.strerror}") from exc
    return parse_public_key(data, what=str(path))


def parse_public_key(data: bytes, *, what: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise SignatureError(
            f"{what} is not a PEM public key ('-----BEGIN PUBLIC KEY-----'): {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{what} holds a {type(key).__name__}; expected an Ed25519 key")
    return key


def fingerprint(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def sign_digest(private_key: Ed25519PrivateKey, digest: str) -> str:
    """Sign the digest text (``sha256:<hex>``); return the signature as base64."""
    return base64.b64encode(private_key.sign(digest.encode())).decode("ascii")


def verify_signature(public_key: Ed25519PublicKey, digest: str, signature: str) -> None:
    """Return if ``signature`` (base64) is ``public_key``'s signature of ``digest``;
    raise ``SignatureError`` otherwise."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"the signature is not valid base64: {exc}") from exc
    try:
        public_key.verify(raw, digest.encode())
    except InvalidSignature as exc:
        raise SignatureError(
            f"the signature does not match digest {digest} for key {fingerprint(public_key)}: "
            "the package was changed after it was signed, or signed by another key") from exc


@dataclass(frozen=True)
class TrustedKey:
    name: str
    fingerprint: str
    path: Path


class TrustStore:
    """Named trusted public keys, one PEM file per key in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, name: str) -> Path:
        if not KEY_NAME.match(name):
            raise SignatureError(
                f"trusted key name {name!r} is invalid: use lowercase letters, digits, '.', "
                "'_' and '-' (at most 63 characters, starting and ending with a letter or digit)")
        return self.directory / f"{name}.pub"

    def add(self, name: str, public_key_file: Path, *, replace: bool = False) -> TrustedKey:
        path = self._path(name)
        data = Path(public_key_file).read_bytes()
        key = parse_public_key(data, what=str(public_key_file))
        if path.exists() and not replace:
            raise SignatureError(
                f"a trusted key named {name!r} exists already; remove it first "
                f"(`mfx trust remove {name}`) or choose another name")
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return TrustedKey(name, fingerprint(key), path)

    def remove(self, name: str) -> None:
        path = self._path(name)
        if not path.exists():
            raise SignatureError(
                f"no trusted key named {name!r}; `mfx trust list` shows the names")
        path.unlink()

    def list(self) -> list[TrustedKey]:
        if not self.directory.is_dir():
            return []
        keys = []
        for path in sorted(self.directory.glob("*.pub")):
            key = load_public_key(path)
            keys.append(TrustedKey(path.stem, fingerprint(key), path))
        return keys

    def find(self, key_fingerprint: str) -> TrustedKey | None:
        return next((k for k in self.list() if k.fingerprint == key_fingerprint), None)

    def verify(self, digest: str, signature: str) -> str:
        """Return the name of the trusted key whose signature of ``digest`` this is."""
        keys = self.list()
        if not keys:
            raise UntrustedSourceError(
                f"no trusted keys in {self.directory}, so no signature can be accepted; "
                f"{TRUST_HINT}")
        for trusted in keys:
            try:
                verify_signature(load_public_key(trusted.path), digest, signature)
            except SignatureError:
                continue
            return trusted.name
        raise SignatureError(
            f"the signature of {digest} matches none of the trusted keys "
            f"({', '.join(k.name for k in keys)}): the package was changed after signing or "
            f"was signed by a key you do not trust; if you trust its signer, {TRUST_HINT}")


@dataclass(frozen=True)
class Policy:
    """What a plugin needs to be loaded.

    A signature by a trusted key is always enough. Without one (unsigned, or signed by a key
    that is not trusted) a plugin is accepted only from a source named in
    ``allow_unsigned_sources`` (e.g. a local development directory). A signature that does
    not verify under the key it names is refused from every source.
    """

    allow_unsigned_sources: frozenset[str] = field(default_factory=frozenset)

    def check(self, trust_store: TrustStore, *, what: str, digest: str,
              signature: str | None, key_fingerprint: str | None = None,
              source: str | None = None) -> str | None:
        """Return the trusted key name that signed, or None when accepted unsigned."""
        allowed_unsigned = source is not None and source in self.allow_unsigned_sources
        if signature is None:
            if allowed_unsigned:
                return None
            raise UntrustedSourceError(
                f"{what} is not signed and its source ({source or 'unnamed'}) is not allowed to "
                "deliver unsigned plugins; sign it (`mfx plugin pack DIR --key KEYFILE`) and "
                f"{TRUST_HINT}, or allow the source to deliver unsigned plugins")
        if key_fingerprint is not None:
            trusted = trust_store.find(key_fingerprint)
            if trusted is None:
                if allowed_unsigned:
                    return None
                raise UntrustedSourceError(
                    f"{what} is signed by key {key_fingerprint}, which is not trusted; if you "
                    f"trust its signer, {TRUST_HINT}")
            try:
                verify_signature(load_public_key(trusted.path), digest, signature)
            except SignatureError as exc:
                raise SignatureError(
                    f"{what}: bad signature for trusted key {trusted.name!r}: {exc}") from exc
            return trusted.name
        try:
            return trust_store.verify(digest, signature)
        except (SignatureError, UntrustedSourceError) as exc:
            if allowed_unsigned:
                return None
            raise type(exc)(f"{what}: {exc}") from exc
