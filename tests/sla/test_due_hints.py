"""The scheduler hears of a nearer deadline only once the record holding it committed.

A deadline noted while its transaction still ran could be taken by another transaction's
commit: the scheduler would look before the record is visible, and the deadline would wait
for its next planned look (up to `scheduler_idle_max_seconds`). Real store.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from desk_contracts.catalog import Priority, StatusCategory
from desk_runtime.service import ServiceRuntime
from sla.domain.clock import CardSla
from sla.repository import DUE_HINTS, SlaRepository
from sla.settings import SlaSettings


@pytest.fixture
async def runtime(amqp_url, mongo_url):
    ns = f"t{uuid.uuid4().hex[:10]}"
    settings = SlaSettings(amqp_url=amqp_url, mongo_url=mongo_url, bus_namespace=ns,
                           mongo_db=f"{ns}_sla", log_json=False, outbox_relay=False)
    runtime = ServiceRuntime("sla", settings)
    DUE_HINTS.take()
    yield runtime
    await runtime.client.drop_database(runtime.db.name)
    await runtime.client.close()


def record(card_id: str) -> CardSla:
    return CardSla(card_id=card_id, number="SUP-1", service_id="problem", policy="standard",
                   calendar="24x7", priority=Priority.HIGH, category=StatusCategory.QUEUED,
                   created_at=datetime.now(UTC))


async def test_a_deadline_reaches_the_scheduler_with_its_own_commit_not_anothers(runtime):
    due = datetime.now(UTC) + timedelta(seconds=30)
    saved, go = asyncio.Event(), asyncio.Event()
    taken_by_other_commit: list = []

    async def slow(uow):  # saves a record with a near deadline, then waits to commit
        await SlaRepository(uow.db).save(record("c-slow"), 0, due, uow)
        saved.set()
        await go.wait()

    async def other(uow):  # any other transaction of the process, committed meanwhile
        await uow.db["card_sla"].find_one({"_id": "nothing"}, session=uow.session)

    def listener():  # what the scheduler does after each commit
        taken_by_other_commit.append(DUE_HINTS.take())

    slow_task = asyncio.create_task(runtime.transact(slow))
    await saved.wait()
    runtime.on_commit(listener)
    await runtime.transact(other)
    assert taken_by_other_commit == [None], "a deadline not yet committed was handed on"
    go.set()
    await slow_task
    assert taken_by_other_commit == [None, due]
    # and the record is there for the scheduler to find when it looks
    assert await runtime.db["card_sla"].count_documents({"_id": "c-slow"}) == 1


async def test_a_deadline_of_a_transaction_that_failed_is_never_handed_on(runtime):
    async def failing(uow):
        await SlaRepository(uow.db).save(record("c-failed"), 0,
                                         datetime.now(UTC) + timedelta(seconds=5), uow)
        raise ValueError("refused")

    with pytest.raises(ValueError):
        await runtime.transact(failing)
    assert DUE_HINTS.take() is None
