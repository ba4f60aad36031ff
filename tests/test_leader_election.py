"""Leader election on Lease objects: one leader among candidates, handover on release or
expiry, no two leaders out of a conflict race, and fleet-wide controllers only on the leader."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from mfx.api.kinds import GIT_SOURCE, LEASE
from mfx.api.objects import Obj, parse_time
from mfx.cli.client import Client, Endpoint
from mfx.errors import AlreadyExistsError, ConflictError, StoreError
from mfx.node.client import StoreClient
from mfx.node.leader import LeaderElector
from mfx.node.lease import micro_time
from mfx.server.fleet_services import LEADER_LEASE, leader_identity, leader_service
from mfx.store.sqlite import SQLiteStore
from observability.metrics import Metrics
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.gitops_fixtures import Repo, gitsource_yaml, plugin_yaml, wait_for

API = "mfx.musicfox.io/v1alpha1"
DEADLINE = 15.0  # bounds a failing test only


class CountingClient(StoreClient):
    """The store client, counting the writes that lost a race."""

    def __init__(self, store: SQLiteStore) -> None:
        super().__init__(store)
        self.lost = 0

    async def create(self, obj: Obj) -> Obj:
        try:
            return await super().create(obj)
        except AlreadyExistsError:
            self.lost += 1
            raise

    async def update(self, obj: Obj) -> Obj:
        try:
            return await super().update(obj)
        except ConflictError:
            self.lost += 1
            raise


@dataclass
class Candidate:
    """An elector with its own cancel scope, and what its callbacks saw."""

    elector: LeaderElector
    board: Board
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    stopped: int = 0

    async def run(self) -> None:
        with self.scope:
            await self.elector.run(self._lead, self._stopped)

    async def _lead(self) -> None:
        self.board.enter(self)
        try:
            await anyio.sleep_forever()
        finally:
            self.board.leave(self)

    async def _stopped(self) -> None:
        self.stopped += 1


@dataclass
class Board:
    """Who leads now; the most leaders there ever were at once."""

    leaders: list[Candidate] = field(default_factory=list)
    most: int = 0
    changed: anyio.Event = field(default_factory=anyio.Event)

    def enter(self, candidate: Candidate) -> None:
        self.leaders.append(candidate)
        self.most = max(self.most, len(self.leaders))
        self.changed.set()
        self.changed = anyio.Event()

    def leave(self, candidate: Candidate) -> None:
        self.leaders.remove(candidate)

    async def wait_for(self, check: Callable[[], bool]) -> None:
        with anyio.fail_after(DEADLINE):
            while not check():
                await self.changed.wait()


def candidates(client: StoreClient, board: Board, names: list[str], *, lease: str = "election",
               duration: float = 30, metrics: Metrics | None = None) -> list[Candidate]:
    return [Candidate(LeaderElector(client, lease, name, lease_duration=duration, renew_deadline=duration * 2 / 3,
                                    retry_period=0.05, metrics=metrics), board) for name in names]


@pytest.mark.anyio
async def test_exactly_one_candidate_leads_and_release_hands_over_at_once(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "state.db") as store:
        client, board, metrics = StoreClient(store), Board(), Metrics()
        first, second = candidates(client, board, ["a", "b"], metrics=metrics)
        async with anyio.create_task_group() as group:
            group.start_soon(first.run)
            group.start_soon(second.run)
            await board.wait_for(lambda: len(board.leaders) == 1)
            leader = board.leaders[0]
            follower = second if leader is first else first
            assert leader.elector.is_leader and not follower.elector.is_leader
            assert metrics.registry.get_sample_value("mfx_leader_is_leader", {"lease": "election"}) == 1
            stored = await store.get("Lease", "election")
            held = stored["spec"]
            assert held["holderIdentity"] == leader.elector.identity and held["leaseTransitions"] == 0
            # The leader keeps renewing; the follower keeps out.
            with anyio.fail_after(DEADLINE):
                async for event in store.watch("Lease", int(stored["metadata"]["resourceVersion"])):
                    if event.object["spec"]["renewTime"] != held["renewTime"]:
                        break
            assert board.leaders == [leader] and not follower.elector.is_leader

            leader.scope.cancel()  # a clean shutdown: the lease is released
            await board.wait_for(lambda: board.leaders == [follower])
            lease = (await store.get("Lease", "election"))["spec"]
            assert lease["holderIdentity"] == follower.elector.identity
            assert lease["leaseTransitions"] == 1
            # Taken before the 30 s lease could have run out: it was released, not left to expire.
            assert parse_time(lease["acquireTime"]) < parse_time(held["renewTime"]) + timedelta(seconds=30)
            assert leader.stopped == 1 and not leader.elector.is_leader
            group.cancel_scope.cancel()
        assert board.most == 1


@pytest.mark.anyio
async def test_a_lease_its_dead_holder_stopped_renewing_is_taken_after_it_expires(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "state.db") as store:
        now = datetime.now(UTC)
        await store.create({"apiVersion": API, "kind": "Lease", "metadata": {"name": "election"},
                            "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 1, "leaseTransitions": 4,
                                     "acquireTime": micro_time(now), "renewTime": micro_time(now)}})
        board = Board()
        [candidate] = candidates(StoreClient(store), board, ["heir"], duration=3)
        async with anyio.create_task_group() as group:
            group.start_soon(candidate.run)
            await board.wait_for(lambda: bool(board.leaders))
            lease = (await store.get("Lease", "election"))["spec"]
            # Not before the ghost's lease ran out.
            assert parse_time(lease["acquireTime"]) > parse_time(micro_time(now))
            assert (parse_time(lease["acquireTime"]) - now).total_seconds() >= 1
            assert lease["holderIdentity"] == "heir" and lease["leaseTransitions"] == 5
            group.cancel_scope.cancel()


@pytest.mark.anyio
async def test_candidates_racing_for_a_lease_never_both_lead(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "state.db") as store:
        client, board = CountingClient(store), Board()
        racers = candidates(client, board, [f"c{i}" for i in range(5)])
        async with anyio.create_task_group() as group:
            for racer in racers:
                group.start_soon(racer.run)
            # Hand the lease over again and again: every release starts a race among the rest.
            def new_leader() -> bool:
                return len(board.leaders) == 1 and not board.leaders[0].scope.cancel_called

            for _ in range(len(racers) - 1):
                await board.wait_for(new_leader)
                assert sum(c.elector.is_leader for c in racers) == 1
                board.leaders[0].scope.cancel()
            await board.wait_for(new_leader)
            group.cancel_scope.cancel()
        assert board.most == 1
        assert client.lost > 0  # the races did happen: writes lost with a conflict
        lease = (await store.get("Lease", "election"))["spec"]
        assert lease["leaseTransitions"] == len(racers) - 1


def test_gitsource_syncs_only_on_the_leader(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    held_for = 2

    async def another_daemon_leads() -> None:
        async with SQLiteStore(home / "state.db") as store:
            now = micro_time(datetime.now(UTC))
            await store.create({"apiVersion": API, "kind": "Lease", "metadata": {"name": LEADER_LEASE},
                                "spec": {"holderIdentity": "elsewhere_1", "leaseDurationSeconds": held_for,
                                         "acquireTime": now, "renewTime": now}})

    anyio.run(another_daemon_leads)
    repo = Repo.create(tmp_path / "git")
    revision = repo.commit("one plugin", {"plugins/alpha.yaml": plugin_yaml("alpha")})
    daemon = ThreadDaemon(home, services=[leader_service], node_name="den", leader_lease_seconds=3,
                          leader_renew_deadline=2, leader_retry_period=0.1)
    with daemon.running(), Client(Endpoint(socket=home / "mfx.sock")) as client:
        assert daemon.context is not None and daemon.context.leader is not None
        applied = run_cli(home, "apply", "-f", "-", input=gitsource_yaml("plugins", repo.url))
        assert applied.exit_code == 0, applied.output
        # While another daemon holds the lease, this one does not sync.
        deadline = time.monotonic() + DEADLINE
        while True:
            # This daemon's side is looked at first: it leads, and then syncs, only after its
            # write of the Lease, so when the Lease read afterwards still names the other
            # holder, neither can have happened. (Read the other way round, the takeover could
            # land between the two reads.)
            leading = daemon.context.leader.is_leader
            synced = "status" in client.get(GIT_SOURCE, "plugins")
            if client.get(LEASE, LEADER_LEASE)["spec"]["holderIdentity"] != "elsewhere_1":
                break
            assert not synced, "a daemon that does not lead synced"
            assert not leading
            assert time.monotonic() < deadline, "the expired lease was never taken over"
            time.sleep(0.05)
        source = wait_for(client, GIT_SOURCE, "plugins",
                          lambda o: (o.get("status") or {}).get("lastAppliedRevision") == f"main@sha1:{revision}",
                          timeout=DEADLINE, what="to sync once this daemon leads")
        assert source["status"]["lastAppliedRevision"].endswith(revision)
        assert daemon.context.leader.is_leader
        leases = run_cli(home, "get", "leases").output.splitlines()
        assert leases[1].split()[:2] == [LEADER_LEASE, leader_identity(daemon.config)]
    # A clean shutdown released the lease: the next daemon need not wait.
    async def holder() -> str:
        async with SQLiteStore(home / "state.db") as store:
            return str((await store.get("Lease", LEADER_LEASE))["spec"]["holderIdentity"])

    assert anyio.run(holder) == ""


def test_a_daemon_restarted_after_a_crash_leads_again_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    daemon = ThreadDaemon(home, services=[leader_service], node_name="den", leader_lease_seconds=3600,
                          leader_renew_deadline=2, leader_retry_period=0.1)

    async def crashed_while_leading() -> None:  # its lease is fresh and was never released
        async with SQLiteStore(home / "state.db") as store:
            now = micro_time(datetime.now(UTC))
            await store.create({"apiVersion": API, "kind": "Lease", "metadata": {"name": LEADER_LEASE},
                                "spec": {"holderIdentity": leader_identity(daemon.config),
                                         "leaseDurationSeconds": 3600, "acquireTime": now, "renewTime": now}})

    anyio.run(crashed_while_leading)
    with daemon.running():
        assert daemon.context is not None and daemon.context.leader is not None
        deadline = time.monotonic() + DEADLINE  # a stranger would wait the lease's hour out
        while not daemon.context.leader.is_leader:
            assert time.monotonic() < deadline, "the restarted daemon did not take its own lease back"
            time.sleep(0.05)


class FlakyClient(StoreClient):
    """The store client, until ``broken``: then every call fails as an unreachable API would."""

    broken = False

    async def get(self, kind: str, name: str) -> Obj:
        if self.broken:
            raise StoreError("the API server is unreachable")
        return await super().get(kind, name)

    async def update(self, obj: Obj) -> Obj:
        if self.broken:
            raise StoreError("the API server is unreachable")
        return await super().update(obj)


@pytest.mark.anyio
async def test_a_leader_that_cannot_renew_stops_leading_before_another_takes_over(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "state.db") as store:
        board = Board()
        cut_off = FlakyClient(store)
        [first] = candidates(cut_off, board, ["cut-off"], duration=2)
        [second] = candidates(StoreClient(store), board, ["standby"], duration=2)
        async with anyio.create_task_group() as group:
            group.start_soon(first.run)
            await board.wait_for(lambda: board.leaders == [first])
            group.start_soon(second.run)
            cut_off.broken = True
            await board.wait_for(lambda: board.leaders == [second])
            assert first.stopped == 1 and not first.elector.is_leader
            group.cancel_scope.cancel()
        # The cut-off leader gave up (renew deadline) before its lease could be taken (lease duration).
        assert board.most == 1
