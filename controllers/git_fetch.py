"""Fetching a GitSource's revision with the real ``git`` binary, and reading its manifests.

One bare repository per source caches the objects (``$MFX_HOME/git/<name>/``); each sync
fetches only the ref it follows (``git fetch URL refs/heads/main``), resolves it to a commit
SHA, and reads every ``*.yaml|*.yml|*.json`` under ``path`` at that commit straight from the
object store (``git ls-tree`` names the files, one ``git cat-file --batch`` streams them): no
worktree, no checkout, nothing left half-written, and other files are never read.

Credentials are read by the daemon at fetch time and given to git through its environment,
never through argv (``ps`` shows argv) and never in a message: an SSH key becomes
``GIT_SSH_COMMAND``; a token becomes an ``http.extraHeader`` through ``GIT_CONFIG_COUNT``/
``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` (git's environment form of ``git -c``).
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio

from mfx import cpu_affinity
from mfx.api.models import GitCredentials, GitRef
from mfx.errors import GitError, SourcePathError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_SUFFIX_BYTES = tuple(suffix.encode() for suffix in MANIFEST_SUFFIXES)
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_REDACTED = "<redacted>"


@dataclass(frozen=True)
class GitAuth:
    """What git needs to authenticate: environment only, so secrets stay out of argv."""

    env: Mapping[str, str]
    secrets: tuple[str, ...] = ()  # values to scrub from any message

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, _REDACTED)
        return text


def auth_for(credentials: GitCredentials | None) -> GitAuth:
    """The environment for ``credentials``; reads the token file now (raises GitError if unreadable)."""
    env: dict[str, str] = {}
    secrets: list[str] = []
    if credentials is None:
        return GitAuth(env)
    if credentials.ssh_key_file:
        key = str(Path(credentials.ssh_key_file).expanduser())
        env["GIT_SSH_COMMAND"] = (f"ssh -i {shlex.quote(key)} -o IdentitiesOnly=yes "
                                  "-o StrictHostKeyChecking=accept-new -o BatchMode=yes")
    if credentials.token_file:
        path = Path(credentials.token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise GitError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
        if not token:
            raise GitError(f"the token file {path} is empty")
        header = f"Authorization: Bearer {token}"
        env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": header})
        secrets += [header, token]
    return GitAuth(env, tuple(secrets))


def git_env(auth: GitAuth) -> dict[str, str]:
    """The environment of every git call: never prompt, never read the user's global config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "SSH_ASKPASS"))}
    env.update({
        "GIT_TERMINAL_PROMPT": "0",  # fail instead of asking for a password on a terminal
        "GIT_ASKPASS": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
    })
    env.update(auth.env)
    return env


def summarize_stderr(stderr: str, auth: GitAuth | None = None, *, limit: int = 300) -> str:
    """git's last meaningful lines ("fatal: ..."), secrets scrubbed, shortened to one line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    useful = [line for line in lines if line.startswith(("fatal:", "error:", "ERROR:"))] or lines[-2:]
    text = "; ".join(useful) or "git failed without a message"
    if auth is not None:
        text = auth.redact(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalize_path(path: str) -> str:
    """``spec.path`` as a repository-relative directory ("" for the root)."""
    if path.startswith("/"):
        raise SourcePathError(f"spec.path {path!r} must be relative to the repository root (e.g. ./plugins)")
    norm = posixpath.normpath(path or ".")
    if norm == ".":
        return ""
    if norm == ".." or norm.startswith("../"):
        raise SourcePathError(f"spec.path {path!r} leaves the repository")
    return norm


def revision_string(ref: GitRef, sha: str) -> str:
    """Flux's revision format: ``main@sha1:<hash>``, ``v1.0@sha1:<hash>``, ``sha1:<hash>``."""
    if ref.branch:
        return f"{ref.branch}@sha1:{sha}"
    if ref.tag:
        return f"{ref.tag}@sha1:{sha}"
    return f"sha1:{sha}"


@dataclass(frozen=True)
class ManifestFile:
    name: str  # relative to the repository root, as messages show it
    data: bytes  # as committed: decoded (and refused when not UTF-8) where it is validated


