"""Transactional outbox: events are written with the state change, then relayed to the bus.

A transaction's events are written together, in one insert, right before it commits
(`UnitOfWork.flush`). Right after the commit the process that committed publishes them itself
(`OutboxRelay.committed`), from memory, with publisher confirms, and marks them sent in
one write. Each entry is written already leased to its committer for `COMMITTER_LEASE`
(`<SERVICE>_OUTBOX_COMMITTER_LEASE_SECONDS`),
so no other relay touches a fresh entry. Whatever that fast path did not finish — the
process died, the broker was away — is found by a fallback poll once the lease has run
out: one indexed query (`sent_at: null, claimed_until < now`), claimed with a new lease,
published, marked sent. The fallback backs off while it finds nothing, so an idle desk
costs a query every few seconds, not a storm. A crash anywhere re-publishes (the same
`event_id`, which consumers deduplicate) and never drops.

Each entry keeps the trace context it was written in (`trace`, W3C headers; only when
tracing is on), and is published under it, so a trace crosses the outbox
(`desk_runtime.tracing`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from datetime import UTC, datetime, timedelta

from desk_contracts import Envelope
from opentelemetry.context import Context
from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from desk_runtime.bus import Bus, partition_key
from desk_runtime.logging import get_logger
from desk_runtime.metrics import OUTBOX_LAG, OUTBOX_PENDING, OUTBOX_PUBLISH_SECONDS
from desk_runtime.mongo import insert_all
from desk_runtime.tracing import attached, context_from, current_context, trace_carrier

log = get_logger(__name__)

COLLECTION = "outbox"
LEASE = timedelta(seconds=30)
COMMITTER_LEASE = timedelta(seconds=10)
SENT_RETENTION = timedelta(days=7)
IDLE_POLL_MAX = 10.0
GAUGE_SECONDS = 5.0
MARK_DELAY = 0.2
MARK_BATCH = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def ensure_outbox_indexes(db: AsyncDatabase) -> None:
    await db[COLLECTION].create_index([("sent_at", ASCENDING), ("claimed_until", ASCENDING)],
                                      name="unsent_by_lease")
    await db[COLLECTION].create_index(
        "sent_expires_at", expireAfterSeconds=0, sparse=True, name="sent_ttl"
    )
    # entries written before leases were set at insert: make them claimable by the index
    await db[COLLECTION].update_many({"sent_at": None, "claimed_until": None},
                                     {"$set": {"claimed_until": EPOCH}})


def outbox_entry(envelope: Envelope, committer_lease: timedelta = COMMITTER_LEASE) -> dict:
    """The outbox document of an event, taken when the event is emitted (its trace context
    is the emitter's); leased to its committer for `committer_lease`."""
    now = datetime.now(UTC)
    carrier = trace_carrier()  # the trace it is published under, by whichever relay
    return {
        "_id": str(envelope.event_id),
        "routing_key": envelope.routing_key,
        "envelope": envelope.model_dump(mode="json"),
        "created_at": now,
        # time-ordered key so the fallback publishes in commit order
        "seq": now.timestamp(),
        "sent_at": None,
        # the committing process publishes it; others only after this runs out
        "claimed_until": now + committer_lease,
        "attempts": 0,
        **({"trace": carrier} if carrier else {}),
    }


async def write_outbox(db: AsyncDatabase, session: AsyncClientSession,
                       entries: list[dict]) -> None:
    """Record a transaction's events in that transaction: one write for all of them (the
    committer publishes them after commit)."""
    if entries:
        await insert_all(db, COLLECTION, entries, session)


class OutboxRelay:
    def __init__(self, db: AsyncDatabase, bus: Bus, service: str, poll_seconds: float = 0.5):
        self.db = db
        self.bus = bus
        self.service = service
        self.poll_seconds = poll_seconds
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        # with the trace context of the commit that wrote them (the same one the entries
        # store: the commit runs in the request's or consumer's own context)
        self._fresh: asyncio.Queue[tuple[Envelope, Context | None]] = asyncio.Queue()
        self.worker = None  # the Worker running `round` (set by the runtime); woken on commit
        self._gauges_at = 0.0
        self._idle = poll_seconds
        self._look_at = 0.0  # when the fallback looks for leftovers next
        self._to_mark: list[str] = []
        self._mark_due = 0.0

    def committed(self, envelopes: list[Envelope]) -> None:
        """Called after a commit that wrote outbox entries: publish them now."""
        ctx = current_context()
        for envelope in envelopes:
            self._fresh.put_nowait((envelope, ctx))
        if self.worker is not None:
            self.worker.wake()

    async def round(self) -> float:
        """One round of the relay (run by a `desk_runtime.worker.Worker`): publish what was
        just committed, mark what was published, look for leftovers on the fallback's own
        clock; returns how long nothing is due. A store or broker outage is not a failure of
        the relay: the entries stay in the store and the fallback retries, backing off."""
        try:
            await self._publish_fresh()
            if self._to_mark and time.monotonic() >= self._mark_due:
                await self._flush_marks()
            if not self._fresh.empty():
                return 0
            if time.monotonic() >= self._look_at:
                # the fallback runs on its own clock (not after every commit), looking
                # less and less often while it finds nothing
                found = await self.relay_once()
                self._idle = self.poll_seconds if found else min(self._idle * 2, IDLE_POLL_MAX)
                self._look_at = time.monotonic() + self._idle
            if time.monotonic() >= self._gauges_at:
                await self._update_gauges()
        except Exception as exc:  # broker or store away: entries stay, retried later
            log.warning("outbox.relay_failed", error=repr(exc)[:300])
            self._drop_fresh()  # they are in the store; the fallback takes them
            self._idle = min(max(self._idle * 2, 1.0), IDLE_POLL_MAX)
            self._look_at = time.monotonic() + self._idle
        if not self._fresh.empty():
            return 0
        wait = self._look_at - time.monotonic()
        if self._to_mark:
            wait = min(wait, self._mark_due - time.monotonic())
        return max(wait, 0.0)

    def _drop_fresh(self) -> None:
        while not self._fresh.empty():
            self._fresh.get_nowait()

    async def _publish_fresh(self, batch: int = 200) -> int:
        envelopes: list[tuple[Envelope, Context | None]] = []
        while not self._fresh.empty() and len(envelopes) < batch:
            envelopes.append(self._fresh.get_nowait())
        if not envelopes:
            return 0
        await self._publish_and_mark(envelopes)
        return len(envelopes)

    async def _publish_and_mark(self, entries: list[tuple[Envelope, Context | None]], *,
                                defer: bool = True) -> None:
        # One card's events go out one after another, in commit order (its consumers see
        # them in that order), and so do the events no card orders (catalog, customers),
        # as before; different cards' events go out together, so a batch waits for the
        # broker's confirms about once rather than once per event.
        chains: dict[str, list[tuple[Envelope, Context | None]]] = {}
        for entry in entries:
            event_id = str(entry[0].event_id)
            key = partition_key(entry[0].payload, event_id)
            chains.setdefault("" if key == event_id else key, []).append(entry)

        async def publish_in_order(chain: list[tuple[Envelope, Context | None]]) -> None:
            for envelope, ctx in chain:
                with attached(ctx):  # the publish span continues the trace that wrote it
                    await self.bus.publish(envelope)

        if len(chains) == 1:
            await publish_in_order(entries)
        else:
            outcomes = await asyncio.gather(*map(publish_in_order, chains.values()),
                                            return_exceptions=True)
            failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
            if failed is not None:  # all stay unmarked: the fallback publishes them again
                raise failed
        done = datetime.now(UTC)
        envelopes = [envelope for envelope, _ in entries]
        for envelope in envelopes:
            OUTBOX_PUBLISH_SECONDS.labels(self.service).observe(
                max(0.0, (done - envelope.occurred_at).total_seconds()))
        # Marking sent is one write for many entries: what was published in the last
        # MARK_DELAY seconds is marked together. Until then the committer's (or the
        # claim's) lease keeps other relays off them; a crash in between re-publishes
        # them, which consumers deduplicate.
        if not self._to_mark:
            self._mark_due = time.monotonic() + MARK_DELAY
        self._to_mark.extend(str(e.event_id) for e in envelopes)
        if len(self._to_mark) >= MARK_BATCH or not defer:
            await self._flush_marks()

    async def flush(self) -> None:
        """Mark what was published (a graceful stop)."""
        with contextlib.suppress(Exception):
            await self._flush_marks()

    async def _flush_marks(self) -> None:
        if not self._to_mark:
            return
        ids, self._to_mark = self._to_mark, []
        done = datetime.now(UTC)
        try:
            await self.db[COLLECTION].update_many(
                {"_id": {"$in": ids}},
                {"$set": {"sent_at": done, "sent_expires_at": done + SENT_RETENTION,
                          "claimed_until": None}},
            )
        except Exception:
            self._to_mark = ids + self._to_mark  # the store is away: mark them later
            raise

    async def relay_once(self, batch: int = 200) -> int:
        """Claim, publish and mark sent entries whose lease ran out; returns how many."""
        coll = self.db[COLLECTION]
        now = datetime.now(UTC)
        due = {"sent_at": None, "claimed_until": {"$lt": now}}
        candidates = [d["_id"] async for d in coll.find(due, {"_id": 1}).limit(batch)]
        if not candidates:
            return 0
        claim = f"{self.worker_id}:{now.timestamp()}"
        await coll.update_many(
            {"_id": {"$in": candidates}, **due},
            {"$set": {"claimed_until": now + LEASE, "claim": claim}, "$inc": {"attempts": 1}},
        )
        docs = [d async for d in coll.find({"_id": {"$in": candidates}, "claim": claim,
                                            "sent_at": None})]
        docs.sort(key=lambda d: d["seq"])
        if docs:
            log.info("outbox.relaying_leftovers", count=len(docs))
            await self._publish_and_mark(
                [(Envelope.model_validate(d["envelope"]), context_from(d.get("trace")))
                 for d in docs], defer=False)
        return len(docs)

    async def _update_gauges(self) -> None:
        self._gauges_at = time.monotonic() + GAUGE_SECONDS
        coll = self.db[COLLECTION]
        pending = await coll.count_documents({"sent_at": None})
        OUTBOX_PENDING.labels(self.service).set(pending)
        lag = 0.0
        if pending:
            oldest = await coll.find_one({"sent_at": None}, {"created_at": 1},
                                         sort=[("sent_at", ASCENDING), ("claimed_until", ASCENDING)])
            if oldest:
                lag = (datetime.now(UTC) - oldest["created_at"]).total_seconds()
        OUTBOX_LAG.labels(self.service).set(lag)
