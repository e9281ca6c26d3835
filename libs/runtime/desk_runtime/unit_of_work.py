"""One transaction: the state change and the events it causes, committed together."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from desk_contracts import Envelope, EventPayload, make_envelope
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from desk_runtime.outbox import COMMITTER_LEASE, outbox_entry, write_outbox


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

    @staticmethod
    async def flush_together(units: list[UnitOfWork]) -> None:
        """Write the events of units sharing one transaction (a group commit) in one write,
        in emit order, unit after unit."""
        entries = []
        for unit in units:
            entries.extend(unit._unwritten)
            unit._unwritten = []
        if units:
            await write_outbox(units[0].db, units[0].session, entries)

    async def flush(self) -> None:
        """Write the events emitted so far to the outbox (one store write for all)."""
        entries, self._unwritten = self._unwritten, []
        await write_outbox(self.db, self.session, entries)