class GitRepository:
    """A bare cache repository for one source, driven through ``git`` subprocesses."""

    def __init__(self, cache_dir: Path, url: str, auth: GitAuth | None = None, *, timeout: float = 60.0) -> None:
        self.cache_dir = Path(cache_dir)
        self.url = url
        self.auth = auth or GitAuth({})
        self.timeout = timeout

    async def _git(self, *args: str, cwd: Path | None = None, check: bool = True,
                   input: bytes | None = None) -> tuple[int, bytes, str]:
        command = ["git", *args]
        # git reads nothing from the daemon's stdin: ``input`` when given, else none at all.
        stdin = {"input": input} if input is not None else {"stdin": None}
        try:
            with anyio.fail_after(self.timeout):
                with cpu_affinity.spawning():  # git gets every CPU the daemon has
                    done = await anyio.run_process(command, cwd=cwd or self.cache_dir, env=git_env(self.auth),
                                                   check=False, **stdin)
        except TimeoutError:
            raise GitError(f"git {args[0]} did not finish within {self.timeout:g}s") from None
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror or exc}") from None
        stderr = done.stderr.decode("utf-8", errors="replace")
        if check and done.returncode != 0:
            raise GitError(f"git {args[0]} failed: {summarize_stderr(stderr, self.auth)}")
        return done.returncode, done.stdout, stderr

    async def ensure(self) -> None:
        if (self.cache_dir / "HEAD").exists():
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        await self._git("init", "--bare", "--quiet", "--template=", ".")

    def _fetch_url(self) -> str:
        """A local path as git understands it (relative paths are made absolute)."""
        if "://" in self.url or re.match(r"^[^/]+@[^:]+:", self.url):
            return self.url
        return str(Path(self.url).expanduser().resolve())

    async def fetch(self, ref: GitRef) -> str:
        """Fetch ``ref`` and return the commit SHA it names now."""
        await self.ensure()
        url = self._fetch_url()
        if ref.commit:
            return await self._fetch_commit(url, ref.commit)
        full = f"refs/tags/{ref.tag}" if ref.tag else f"refs/heads/{ref.branch or 'main'}"
        local = f"refs/mfx/{'tags' if ref.tag else 'heads'}/{ref.tag or ref.branch or 'main'}"
        code, _, stderr = await self._git("fetch", "--quiet", "--force", "--no-tags", "--no-write-fetch-head",
                                          "--", url, f"+{full}:{local}", check=False)
        if code != 0:
            what = f"tag {ref.tag}" if ref.tag else f"branch {ref.branch or 'main'}"
            summary = summarize_stderr(stderr, self.auth)
            if "couldn't find remote ref" in stderr:
                raise GitError(f"{what} not found in {self.url}: {summary}")
            raise GitError(f"fetching {what} from {self.url} failed: {summary}")
        return await self.resolve(f"{local}^{{commit}}")

    async def _fetch_commit(self, url: str, commit: str) -> str:
        if await self._has_commit(commit):
            return await self.resolve(f"{commit}^{{commit}}")
        if _FULL_SHA.match(commit):
            code, _, _ = await self._git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", url,
                                         commit, check=False)
            if code == 0 and await self._has_commit(commit):
                return await self.resolve(f"{commit}^{{commit}}")
        # A short SHA, or a server that refuses unadvertised wants: fetch every branch and tag.
        code, _, stderr = await self._git("fetch", "--quiet", "--force", "--no-write-fetch-head", "--", url,
                                          "+refs/heads/*:refs/mfx/heads/*", "+refs/tags/*:refs/mfx/tags/*",
                                          check=False)
        if code != 0:
            raise GitError(f"fetching {self.url} failed: {summarize_stderr(stderr, self.auth)}")
        if not await self._has_commit(commit):
            raise GitError(f"commit {commit} not found in {self.url}")
        return await self.resolve(f"{commit}^{{commit}}")

    async def _has_commit(self, commit: str) -> bool:
        code, _, _ = await self._git("cat-file", "-e", f"{commit}^{{commit}}", check=False)
        return code == 0

    async def resolve(self, rev: str) -> str:
        _, out, _ = await self._git("rev-parse", "--verify", "--quiet", rev)
        return out.decode().strip()

    async def read_manifests(self, sha: str, path: str) -> list[ManifestFile]:
        """Every manifest file under ``path`` at ``sha``, sorted by name (repository-relative)."""
        base = normalize_path(path)
        if base:
            code, out, _ = await self._git("cat-file", "-t", f"{sha}:{base}", check=False)
            if code != 0 or out.decode().strip() != "tree":
                raise GitError(f"path {base!r} is not a directory in revision {sha[:12]}")
        _, listing, _ = await self._git("ls-tree", "-r", "-z", "--full-tree", sha, *(["--", base] if base else []))
        wanted = _manifest_blobs(listing)
        if not wanted:
            return []
        _, batch, _ = await self._git("cat-file", "--batch", input=b"".join(blob + b"\n" for blob, _ in wanted))
        files = [ManifestFile(name, data) for (_, name), data in zip(wanted, _batch_contents(batch), strict=True)]
        files.sort(key=lambda f: f.name)
        return files


def _manifest_blobs(listing: bytes) -> list[tuple[bytes, str]]:
    """(blob id, path) of each regular manifest file in ``git ls-tree -r -z`` output (symbolic
    links and submodules are not files of the revision)."""
    blobs: list[tuple[bytes, str]] = []
    for entry in listing.split(b"\0"):
        info, _, name = entry.partition(b"\t")
        mode, _, rest = info.partition(b" ")
        kind, _, blob = rest.partition(b" ")
        if kind == b"blob" and mode in (b"100644", b"100755") and name.endswith(_SUFFIX_BYTES):
            blobs.append((blob, name.decode("utf-8", errors="surrogateescape")))
    return blobs


def _batch_contents(batch: bytes) -> list[bytes]:
    """The contents in ``git cat-file --batch`` output: a ``<id> <type> <size>`` line, that
    many bytes and a newline per object."""
    contents: list[bytes] = []
    at = 0
    while at < len(batch):
        end = batch.index(b"\n", at)
        header = batch[at:end].split(b" ")
        if len(header) != 3:
            raise GitError(f"git cat-file: unexpected answer {batch[at:end][:80]!r}")
        size = int(header[2])
        contents.append(batch[end + 1:end + 1 + size])
        at = end + 1 + size + 1
    return contents
