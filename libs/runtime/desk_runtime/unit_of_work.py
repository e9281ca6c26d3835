"""One transaction: the state change and the events it causes, committed together."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from desk_contracts import Envelope, EventPayload, make_envelope
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from desk_runtime.mongo import insert_all
from desk_runtime.outbox import COMMITTER_LEASE, outbox_entry, write_outbox


@dataclass(frozen=True)
class Shards:
    """A counter spread over `count` documents (`_id` 0 … count-1), summed by its readers:
    each transaction's tally goes to one of them, picked at random when it is written, so
    concurrent transactions rarely meet (and conflict) on one."""

    count: int


@dataclass
class UnitOfWork:
    db: AsyncDatabase
    session: AsyncClientSession
    account_id: str
    correlation_id: str | None = None
    causation: Envelope | None = None
    # how many times the message being handled was delivered before (0: the first time)
    attempt: int = 0
    # how long its events are left to this process to publish (then any relay's fallback)
    committer_lease: timedelta = COMMITTER_LEASE
    emitted: list[Envelope] = field(default_factory=list)
    _unwritten: list[dict] = field(default_factory=list)
    # (collection, document id or Shards) -> field -> delta, written by `flush`
    _increments: dict[tuple[str, object], dict[str, int]] = field(default_factory=dict)
    # collection -> documents to insert, written by `flush`
    _inserts: dict[str, list[dict]] = field(default_factory=dict)
    _after_commit: list[tuple[Callable[..., object], tuple]] = field(default_factory=list)

    @property
    def first_delivery(self) -> bool:
        """The message's first delivery. A handler may then write the record it creates
        blind (an insert, no read first, no upsert) where only a duplicate of the message
        could have written it already: a duplicate key fails this attempt, and the
        redelivery (no longer the first) takes the careful path — read, then write. On a
        busy desk that spares a round trip, and an insert costs the store far less than an
        upsert."""
        return self.attempt == 0

    def after_commit(self, action: Callable[..., object], *args: object) -> None:
        """Run `action` once this unit's transaction has committed — never for an attempt
        the store aborted and the driver ran again (a write conflict) or that failed: for
        what lives outside the store, such as metrics."""
        self._after_commit.append((action, args))

    def committed(self) -> None:
        """The transaction committed: run the unit's `after_commit` actions."""
        actions, self._after_commit = self._after_commit, []
        for action, args in actions:
            action(*args)

    async def emit(self, payload: EventPayload, *, event_id: uuid.UUID | None = None,
                   correlation_id: str | None = None) -> Envelope:
        """Add an event to this transaction's outbox entries (`correlation_id`: the one it
        belongs to when not the unit's own, e.g. one of several deliveries recorded
        together). The entries are written together, in emit order, by `flush`, which the
        runtime runs right before the commit."""
        envelope = make_envelope(
            payload,
            account_id=self.causation.account_id if self.causation else self.account_id,
            correlation_id=correlation_id or self.correlation_id,
            causation=self.causation,
            event_id=event_id,
        )
        self._unwritten.append(outbox_entry(envelope, self.committer_lease))
        self.emitted.append(envelope)
        return envelope

    def increment(self, collection: str, doc_id: object, deltas: dict[str, int]) -> None:
        """Add `deltas` to counters of one document (`doc_id`, or one of `Shards`) in this
        transaction. Tallied here and written by `flush`: one `$inc` upsert per document
        for the whole transaction, whichever units of a group commit counted, instead of
        an upsert per change. A transaction the driver runs again starts new units, so
        its tally starts from nothing too."""
        _add(self._increments.setdefault((collection, doc_id), {}), deltas)

    def insert(self, collection: str, doc: dict) -> None:
        """Insert `doc` into `collection` in this transaction, written by `flush` with the
        transaction's other such documents: one `insert_many` per collection, whichever
        units of a group commit inserted, instead of a round trip per document. For a
        record nothing in the same transaction reads back — a blind write on a first
        delivery (`first_delivery`). A duplicate key raises `DuplicateKeyError` from the
        flush, as a single insert would, and nothing of the transaction commits."""
        self._inserts.setdefault(collection, []).append(doc)

    @staticmethod
    async def flush_together(units: list[UnitOfWork]) -> None:
        """Write the inserts, counters and events of units sharing one transaction (a
        group commit): one `insert_many` per collection, one `$inc` per counted document,
        their counts merged, and one outbox write for the events, in emit order, unit
        after unit."""
        if not units:
            return
        entries: list[dict] = []
        increments: dict[tuple[str, object], dict[str, int]] = {}
        inserts: dict[str, list[dict]] = {}
        for unit in units:
            entries.extend(unit._unwritten)
            unit._unwritten = []
            for key, deltas in unit._increments.items():
                _add(increments.setdefault(key, {}), deltas)
            unit._increments = {}
            for collection, docs in unit._inserts.items():
                inserts.setdefault(collection, []).extend(docs)
            unit._inserts = {}
        db, session = units[0].db, units[0].session
        for collection, docs in inserts.items():
            await insert_all(db, collection, docs, session)
        for (collection, doc_id), deltas in increments.items():
            changed = {name: delta for name, delta in deltas.items() if delta}
            if not changed:
                continue  # what one unit added another took away
            if isinstance(doc_id, Shards):
                doc_id = random.randrange(doc_id.count)
            await db[collection].update_one({"_id": doc_id}, {"$inc": changed}, upsert=True,
                                            session=session)
        await write_outbox(db, session, entries)

    async def flush(self) -> None:
        """Write the inserts, the counters tallied and the events emitted so far (the
        runtime runs it right before the commit): one `insert_many` per collection, one
        `$inc` per counted document, one outbox write."""
        await UnitOfWork.flush_together([self])


def _add(tally: dict[str, int], deltas: dict[str, int]) -> None:
    for name, delta in deltas.items():
        tally[name] = tally.get(name, 0) + delta
