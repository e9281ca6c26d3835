"""Group commit: a process's consumed events, several to one store transaction.

Each consumed event used to be its own transaction: its processed-event record, its
handler's writes, its outbox entries and a commit. On a busy bus most of a transaction's
store round trips are that bookkeeping, and the embedded store runs transactional
statements one at a time, so a burst queued behind it. Now the events that are waiting
for the store when a transaction slot comes free go together (at most `consumer_batch`,
at most `consumer_transactions` such transactions per process at once):

* one `insert_many` of their processed-event records, first — so a duplicate among them
  still fails before any effect;
* each handler in turn, in the context (log fields, trace) of its own message, with its
  own `UnitOfWork` on the shared session;
* one `insert_many` per collection of the records they inserted unread (`uow.insert`),
  one `$inc` per document their counters touched (`uow.increment`, merged across the
  group), one outbox write for all the events they emitted, one commit; each message is
  then acknowledged by its own consumer, as before.

A handler may run more than once before its effect commits (a write conflict reruns the
whole transaction; a failed group reruns each event alone): what it does outside the
store, such as counting a metric, goes in `uow.after_commit`.

A lone event (an idle desk) runs exactly as it always did, alone. When a group fails
for anything but an unreachable store — a duplicate delivery, a handler's refusal, a
bug — nothing of it committed, and each of its events runs again alone, so one bad
message never holds up or takes down the others (it alone is retried or dead-lettered).
An unreachable store fails them all; each consumer waits and comes back, as before.

Events of one card never meet in a group: the ordering middleware hands a card's next
event to its consumer only after the previous one is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pymongo
from desk_contracts import Envelope, EventPayload
from pymongo.errors import DuplicateKeyError

from desk_runtime.consumer import PROCESSED, is_transient
from desk_runtime.logging import get_logger
from desk_runtime.metrics import CONSUMER_GROUP_SIZE, STORE_TRANSACTIONS
from desk_runtime.mongo import in_transaction, store_unavailable_stops_retries
from desk_runtime.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from desk_runtime.service import ServiceRuntime

log = get_logger(__name__)

URGENT_RUN = 3  # urgent groups in a row before others waiting get one turn

@dataclass(eq=False)
class Pending:
    """One consumed event waiting for (or in) a transaction."""

    record_id: str
    envelope: Envelope
    payload: EventPayload
    handler: Any
    attempt: int
    context: contextvars.Context
    future: asyncio.Future
    taken: bool = False
    unit: UnitOfWork | None = None  # the handler's, of the transaction's latest attempt

    def record(self) -> dict:
        return {"_id": self.record_id, "type": self.envelope.type, "at": datetime.now(UTC)}


class GroupCommit:
    def __init__(self, runtime: ServiceRuntime, *, batch: int, transactions: int):
        self.runtime = runtime
        self.batch = max(1, batch)
        self.turns = asyncio.Semaphore(max(1, transactions))
        # events of urgent queues (a request becoming a card) and the others, each in
        # arrival order; a group is of one kind
        self.urgent: deque[Pending] = deque()
        self.pending: deque[Pending] = deque()
        self._urgent_run = 0  # urgent groups in a row while others wait

    async def process(self, record_id: str, envelope: Envelope, payload: EventPayload,
                      handler, attempt: int = 0, *, urgent: bool = False) -> bool:
        """Apply `handler` to the event once; True when it had been processed before."""
        item = Pending(record_id, envelope, payload, handler, attempt,
                       contextvars.copy_context(), asyncio.get_running_loop().create_future())
        line = self.urgent if urgent else self.pending
        line.append(item)
        try:
            while not item.taken:
                async with self.turns, self.runtime.store_slots:
                    if item.taken:
                        break
                    group = self._next_group()
                    # shielded: a consumer cancelled while it runs a group (a stop) must not
                    # leave the others of the group waiting for ever
                    await asyncio.shield(self._run(group))
        except asyncio.CancelledError:
            if not item.taken:
                line.remove(item)
            raise
        return await item.future

    def waiting(self) -> int:
        """Events waiting for a transaction (not yet in one)."""
        return len(self.urgent) + len(self.pending)

    def _next_group(self) -> list[Pending]:
        """The next group: urgent events first, but after URGENT_RUN urgent groups in a
        row the oldest others get a turn, so a long burst of requests never starves them."""
        take_urgent = bool(self.urgent) and (not self.pending or self._urgent_run < URGENT_RUN)
        self._urgent_run = self._urgent_run + 1 if take_urgent else 0
        line = self.urgent if take_urgent else self.pending
        group = [line.popleft() for _ in range(min(self.batch, len(line)))]
        for taken in group:
            taken.taken = True
        return group

    # -- one group ---------------------------------------------------------------------

    async def _run(self, group: list[Pending]) -> None:
        if len(group) > 1:
            try:
                await self._commit(group)
            except Exception as exc:  # noqa: BLE001 (sorted out below, per event)
                if is_transient(exc):
                    for item in group:  # each consumer waits for the store and comes back
                        _settle(item, exc=exc)
                    return
                # nothing of the group committed: each alone, so only the culprit fails
                log.info("consumer.group_split", size=len(group), error=repr(exc)[:300])
            else:
                for item in group:
                    _settle(item, result=False)
                return
        for item in group:
            try:
                duplicate = await self._alone(item)
            except Exception as exc:  # noqa: BLE001 (handed to the event's own consumer)
                _settle(item, exc=exc)
            else:
                _settle(item, result=duplicate)

    async def _alone(self, item: Pending) -> bool:
        """One event in its own transaction; True when it had been processed before."""
        try:
            await self._commit([item])
        except DuplicateKeyError:
            if await self.runtime.db[PROCESSED].find_one({"_id": item.record_id}, {"_id": 1}):
                return True
            raise
        return False

    async def _commit(self, group: list[Pending]) -> None:
        """The group's events in one transaction, then what follows its commit."""
        runtime = self.runtime
        deadline = self._deadline()

        async def work(session) -> None:
            # Written first, in the effect's transaction: a duplicate (a redelivery, a
            # re-published outbox entry, a copy another replica handles at the same time)
            # fails here, its transaction aborts, and it has no effect. No read beforehand:
            # duplicates are rare, and the insert is the check.
            if len(group) == 1:
                await runtime.db[PROCESSED].insert_one(group[0].record(), session=session)
            else:
                await runtime.db[PROCESSED].insert_many([item.record() for item in group],
                                                        ordered=True, session=session)
            for item in group:
                await self._handle(item, session, deadline)
            with store_unavailable_stops_retries():
                await UnitOfWork.flush_together([item.unit for item in group])

        await self._transaction(work)
        CONSUMER_GROUP_SIZE.labels(runtime.name).observe(len(group))
        STORE_TRANSACTIONS.labels(runtime.name, "consumer").inc()
        for item in group:
            item.unit.committed()
        runtime.committed([e for item in group for e in item.unit.emitted])

    def _deadline(self) -> float:
        return time.monotonic() + self.runtime.settings.consumer_transaction_timeout_seconds

    async def _transaction(self, work) -> None:
        await in_transaction(self.runtime.client, work,
                             seconds=self.runtime.settings.consumer_transaction_timeout_seconds)

    async def _handle(self, item: Pending, session, deadline: float) -> None:
        """The event's handler on the shared session, in its own message's context."""
        runtime = self.runtime
        unit = UnitOfWork(runtime.db, session, runtime.settings.account_id,
                          correlation_id=item.envelope.correlation_id,
                          causation=item.envelope, attempt=item.attempt,
                          committer_lease=runtime.committer_lease)
        item.unit = unit  # a retried transaction starts the unit again
        remaining = max(0.001, deadline - time.monotonic())

        async def run() -> None:
            # the message's own context has no bound on store calls: carry the group's
            with pymongo.timeout(remaining), store_unavailable_stops_retries():
                await item.handler(unit, item.payload)

        await asyncio.create_task(run(), context=item.context.copy())


def _settle(item: Pending, *, result: bool | None = None, exc: BaseException | None = None
            ) -> None:
    if item.future.done():
        return
    if exc is not None:
        item.future.set_exception(exc)
    else:
        item.future.set_result(result)


__all__ = ["GroupCommit"]
