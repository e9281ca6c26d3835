"""Replicas share a service's bus partitions: each consumes its fair share, and a dead
replica's partitions are taken over by the live ones.

The fair share is pure arithmetic (tested without servers); the sharing and the takeover
run real replica processes (tests/support/partition_replica.py) on the real broker and store.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest
from pymongo import MongoClient

from desk_contracts import make_envelope
from desk_contracts.events import Person, RequestReceived
from desk_contracts.topology import Topology, queue_spec
from desk_runtime.bus import Bus, delete_topology
from desk_runtime.membership import fair_share
from desk_runtime.partitions import owners, status
from tests.support.stack import wait_until

ROOT = Path(__file__).resolve().parents[2]
SPEC = queue_spec("boards.requests")
LEASE_SECONDS = 2.0


# --- the fair share --------------------------------------------------------------------

@pytest.mark.parametrize("partitions", [1, 4, 8, 16])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 5])
def test_every_partition_has_one_owner_and_shares_differ_by_at_most_one(partitions, replicas):
    members = [f"boards@host-{i}:{100 + i}:{uuid.uuid4().hex[:6]}" for i in range(replicas)]
    share = fair_share(members, partitions)
    owned = [i for parts in share.values() for i in parts]
    assert sorted(owned) == list(range(partitions))  # each exactly once
    sizes = sorted(len(parts) for parts in share.values())
    assert sizes[-1] - sizes[0] <= 1
    # every replica computes the same answer, whatever order it read the members in
    assert fair_share(list(reversed(members)), partitions) == share


def test_a_joining_replica_takes_partitions_without_reshuffling_the_rest():
    members = [f"notify@host-{i}:{i}:abc{i}" for i in range(3)]
    before = fair_share(members, 16)
    after = fair_share([*members, "notify@host-9:9:new999"], 16)
    moved = sum(len(before[m] - after[m]) for m in members)
    assert len(after["notify@host-9:9:new999"]) == 4
    assert moved <= 6  # mostly what the new one takes (4), not a reshuffle of 16


# --- replicas on the real broker and store ---------------------------------------------

class Replicas:
    def __init__(self, amqp_url: str, mongo_url: str, namespace: str, logs: Path):
        self.env = {**os.environ, "DESK_AMQP_URL": amqp_url, "DESK_MONGO_URL": mongo_url,
                    "DESK_BUS_NAMESPACE": namespace, "DESK_MONGO_DB": f"{namespace}_boards",
                    "DESK_LEASE_SECONDS": str(LEASE_SECONDS), "DESK_LOG_LEVEL": "INFO"}
        self.namespace = namespace
        self.db = MongoClient(mongo_url)[f"{namespace}_boards"]
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, handle_seconds: float = 0.0) -> str:
        log = open(self.logs / f"replica-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.partition_replica"],
                                cwd=ROOT, env={**self.env, "REPLICA_HANDLE_SECONDS":
                                               str(handle_seconds)},
                                stdout=subprocess.PIPE, stderr=log)
        holder = proc.stdout.readline().decode().strip()  # printed once started
        assert holder, "the replica did not start (see its log)"
        self.procs[holder] = proc
        return holder

    def owners(self) -> dict[str, list[int]]:
        """Each live replica and the partitions it says it consumes (from the store)."""
        now = datetime.now(UTC)
        return {d["_id"]: sorted(d.get("owns") or []) for d in self.db["members"].find(
            {"expires_at": {"$gt": now}})}

    def handled(self) -> dict[str, dict]:
        """Per request: the subjects in the order they were handled, and by whom."""
        return {d["_id"]: d for d in self.db["handled"].find()}

    def handled_by(self) -> dict[str, str]:
        """Who handled each request (requests with one event)."""
        return {k: d["by"][0] for k, d in self.handled().items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def replicas(amqp_url, mongo_url, tmp_path):
    ns = f"t{uuid.uuid4().hex[:10]}"
    group = Replicas(amqp_url, mongo_url, ns, tmp_path)
    yield group
    group.stop()
    group.db.client.drop_database(group.db.name)

    async def clean() -> None:
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            await delete_topology(await conn.channel(), Topology(ns))
    asyncio.run(clean())


def publish(amqp_url: str, namespace: str, n: int, per_key: int = 1,
            keys: list[str] | None = None) -> list[str]:
    """`per_key` events for each of `n` requests (subjects "0", "1", ...), interleaved."""
    keys = keys or [f"r-{uuid.uuid4().hex[:12]}" for _ in range(n)]

    async def send() -> None:
        bus = Bus(amqp_url, Topology(namespace), "tests")
        await bus.start()
        try:
            for seq in range(per_key):
                for key in keys:
                    await bus.publish(make_envelope(RequestReceived(
                        request_id=key, channel="api", service_id="question",
                        requester=Person(email="a@acme.example"), subject=str(seq), text="T",
                        received_at=datetime.now(UTC)), account_id="default"))
        finally:
            await bus.close()
    asyncio.run(send())
    return keys


def consumers_per_partition(amqp_url: str, namespace: str) -> list[int]:
    topology = Topology(namespace)
    return [consumers for name, _, consumers in asyncio.run(status(amqp_url, topology))
            if name.startswith(topology.queue(SPEC) + ".p")]


@pytest.mark.slow
def test_two_replicas_share_the_partitions_and_one_takes_all_when_the_other_dies(
        replicas, amqp_url, mongo_url):
    first, second = replicas.start(), replicas.start()

    # two of the four partitions each, none twice, none left out
    shares = wait_until(lambda: (o := replicas.owners()).keys() == {first, second}
                        and [len(p) for p in o.values()] == [2, 2] and o, timeout=60)
    assert sorted(shares[first] + shares[second]) == [0, 1, 2, 3], shares
    # what an operator sees with `python -m desk_runtime.partitions owners`
    seen = asyncio.run(owners(mongo_url, f"{replicas.namespace}_{{service}}"))
    assert seen["boards"] == shares and seen["sla"] == {}
    # one consumer on each partition on the broker: nobody idles as a standby
    assert wait_until(lambda: consumers_per_partition(amqp_url, replicas.namespace)
                      == [1, 1, 1, 1] or None, timeout=30)

    # both do the work: each handles the requests of its partitions
    keys = publish(amqp_url, replicas.namespace, 40)
    by = wait_until(lambda: len(h := replicas.handled_by()) == 40 and h, timeout=60)
    assert set(by) == set(keys)
    assert {by[k] for k in keys} == {first, second}

    # the second dies (SIGKILL: no goodbye); the first owns all four within the lease TTL
    # and a few rounds (a generous bound for a busy machine, far below "minutes")
    replicas.procs[second].kill()
    killed = time.monotonic()
    wait_until(lambda: replicas.owners() == {first: [0, 1, 2, 3]}, timeout=8 * LEASE_SECONDS + 10)
    print(f"takeover after {time.monotonic() - killed:.1f} s (lease {LEASE_SECONDS} s)")

    more = publish(amqp_url, replicas.namespace, 20)
    by = wait_until(lambda: len(h := replicas.handled_by()) == 60 and h, timeout=60)
    assert {by[k] for k in more} == {first}
    assert consumers_per_partition(amqp_url, replicas.namespace) == [1, 1, 1, 1]


@pytest.mark.slow
def test_a_replica_that_stops_gracefully_hands_its_partitions_over_and_loses_nothing(
        replicas, amqp_url):
    first, second = replicas.start(), replicas.start()
    wait_until(lambda: [len(p) for p in replicas.owners().values()] == [2, 2], timeout=60)
    keys = publish(amqp_url, replicas.namespace, 60)
    replicas.procs[second].terminate()  # SIGTERM while the burst is being handled
    assert replicas.procs[second].wait(60) == 0
    wait_until(lambda: replicas.owners() == {first: [0, 1, 2, 3]}, timeout=30)
    done = wait_until(lambda: len(h := replicas.handled()) == 60 and h, timeout=60)
    assert set(done) == set(keys)
    assert all(d["seq"] == ["0"] for d in done.values())  # each handled once


class SteadyLoad:
    """Publishes a batch of requests (`per_key` events each, interleaved) every second in a
    thread of its own, until stopped: a backlog that keeps coming while replicas change."""

    def __init__(self, amqp_url: str, namespace: str, keys: int, per_key: int):
        self.amqp_url, self.namespace = amqp_url, namespace
        self.batch, self.per_key = keys, per_key
        self.keys: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        bus = Bus(self.amqp_url, Topology(self.namespace), "tests")
        await bus.start()
        try:
            while not self._stop.is_set():
                keys = [f"r-{uuid.uuid4().hex[:12]}" for _ in range(self.batch)]
                for seq in range(self.per_key):
                    for key in keys:
                        await bus.publish(make_envelope(RequestReceived(
                            request_id=key, channel="api", service_id="question",
                            requester=Person(email="a@acme.example"), subject=str(seq),
                            text="T", received_at=datetime.now(UTC)), account_id="default"))
                self.keys += keys
                await asyncio.sleep(1.0)
        finally:
            await bus.close()

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)


@pytest.mark.slow
def test_a_replica_joining_under_load_gets_partitions_handed_over_in_order(replicas, amqp_url):
    """The first replica drains the partitions it gives up (what it was delivered is
    handled and acknowledged before the newcomer may consume) while requests keep coming
    faster than it alone handles them: every request's events are handled once each, in
    the order they were published, across the handover, and both replicas work."""
    # 0.1 s of work per event, a group's events handled in turn, two groups at once: one
    # replica handles ~20 events/s, well below the load's 50/s (measured: 150 of 450
    # events handled when the handover was done, 70 requests behind), so a backlog is
    # handed over. At 0.2 s the backlog built while the handover drained took ~40 s more
    # to work off, for nothing more proven.
    first = replicas.start(handle_seconds=0.1)
    wait_until(lambda: replicas.owners() == {first: [0, 1, 2, 3]}, timeout=60)
    with SteadyLoad(amqp_url, replicas.namespace, keys=10, per_key=5) as load:  # 50/s
        second = replicas.start(handle_seconds=0.1)
        wait_until(lambda: [len(p) for p in replicas.owners().values()] == [2, 2],
                   timeout=60)
        # the handover happened with a backlog in hand: not everything was handled yet
        behind = len(load.keys) - sum(len(d["seq"]) == 5 for d in replicas.handled().values())
        sent = len(load.keys)
        wait_until(lambda: len(load.keys) >= sent + 20, timeout=60)  # two batches more
    # more than the batch just published (which nobody could have handled yet)
    assert behind > load.batch, \
        f"the first replica kept up alone: {behind} requests behind, no backlog to hand over"
    keys = load.keys
    done = wait_until(lambda: len(h := replicas.handled()) == len(keys)
                      and all(len(d["seq"]) == 5 for d in h.values()) and h, timeout=180)
    assert set(done) == set(keys)
    for key, record in done.items():
        assert record["seq"] == ["0", "1", "2", "3", "4"], (key, record)
    assert {who for d in done.values() for who in d["by"]} == {first, second}


async def test_a_replica_whose_share_is_empty_is_ready(amqp_url, mongo_url):
    """More replicas than partitions: the one that owns none still reports ready (it serves
    HTTP and is a warm spare), while the other consumes the one partition."""
    from desk_runtime.service import ServiceRuntime
    from desk_runtime.settings import ServiceSettings

    ns = f"t{uuid.uuid4().hex[:10]}"
    settings = ServiceSettings(amqp_url=amqp_url, mongo_url=mongo_url, bus_namespace=ns,
                               mongo_db=f"{ns}_boards", log_json=False, bus_partitions=1,
                               lease_seconds=2.0)
    runtimes = [ServiceRuntime("boards", settings) for _ in range(2)]
    for rt in runtimes:
        rt.on("requests", "request.received")(lambda uow, event: asyncio.sleep(0))
        await rt.start()
    try:
        async def settled() -> list[list[int]] | None:
            shares = sorted(rt.assignment.share() for rt in runtimes)
            return shares if shares == [[], [0]] else None

        for _ in range(100):
            if await settled():
                break
            await asyncio.sleep(0.1)
        assert await settled(), [rt.assignment.share() for rt in runtimes]
        for rt in runtimes:
            # the owner starts consuming its partition just after agreeing on it
            for _ in range(100):
                checks = await rt.ready()
                if all(checks.values()):
                    break
                await asyncio.sleep(0.1)
            assert checks["consumers"] and all(checks.values()), checks
        counts = [c for name, _, c in await status(amqp_url, Topology(ns, 1))
                  if name.startswith(Topology(ns, 1).queue(SPEC) + ".p")]
        assert counts == [1]  # one consumer: the owner's; the other holds none
    finally:
        for rt in runtimes:
            await rt.stop()
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            await delete_topology(await conn.channel(), Topology(ns, 1))
        client = MongoClient(mongo_url)
        client.drop_database(f"{ns}_boards")
        client.close()
