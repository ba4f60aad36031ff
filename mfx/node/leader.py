"""Leader election on a Lease, the client-go way.

```python
elector = LeaderElector(client, "mfx-controllers", identity="player-1_4242",
                        lease_duration=15, renew_deadline=10, retry_period=2)
await elector.run(on_started_leading=run_controllers)      # until cancelled
```

A candidate tries every ``retry_period`` to take the Lease, which it may only when the Lease
is released (no holder) or expired (``renewTime + leaseDurationSeconds`` has passed). Every
write is an update conditional on the resourceVersion it read, so of candidates racing for
one Lease exactly one wins (the others get a conflict and read again). The leader renews every
``retry_period``; when it has not managed to for ``renew_deadline`` (shorter than the lease, so
it gives up before anyone else may take over), or finds another holder, it stops leading:
``on_started_leading`` is cancelled, ``on_stopped_leading`` runs, and it campaigns again.
Cancelling ``run`` releases a held Lease (holder emptied), so a successor takes over at its
next try instead of after the lease duration.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping

import anyio

from mfx.api.objects import Obj, now
from mfx.errors import AlreadyExistsError, ConflictError, MfxError, NotFoundError
from mfx.node.client import ObjectClient
from mfx.node.lease import LEASE_KIND, LeaseRecord, new_lease, with_record
from observability.metrics import Metrics

log = logging.getLogger("mfx.node.leader")

Callback = Callable[[], Awaitable[None]]
# How long a release may take on the way out before the lease is left to run out instead.
RELEASE_TIMEOUT = 5.0


class _Attempt(enum.Enum):
    HELD = "held"  # we hold the lease now (acquired or renewed)
    TAKEN = "taken"  # someone else holds it and it has not expired
    FAILED = "failed"  # a conflict or an error: try again


class LeaderElector:
    def __init__(self, client: ObjectClient, lease_name: str, identity: str, *, lease_duration: float = 15.0,
                 renew_deadline: float = 10.0, retry_period: float = 2.0, metrics: Metrics | None = None,
                 labels: Mapping[str, str] | None = None) -> None:
        if not identity:
            raise ValueError("a leader election candidate needs a non-empty identity")
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError(f"leader election needs 0 < retry period ({retry_period}) < renew deadline "
                             f"({renew_deadline}) < lease duration ({lease_duration}): a leader must give up "
                             "before its lease can be taken")
        self.client = client
        self.lease_name = lease_name
        self.identity = identity
        # Leases count whole seconds; rounding up never shortens what the leader relies on.
        self.lease_duration = max(1, math.ceil(lease_duration))
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.metrics = metrics
        self.labels = dict(labels or {})
        self._leading = False
        self._set_gauge(False)

    @property
    def is_leader(self) -> bool:
        return self._leading

    async def run(self, on_started_leading: Callback, on_stopped_leading: Callback | None = None) -> None:
        """Campaign, lead while holding the lease, campaign again when it is lost; until cancelled."""
        try:
            while True:
                await self._acquire()
                await self._lead(on_started_leading)
                if on_stopped_leading is not None:
                    await on_stopped_leading()
        finally:
            if self._leading:
                self._stop()
                with anyio.CancelScope(shield=True), anyio.move_on_after(RELEASE_TIMEOUT):
                    await self._release()
                if on_stopped_leading is not None:
                    with anyio.CancelScope(shield=True):
                        await on_stopped_leading()

    # --- campaigning and leading ------------------------------------------------------------

    async def _acquire(self) -> None:
        while True:
            if await self._try_acquire_or_renew() is _Attempt.HELD:
                self._leading = True
                self._set_gauge(True)
                log.info("%s became the leader of lease %s", self.identity, self.lease_name)
                return
            await anyio.sleep(self._jittered())

    async def _lead(self, on_started_leading: Callback) -> None:
        """Run ``on_started_leading`` while renewing; return once leadership is lost."""
        async def leading() -> None:
            await on_started_leading()

        async with anyio.create_task_group() as group:
            group.start_soon(leading)
            await self._renew_until_lost()
            group.cancel_scope.cancel()
        self._stop()

    async def _renew_until_lost(self) -> None:
        renewed = anyio.current_time()
        while True:
            await anyio.sleep(self.retry_period)
            left = renewed + self.renew_deadline - anyio.current_time()
            attempt = _Attempt.FAILED
            started = anyio.current_time()
            with anyio.move_on_after(max(left, 0.0)):
                attempt = await self._try_acquire_or_renew()
            if attempt is _Attempt.HELD:
                renewed = started
            elif attempt is _Attempt.TAKEN:
                log.warning("%s lost lease %s to another holder", self.identity, self.lease_name)
                return
            elif anyio.current_time() - renewed >= self.renew_deadline:
                log.warning("%s could not renew lease %s within %ss; it stops leading",
                            self.identity, self.lease_name, self.renew_deadline)
                return

    def _stop(self) -> None:
        if self._leading:
            log.info("%s stopped leading lease %s", self.identity, self.lease_name)
        self._leading = False
        self._set_gauge(False)

    def _jittered(self) -> float:
        # client-go's jitter: candidates that failed together do not retry in lockstep.
        return self.retry_period * (1.0 + 0.2 * random.random())  # noqa: S311 - not for security

    # --- one attempt -------------------------------------------------------------------------

    async def _try_acquire_or_renew(self) -> _Attempt:
        at = now()
        try:
            lease = await self.client.get(LEASE_KIND, self.lease_name)
        except NotFoundError:
            record = LeaseRecord(self.identity, self.lease_duration, at, at, 0)
            try:
                await self.client.create(new_lease(self.lease_name, record, self.labels))
            except AlreadyExistsError:
                return _Attempt.FAILED
            except MfxError as error:
                log.warning("%s could not create lease %s: %s", self.identity, self.lease_name, error)
                return _Attempt.FAILED
            return _Attempt.HELD
        except MfxError as error:
            log.warning("%s could not read lease %s: %s", self.identity, self.lease_name, error)
            return _Attempt.FAILED
        old = LeaseRecord.of(lease)
        mine = old.holder == self.identity
        if not mine and not old.is_free(at):
            return _Attempt.TAKEN
        record = LeaseRecord(
            holder=self.identity, duration_seconds=self.lease_duration,
            acquire_time=old.acquire_time if mine and old.acquire_time is not None else at,
            renew_time=at, transitions=old.transitions if mine else old.transitions + 1)
        return await self._write(lease, record)

    async def _write(self, lease: Obj, record: LeaseRecord) -> _Attempt:
        try:
            await self.client.update(with_record(lease, record))
        except ConflictError:
            return _Attempt.FAILED  # another candidate wrote first: read again at the next try
        except MfxError as error:
            log.warning("%s could not write lease %s: %s", self.identity, self.lease_name, error)
            return _Attempt.FAILED
        return _Attempt.HELD

    async def _release(self) -> None:
        """Empty the holder so a successor need not wait for the lease to run out."""
        try:
            lease = await self.client.get(LEASE_KIND, self.lease_name)
            old = LeaseRecord.of(lease)
            if old.holder != self.identity:
                return
            at = now()
            # As client-go: a one-second lease, renewed now, with nobody holding it.
            await self.client.update(with_record(lease, LeaseRecord("", 1, at, at, old.transitions)))
            log.info("%s released lease %s", self.identity, self.lease_name)
        except MfxError as error:
            log.warning("%s could not release lease %s (it runs out by itself): %s",
                        self.identity, self.lease_name, error)

    def _set_gauge(self, leading: bool) -> None:
        if self.metrics is not None:
            self.metrics.leader_is_leader.labels(self.lease_name).set(1 if leading else 0)
