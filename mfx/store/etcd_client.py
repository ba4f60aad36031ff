"""Talking to an etcd cluster: aetcd's gRPC stubs, one channel per member, failover between them.

aetcd's ``Client`` talks to one endpoint, so the store uses aetcd's generated stubs and
request types directly over its own channels (plain or TLS): a call goes to the member that
answered last, and on UNAVAILABLE or a deadline moves on to the next one, round after round,
until the call's deadline. That rides out a killed member and a leader election; when no
member can answer (quorum lost, all down) the caller gets a ``StoreError`` (HTTP 503) that
names etcd and the endpoints, never a gRPC traceback.

A call retried after a deadline may have been applied by the member that timed out; the
store's writes are transactions comparing mod_revision, so a repeat is refused rather than
applied twice.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import grpc
from aetcd import rpc

from mfx.errors import GoneError, StoreError, StoreUnavailableError
from mfx.store.etcd_keys import EtcdTarget

T = TypeVar("T")

# Retry the next member at once; after a whole round of failures wait this long (an election
# on a healthy cluster takes about one election timeout).
_ROUND_PAUSE = 0.05
_RETRIED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
# A restarted member is found again within a second, not after gRPC's default 2-minute backoff.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def _retried(error: grpc.aio.AioRpcError) -> bool:
    """Whether another member (or the same one, later) may answer. A member without quorum
    can also end a linearizable read with its own server-side deadline, which gRPC carries as
    UNKNOWN "context deadline exceeded" rather than DEADLINE_EXCEEDED."""
    if error.code() in _RETRIED:
        return True
    return error.code() == grpc.StatusCode.UNKNOWN and "deadline exceeded" in (error.details() or "")


def _read(path: Any) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise StoreError(f"cannot read the etcd TLS file {path}: {error.strerror}") from None


class EtcdConnection:
    """Channels to every member of ``target``; ``kv``/``lease``/``watch_stream`` with failover."""

    def __init__(self, target: EtcdTarget, *, timeout: float = 5.0) -> None:
        if not target.endpoints:
            raise StoreError("--store etcd://: name at least one etcd member, e.g. etcd://127.0.0.1:2379")
        self.target = target
        self.timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._current = 0
        self._credentials: grpc.ChannelCredentials | None = None
        if target.tls.enabled:
            self._credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(target.tls.ca_file),
                private_key=_read(target.tls.key_file),
                certificate_chain=_read(target.tls.cert_file),
            )

    @property
    def endpoints(self) -> str:
        return ",".join(self.target.endpoints)

    def _channel(self, endpoint: str) -> grpc.aio.Channel:
        channel = self._channels.get(endpoint)
        if channel is None:
            if self._credentials is not None:
                channel = grpc.aio.secure_channel(endpoint, self._credentials, options=_CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.insecure_channel(endpoint, options=_CHANNEL_OPTIONS)
            self._channels[endpoint] = channel
        return channel

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    async def _call(self, what: str, attempt: Callable[[grpc.aio.Channel, float], Awaitable[T]]) -> T:
        """``attempt`` on the current member, then the next ones, until the deadline."""
        endpoints = self.target.endpoints
        deadline = time.monotonic() + self.timeout
        failures: dict[str, str] = {}
        tried = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            endpoint = endpoints[self._current % len(endpoints)]
            try:
                return await attempt(self._channel(endpoint), remaining)
            except grpc.aio.AioRpcError as error:
                if not _retried(error):
                    raise translate(error, self.endpoints) from None
                failures[endpoint] = _reason(error)
            self._current = (self._current + 1) % len(endpoints)
            tried += 1
            if tried % len(endpoints) == 0:
                await anyio.sleep(min(_ROUND_PAUSE, max(0.0, deadline - time.monotonic())))
        detail = "; ".join(f"{endpoint}: {why}" for endpoint, why in failures.items()) or "no answer"
        raise StoreUnavailableError(
            f"etcd at {self.endpoints} did not answer {what} within {self.timeout:g} s ({detail}): "
            "its members are down or have lost quorum; retry once a majority of them is back "
            "(a write answered so was not acknowledged: it may or may not have been applied)",
            detail=detail,
        )

    async def kv(self, method: str, request: Any) -> Any:
        """A KV call (``Range``, ``Txn``, ``Compaction``...) with failover."""

        async def attempt(channel: grpc.aio.Channel, seconds: float) -> Any:
            return await getattr(rpc.KVStub(channel), method)(request, timeout=seconds)

        return await self._call(f"a {method} request", attempt)

    async def lease_grant(self, ttl: int) -> int:
        async def attempt(channel: grpc.aio.Channel, seconds: float) -> Any:
            return await rpc.LeaseStub(channel).LeaseGrant(rpc.LeaseGrantRequest(TTL=ttl), timeout=seconds)

        response = await self._call("a lease request", attempt)
        return int(response.ID)

    async def watch_stream(self, create: Any) -> Any:
        """A Watch stream on some member, created with ``create`` (a ``WatchCreateRequest``);
        answers ``(call, first response)``: the caller reads the rest from ``call``."""

        async def attempt(channel: grpc.aio.Channel, seconds: float) -> Any:
            call = rpc.WatchStub(channel).Watch()
            try:
                with anyio.fail_after(seconds):
                    await call.write(rpc.WatchRequest(create_request=create))
                    first = await call.read()
            except TimeoutError:
                call.cancel()
                raise grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(),
                                           grpc.aio.Metadata(), "watch create timed out") from None
            except BaseException:
                call.cancel()
                raise
            if first is grpc.aio.EOF:
                raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(),
                                           grpc.aio.Metadata(), "watch stream closed")
            return call, first

        return await self._call("a watch request", attempt)


def _reason(error: grpc.aio.AioRpcError) -> str:
    details = error.details() or error.code().name
    if "Connection refused" in details:
        return "connection refused"
    return details


def translate(error: grpc.aio.AioRpcError, endpoints: str) -> StoreError | GoneError:
    """An etcd error that retrying elsewhere will not fix, as the store's error."""
    details = error.details() or error.code().name
    if error.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
        return GoneError(f"too old resource version: etcd compacted it ({details}); list again")
    return StoreError(f"etcd at {endpoints} refused the request: {details}")
