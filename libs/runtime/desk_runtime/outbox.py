"""Transactional outbox: events are written with the state change, then relayed to the bus.

The relay publishes with publisher confirms and marks entries sent only after the
broker confirmed them, so a crash anywhere re-publishes (same event_id, which
consumers deduplicate) and never drops. Several replicas may run a relay: entries
are claimed with a lease so they rarely publish the same entry twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from datetime import UTC, datetime, timedelta

from desk_contracts import Envelope
from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from desk_runtime.bus import Bus
from desk_runtime.logging import get_logger
from desk_runtime.metrics import OUTBOX_LAG, OUTBOX_PENDING, OUTBOX_PUBLISH_SECONDS

log = get_logger(__name__)

COLLECTION = "outbox"
LEASE = timedelta(seconds=30)
SENT_RETENTION = timedelta(days=7)


async def ensure_outbox_indexes(db: AsyncDatabase) -> None:
    await db[COLLECTION].create_index([("sent_at", ASCENDING), ("seq", ASCENDING)])
    await db[COLLECTION].create_index(
        "sent_expires_at", expireAfterSeconds=0, sparse=True, name="sent_ttl"
    )


async def add_to_outbox(db: AsyncDatabase, session: AsyncClientSession, envelope: Envelope) -> None:
    """Record an event in the caller's transaction; the relay publishes it after commit."""
    now = datetime.now(UTC)
    await db[COLLECTION].insert_one(
        {
            "_id": str(envelope.event_id),
            "routing_key": envelope.routing_key,
            "envelope": envelope.model_dump(mode="json"),
            "created_at": now,
            # time-ordered key so a relay publishes in commit order within a process
            "seq": now.timestamp(),
            "sent_at": None,
            "claimed_until": None,
            "attempts": 0,
        },
        session=session,
    )


class OutboxRelay:
    def __init__(self, db: AsyncDatabase, bus: Bus, service: str, poll_seconds: float = 0.5):
        self.db = db
        self.bus = bus
        self.service = service
        self.poll_seconds = poll_seconds
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def notify(self) -> None:
        """Called after a commit that wrote outbox entries: publish now, not at next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                published = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or store away: keep entries, retry later
                log.warning("outbox.relay_failed", error=str(exc))
                published = 0
                await asyncio.sleep(self.poll_seconds)
            if published:
                continue
            await self._update_gauges()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()

    async def relay_once(self, batch: int = 200) -> int:
        """Claim, publish and mark sent one batch of entries; returns how many were sent."""
        coll = self.db[COLLECTION]
        now = datetime.now(UTC)
        candidates = [
            d["_id"]
            async for d in coll.find(
                {"sent_at": None, "$or": [{"claimed_until": None}, {"claimed_until": {"$lt": now}}]},
                {"_id": 1},
            ).sort("seq", ASCENDING).limit(batch)
        ]
        if not candidates:
            return 0
        claim = f"{self.worker_id}:{now.timestamp()}"
        await coll.update_many(
            {"_id": {"$in": candidates}, "sent_at": None,
             "$or": [{"claimed_until": None}, {"claimed_until": {"$lt": now}}]},
            {"$set": {"claimed_until": now + LEASE, "claim": claim}, "$inc": {"attempts": 1}},
        )
        sent = 0
        async for doc in coll.find({"claim": claim, "sent_at": None}).sort("seq", ASCENDING):
            envelope = Envelope.model_validate(doc["envelope"])
            await self.bus.publish(envelope)
            done = datetime.now(UTC)
            await coll.update_one(
                {"_id": doc["_id"]},
                {"$set": {"sent_at": done, "sent_expires_at": done + SENT_RETENTION,
                          "claimed_until": None}},
            )
            OUTBOX_PUBLISH_SECONDS.labels(self.service).observe(
                (done - doc["created_at"]).total_seconds()
            )
            sent += 1
        return sent

    async def _update_gauges(self) -> None:
        coll = self.db[COLLECTION]
        pending = await coll.count_documents({"sent_at": None})
        OUTBOX_PENDING.labels(self.service).set(pending)
        oldest = await coll.find_one({"sent_at": None}, sort=[("seq", ASCENDING)])
        lag = (datetime.now(UTC) - oldest["created_at"]).total_seconds() if oldest else 0.0
        OUTBOX_LAG.labels(self.service).set(lag)
