"""One transaction: the state change and the events it causes, committed together."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from desk_contracts import Envelope, EventPayload, make_envelope
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from desk_runtime.outbox import add_to_outbox


@dataclass
class UnitOfWork:
    db: AsyncDatabase
    session: AsyncClientSession
    account_id: str
    correlation_id: str | None = None
    causation: Envelope | None = None
    # how many times the message being handled was delivered before (0: the first time)
    attempt: int = 0
    emitted: list[Envelope] = field(default_factory=list)

    async def emit(self, payload: EventPayload, *, event_id: uuid.UUID | None = None) -> Envelope:
        """Write an event to the outbox in this transaction."""
        envelope = make_envelope(
            payload,
            account_id=self.causation.account_id if self.causation else self.account_id,
            correlation_id=self.correlation_id,
            causation=self.causation,
            event_id=event_id,
        )
        await add_to_outbox(self.db, self.session, envelope)
        self.emitted.append(envelope)
        return envelope
