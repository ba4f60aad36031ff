"""Compacting etcd's history, the way kube-apiserver does, so its database does not grow
without end.

etcd keeps every revision of every key until it is compacted; left alone its database fills
its quota (2 GiB by default) and the cluster turns read-only (alarm NOSPACE). kube-apiserver
compacts every five minutes (``--etcd-compaction-interval``) to the revision it saw one
interval before, so a watcher always has at least one interval to resume from (older
revisions answer 410, and the watcher lists again). mfx does the same.

Several daemons may share one etcd: each round is a transaction on the key
``PREFIX/compact_rev_key`` that succeeds only when the key's version is the one this daemon
saw last, so in each interval one daemon wins and compacts, and the others just learn the
new version (the key's version counts the rounds, its value is the revision recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from aetcd import rpc

from mfx.errors import GoneError, MfxError

log = logging.getLogger(__name__)

# A KV call of the store's (method name, request) -> response, with failover.
KvCall = Callable[[str, Any], Awaitable[Any]]


@dataclass
class CompactionState:
    """What this daemon saw at its last round."""

    version: int = 0  # the compaction key's version (0: the key does not exist yet)
    revision: int = 0  # the revision recorded then: the next round compacts up to it


async def compaction_round(kv: KvCall, key: bytes, state: CompactionState) -> tuple[CompactionState, int | None]:
    """One round: record the current revision and compact to the one recorded a round ago
    (when this daemon wins the round). Returns the new state and the revision compacted to
    (None when nothing was compacted)."""
    response = await kv("Txn", rpc.TxnRequest(
        compare=[rpc.Compare(key=key, target=rpc.Compare.VERSION, result=rpc.Compare.EQUAL,
                             version=state.version)],
        success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=str(state.revision).encode()))],
        failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))],
    ))
    current = int(response.header.revision)
    if not response.succeeded:
        kvs = response.responses[0].response_range.kvs
        version = int(kvs[0].version) if kvs else 0
        return CompactionState(version, current), None
    compacted: int | None = None
    if state.revision > 0:  # the first round only records where history starts
        try:
            await kv("Compact", rpc.CompactionRequest(revision=state.revision, physical=False))
            compacted = state.revision
        except GoneError:
            pass  # compacted further already (by hand, or another prefix's daemon): nothing to do
    return CompactionState(state.version + 1, current), compacted


async def run_compaction(kv: KvCall, key: bytes, interval: float, what: str) -> None:
    """A round every ``interval`` seconds until cancelled; a failed round is logged and the
    next one tries again (etcd may be without quorum for a while)."""
    state = CompactionState()
    while True:
        await anyio.sleep(interval)
        try:
            state, compacted = await compaction_round(kv, key, state)
        except MfxError as error:
            log.warning("compacting %s failed (%s); trying again in %g s", what, error, interval)
            continue
        if compacted is not None:
            log.info("compacted %s up to revision %d", what, compacted)
