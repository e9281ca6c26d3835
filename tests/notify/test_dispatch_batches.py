"""Under a burst the dispatcher claims, sends and records deliveries in batches.

A batch costs a handful of store statements whatever its size, so mail keeps pace with
the cards. Each delivery is still sent once, in due order, with one `notification.sent`;
a suppressed address inside a batch is settled without a send while the rest go out.
Real store, real SMTP sink.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from desk_runtime.mail import SmtpConfig
from desk_runtime.metrics import STORE_TRANSACTIONS
from desk_runtime.outbox import COLLECTION
from desk_runtime.service import ServiceRuntime
from notify.dispatcher import Dispatcher
from notify.settings import NotifySettings



@pytest.fixture
async def dispatcher(amqp_url, mongo_url, sink):
    ns = f"t{uuid.uuid4().hex[:10]}"
    settings = NotifySettings(amqp_url=amqp_url, mongo_url=mongo_url, bus_namespace=ns,
                              mongo_db=f"{ns}_notify", log_json=False, outbox_relay=False,
                              dispatch_batch=8,
                              smtp=SmtpConfig(host="127.0.0.1", port=sink.port))
    runtime = ServiceRuntime("notify", settings)
    d = Dispatcher(runtime, settings)
    await d.repo.ensure_indexes()
    yield d
    await d.http.aclose()
    await runtime.client.drop_database(runtime.db.name)
    await runtime.client.close()


async def record(d: Dispatcher, i: int) -> str:
    delivery = {"_id": f"d{i:02d}-{uuid.uuid4().hex[:6]}", "cause_event_id": str(uuid.uuid4()),
                "channel": "email", "recipient": f"c{i}@acme.example", "kind": "acknowledgment",
                "audience": "customer", "language": "en", "status": "pending", "attempts": 0,
                # due in the order recorded: the oldest first
                "due_at": datetime.now(UTC) - timedelta(seconds=100 - i), "card_id": f"c{i}",
                "context": {"card": {"number": f"SUP-{i}", "title": f"Request {i}",
                                     "url": f"http://portal.example/r/SUP-{i}"},
                            "service": {"id": "problem", "name": "Something is broken"},
                            "customer_name": "Anna", "auto_reply": "", "channel": "email"}}

    async def write(uow):
        await d.repo.record_delivery(delivery, uow.session)

    await d.runtime.transact(write)
    return delivery["_id"]


def dispatch_transactions() -> float:
    return STORE_TRANSACTIONS.labels("notify", "dispatch")._value.get()


async def test_a_burst_is_sent_in_batches_once_each_in_due_order(dispatcher, sink):
    d = dispatcher
    ids = [await record(d, i) for i in range(20)]
    await d.runtime.db["suppressions"].insert_one({"_id": "c3@acme.example", "active": True})
    before = dispatch_transactions()

    rounds = 0
    while await d._claim_and_deliver("email") == 0:
        rounds += 1
    assert rounds == 3  # 8 + 8 + 4

    sent_to = [rcpt[0] for rcpt, _, _ in sink.messages]
    expected = [f"c{i}@acme.example" for i in range(20) if i != 3]
    assert sent_to == expected  # once each, in due order, the suppressed one not at all
    # one recording transaction per batch, not one per mail
    assert dispatch_transactions() - before == 3
    docs = {doc["_id"]: doc async for doc in d.runtime.db["deliveries"].find()}
    assert docs[ids[3]]["status"] == "suppressed"
    assert all(docs[i]["status"] == "sent" and "due_at" not in docs[i]
               for n, i in enumerate(ids) if n != 3)
    events = [e["envelope"]["payload"]["notification_id"] async for e in
              d.runtime.db[COLLECTION].find({"routing_key": "notification.sent.v1"})]
    assert sorted(events) == sorted(i for n, i in enumerate(ids) if n != 3)
    # and nothing is left to claim: a later round sends nothing more
    assert await d._claim_and_deliver("email") is None
    assert len(sink.messages) == 19


async def test_two_dispatchers_claiming_at_once_never_share_a_delivery(dispatcher, sink):
    import asyncio

    d = dispatcher
    other = Dispatcher(d.runtime, d.settings)
    try:
        ids = [await record(d, i) for i in range(24)]
        while True:
            a, b = await asyncio.gather(d._claim_and_deliver("email"),
                                        other._claim_and_deliver("email"))
            if a is None and b is None:
                break
        sent_to = sorted(rcpt[0] for rcpt, _, _ in sink.messages)
        assert sent_to == sorted(f"c{i}@acme.example" for i in range(24))
        assert await d.runtime.db["deliveries"].count_documents(
            {"_id": {"$in": ids}, "status": "sent"}) == 24
    finally:
        await other.http.aclose()
