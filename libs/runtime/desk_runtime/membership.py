"""Replicas of a service share its bus partitions: who is alive, and which partitions each consumes.

On RabbitMQ 3.10 a queue's single active consumer never moves while it lives: the first
replica that subscribes to a partition keeps it, and replicas that subscribe later are
idle standbys. So replicas do not all subscribe to every partition; they agree through
the store on who consumes which:

* **membership** — every replica heartbeats a record in its service's `members`
  collection (`{_id: holder, expires_at, owns}`) every third of `lease_seconds`; the live
  replicas are those whose record has not expired;
* **fair share** — each replica computes the same assignment from the same live set
  (`fair_share`: rendezvous hashing with a capacity, so every replica gets ⌊P/N⌋ or
  ⌈P/N⌉ of the P partitions, and a change of membership moves few of them);
* **leases** — a replica consumes partition i only while it holds the lease
  `partition:<i>` (desk_runtime.lease). It takes the lease of a partition of its share
  when the lease is free or expired, then subscribes to that partition of every queue of
  the service. A partition that left its share is handed over by draining: the broker
  consumer is cancelled, the messages already delivered are handled and acknowledged,
  the subscriber stops, and only then is the lease released for the new owner;
* **safety net** — the partitions stay single-active-consumer queues: if the assignment
  glitches (a stalled replica that lost its lease and has not stopped yet), the broker
  still lets one consumer at a time have a partition, so a card's events keep their order;
* **failure** — a replica that dies stops heartbeating and renewing: after `lease_seconds`
  its record and its leases expire and the others' next round (a third of the TTL later)
  takes its partitions over. A graceful stop releases at once.

A replica that owns no partitions (more replicas than partitions) is still ready: it
serves HTTP and takes partitions over when another replica goes.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pymongo.asynchronous.database import AsyncDatabase

from desk_runtime.lease import Lease, Leases
from desk_runtime.logging import get_logger
from desk_runtime.metrics import PARTITIONS_OWNED
from desk_runtime.tasks import STOP_TIMEOUT, cancel_and_wait

if TYPE_CHECKING:
    from desk_runtime.consumer import Consumer

log = get_logger(__name__)

COLLECTION = "members"
LEASE_PREFIX = "partition:"
# a member record outlives its expiry by this long before the store drops it (status pages)
FORGET_AFTER = timedelta(hours=1)


def _score(member: str, slot: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{member}|{slot}".encode()).digest()[:8], "big")


def fair_share(members: list[str], partitions: int) -> dict[str, set[int]]:
    """Partition indexes per member: ⌊P/N⌋ or ⌈P/N⌉ each, the same answer on every replica.

    Rendezvous hashing with a capacity: each partition goes to the member that ranks it
    highest among those with room, so adding or removing a member moves only about the
    partitions it gains or loses.
    """
    members = sorted(set(members))
    if not members:
        return {}
    base, extra = divmod(partitions, len(members))
    ranked = sorted(members, key=lambda m: _score(m, -1), reverse=True)
    room = {m: base + (1 if i < extra else 0) for i, m in enumerate(ranked)}
    share: dict[str, set[int]] = {m: set() for m in members}
    for index in range(partitions):
        for member in sorted(members, key=lambda m: _score(m, index), reverse=True):
            if len(share[member]) < room[member]:
                share[member].add(index)
                break
    return share


class Members:
    """The membership records of one service's replicas (the store side of the assignment)."""

    def __init__(self, db: AsyncDatabase, holder: str, ttl: float):
        self._records = db[COLLECTION]
        self.holder = holder
        self.ttl = ttl

    async def ensure_indexes(self) -> None:
        await self._records.create_index("expires_at",
                                         expireAfterSeconds=int(FORGET_AFTER.total_seconds()))

    async def heartbeat(self, owns: list[int]) -> None:
        now = datetime.now(UTC)
        await self._records.update_one(
            {"_id": self.holder},
            {"$set": {"expires_at": now + timedelta(seconds=self.ttl), "seen_at": now,
                      "owns": owns}, "$setOnInsert": {"joined_at": now}}, upsert=True)

    async def live(self) -> list[str]:
        now = datetime.now(UTC)
        return sorted([doc["_id"] async for doc in self._records.find(
            {"expires_at": {"$gt": now}}, {"_id": 1})])

    async def owners(self) -> dict[str, list[int]]:
        """Each live member and the partitions it last said it consumes (status, tests)."""
        now = datetime.now(UTC)
        return {doc["_id"]: sorted(doc.get("owns") or []) async for doc in self._records.find(
            {"expires_at": {"$gt": now}}, {"owns": 1})}

    async def leave(self) -> None:
        await self._records.delete_one({"_id": self.holder})


