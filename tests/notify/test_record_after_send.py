"""A send that went out is recorded whatever the store does meanwhile: never sent twice.

The dispatcher sends, then records the send (and `notification.sent`) in one transaction.
When that transaction fails — the store busy past the command bound, or away — the send
must not be forgotten: an unrecorded delivery is claimed again once its lease runs out
and mailed a second time. These tests break the recording on a real store and check that
the delivery ends `sent` with exactly one event, its claim held meanwhile.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import notify.dispatcher as dispatcher_module
import pytest
from desk_runtime.outbox import COLLECTION
from desk_runtime.service import ServiceRuntime
from notify.dispatcher import LEASE, SENT_EVENTS, Dispatcher
from notify.metrics import RECORD_RETRIES
from notify.repository import NotifyRepository
from notify.settings import NotifySettings
from pymongo.errors import ExecutionTimeout


@pytest.fixture
async def dispatcher(amqp_url, mongo_url, monkeypatch):
    monkeypatch.setattr(dispatcher_module, "RECORD_RETRY_START", 0.01)
    ns = f"t{uuid.uuid4().hex[:10]}"
    settings = NotifySettings(amqp_url=amqp_url, mongo_url=mongo_url, bus_namespace=ns,
                              mongo_db=f"{ns}_notify", log_json=False, outbox_relay=False)
    runtime = ServiceRuntime("notify", settings)
    repo = NotifyRepository(runtime.db)
    await repo.ensure_indexes()
    d = Dispatcher(runtime, settings)
    yield d
    await d.http.aclose()
    await runtime.client.drop_database(runtime.db.name)
    await runtime.client.close()


async def claimed_delivery(d: Dispatcher) -> dict:
    delivery = {"_id": str(uuid.uuid4()), "cause_event_id": str(uuid.uuid4()),
                "channel": "email", "recipient": "anna@acme.example", "kind": "acknowledgment",
                "audience": "customer", "status": "pending", "attempts": 0,
                "due_at": datetime.now(UTC) - timedelta(seconds=1), "card_id": "c1"}

    async def record(uow):
        await d.repo.record_delivery(delivery, uow.session)

    await d.runtime.transact(record)
    claimed = await d.repo.claim_due_delivery(d.worker, LEASE, "email")
    assert claimed["_id"] == delivery["_id"]
    return claimed


async def stored(d: Dispatcher, delivery_id: str) -> tuple[dict, list[dict]]:
    doc = await d.runtime.db["deliveries"].find_one({"_id": delivery_id})
    events = [e async for e in d.runtime.db[COLLECTION].find(
        {"routing_key": "notification.sent.v1", "envelope.payload.notification_id": delivery_id})]
    return doc, events


def retries() -> float:
    return RECORD_RETRIES._value.get()


async def test_a_send_whose_record_fails_is_recorded_later_with_its_claim_held(dispatcher):
    d = dispatcher
    delivery = await claimed_delivery(d)
    real, failures, held = d.runtime.transact, [], []

    async def busy_store(work, **kw):
        if len(failures) < 3:
            doc, _ = await stored(d, delivery["_id"])
            held.append(doc["claimed_until"])
            failures.append(1)
            raise ExecutionTimeout("timed out (configured timeouts: timeoutMS: 5000.0ms)")
        return await real(work, **kw)

    d.runtime.transact = busy_store
    before = retries()
    await d._sent(delivery, "<m1@desk>")
    doc, events = await stored(d, delivery["_id"])
    assert doc["status"] == "sent" and doc["message_id"] == "<m1@desk>"
    assert "due_at" not in doc  # nothing left for a worker to claim and send again
    assert len(events) == 1
    assert events[0]["_id"] == str(uuid.uuid5(SENT_EVENTS, delivery["_id"]))
    assert retries() - before == 3
    # while the record waited, the claim was renewed, so no other worker took it
    assert held[-1] > held[0]


async def test_a_record_whose_answer_was_lost_is_not_recorded_twice(dispatcher):
    d = dispatcher
    delivery = await claimed_delivery(d)
    real, calls = d.runtime.transact, []

    async def lost_answer(work, **kw):
        calls.append(1)
        result = await real(work, **kw)
        if len(calls) == 1:  # committed, but the caller never hears it
            raise ExecutionTimeout("timed out")
        return result

    d.runtime.transact = lost_answer
    await d._sent(delivery, "<m2@desk>")
    doc, events = await stored(d, delivery["_id"])
    assert len(calls) == 2
    assert doc["status"] == "sent"
    assert len(events) == 1  # the retried record found it done and emitted nothing more