class PartitionAssignment:
    """One replica's side of the assignment: a worker round every third of the lease TTL."""

    def __init__(self, service: str, db: AsyncDatabase, leases: Leases, partitions: int,
                 consumers: list[Consumer]):
        self.service = service
        self.leases = leases
        self.partitions = partitions
        self.consumers = consumers
        self.members = Members(db, leases.holder, leases.ttl)
        self.owned: dict[int, Lease] = {}
        self.draining: dict[int, asyncio.Task] = {}
        self.rounds = 0
        self._stopping = False
        self._indexed = False

    @property
    def interval(self) -> float:
        return self.leases.ttl / 3

    @property
    def attached(self) -> bool:
        """Assigned at least once, and consuming every partition it owns (maybe none)."""
        return self.rounds > 0 and all(
            consumer.consuming(index) for index in self.owned if index not in self.draining
            for consumer in self.consumers)

    def share(self) -> list[int]:
        return sorted(i for i in self.owned if i not in self.draining)

    async def round(self) -> float:
        """Heartbeat, compute this replica's share, hand over what left it, take what joined."""
        if self._stopping:
            return self.interval
        if not self._indexed:
            await self.members.ensure_indexes()
            self._indexed = True
        await self.members.heartbeat(self.share())
        live = await self.members.live()
        if self.members.holder not in live:  # our own record just written: clocks disagree
            live.append(self.members.holder)
        mine = fair_share(live, self.partitions).get(self.members.holder, set())
        for index, lease in list(self.owned.items()):
            if not await self.leases.renew(lease):
                # taken over (we were stalled past the TTL): stop at once; the broker's
                # single active consumer kept the new owner waiting until we let go
                self._hand_over(index, release=False)
            elif index not in mine:
                self._hand_over(index, release=True)
        for index in sorted(mine - self.owned.keys()):
            lease = await self.leases.acquire(f"{LEASE_PREFIX}{index}")
            if lease is not None:
                self.owned[index] = lease
                log.info("partitions.taken", partition=index)
        for index in self.share():  # subscribe: new, or a start that failed last round
            for consumer in self.consumers:
                if not consumer.started(index):
                    await consumer.take_partition(index)
        PARTITIONS_OWNED.labels(self.service).set(len(self.share()))
        self.rounds += 1
        return self.interval

    def _hand_over(self, index: int, *, release: bool) -> None:
        if index in self.draining:
            return
        self.draining[index] = asyncio.create_task(self._drain(index, release),
                                                   name=f"partition-drain:{index}")

    async def _drain(self, index: int, release: bool) -> None:
        """Stop consuming `index` once what the broker delivered is acknowledged, then let
        the lease go (the next owner subscribes only after it has the lease)."""
        try:
            await asyncio.gather(*(c.release_partition(index) for c in self.consumers))
            lease = self.owned.get(index)
            if release and lease is not None:
                await self.leases.release(lease)
            log.info("partitions.handed_over", partition=index, released=release)
        except Exception as exc:  # noqa: BLE001 (kept: the next round hands it over again)
            log.warning("partitions.hand_over_failed", partition=index, error=repr(exc)[:300])
            return
        finally:
            self.draining.pop(index, None)
        self.owned.pop(index, None)
        PARTITIONS_OWNED.labels(self.service).set(len(self.share()))

    def stopping(self) -> None:
        self._stopping = True

    async def stop(self) -> None:
        """Called after the bus closed (every subscriber stopped): release and leave, so
        the other replicas take the partitions over at their next round."""
        self._stopping = True
        await cancel_and_wait(list(self.draining.values()), timeout=STOP_TIMEOUT)
        # together, not one after another: with the store gone each write waits out the
        # caller's store deadline (ServiceRuntime.stop), and the records expire anyway
        owned, self.owned = list(self.owned.values()), {}
        PARTITIONS_OWNED.labels(self.service).set(0)
        outcomes = await asyncio.gather(*(self.leases.release(lease) for lease in owned),
                                        self.members.leave(), return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:  # they expire after the lease TTL; the others take over then
            log.warning("partitions.release_failed", count=len(failed),
                        error=repr(failed[0])[:200])
