"""A notify replica that stalled past its claim does not send what another replica took over.

Two dispatchers on one real store (two notify replicas) and a real SMTP sink. The first
claims a delivery and stalls (its claim runs out); the second claims it (a greater claim
token). When the first resumes it must not mail the customer — whether the second has
already sent the delivery or has only claimed it — and what the first writes afterwards
(a retry, a deferral) must not disturb the second's claim.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from desk_runtime.mail import SmtpConfig
from desk_runtime.outbox import COLLECTION
from desk_runtime.service import ServiceRuntime
from notify.dispatcher import Dispatcher
from notify.metrics import NOTIFICATIONS
from notify.settings import NotifySettings


STALL = timedelta(seconds=1)  # the stalled replica's claim: runs out while it is paused


@pytest.fixture
async def replicas(amqp_url, mongo_url, sink):
    ns = f"t{uuid.uuid4().hex[:10]}"
    settings = NotifySettings(amqp_url=amqp_url, mongo_url=mongo_url, bus_namespace=ns,
                              mongo_db=f"{ns}_notify", log_json=False, outbox_relay=False,
                              smtp=SmtpConfig(host="127.0.0.1", port=sink.port))
    runtime = ServiceRuntime("notify", settings)
    first, second = Dispatcher(runtime, settings), Dispatcher(runtime, settings)
    first.worker, second.worker = "notify-a:1", "notify-b:2"
    await first.repo.ensure_indexes()
    yield first, second
    for d in (first, second):
        await d.http.aclose()
    await runtime.client.drop_database(runtime.db.name)
    await runtime.client.close()


async def record(d: Dispatcher, email: str) -> str:
    delivery = {"_id": str(uuid.uuid4()), "cause_event_id": str(uuid.uuid4()),
                "channel": "email", "recipient": email, "kind": "acknowledgment",
                "audience": "agent", "language": "en", "status": "pending", "attempts": 0,
                "due_at": datetime.now(UTC) - timedelta(seconds=1), "card_id": "c1",
                "context": {"card": {"number": "SUP-7", "title": "Printer jams",
                                     "url": "http://portal.example/r/SUP-7"},
                            "service": {"id": "problem", "name": "Something is broken"},
                            "customer_name": "Anna", "auto_reply": "", "channel": "email"}}

    async def write(uow):
        await d.repo.record_delivery(delivery, uow.session)

    await d.runtime.transact(write)
    return delivery["_id"]


async def stored(d: Dispatcher, delivery_id: str) -> tuple[dict, int]:
    doc = await d.runtime.db["deliveries"].find_one({"_id": delivery_id})
    events = await d.runtime.db[COLLECTION].count_documents(
        {"routing_key": "notification.sent.v1", "envelope.payload.notification_id": delivery_id})
    return doc, events


def claims_lost() -> float:
    return NOTIFICATIONS.labels("email", "acknowledgment", "claim_lost")._value.get()


async def stalled_claim(first: Dispatcher, email: str) -> dict:
    """The first replica's claim, left to run out (the replica paused)."""
    delivery_id = await record(first, email)
    claimed = await first.repo.claim_due_delivery(first.worker, STALL, "email")
    assert claimed["_id"] == delivery_id and claimed["claim"] == 1
    await asyncio.sleep(STALL.total_seconds() + 0.2)  # the pause: longer than the claim
    return claimed


async def test_a_replica_resuming_after_its_delivery_was_sent_by_another_does_not_send_again(
        replicas, sink):
    first, second = replicas
    email = f"anna.{uuid.uuid4().hex[:6]}@acme.example"
    stale = await stalled_claim(first, email)

    assert await second._claim_and_deliver("email") == 0  # takes it over and sends it
    assert len(sink.wait_for(email, 1)) == 1

    lost = claims_lost()
    await first.deliver(stale)  # the first replica wakes up and carries on
    doc, events = await stored(first, stale["_id"])
    assert doc["status"] == "sent" and doc["claim"] == 2 and events == 1
    assert claims_lost() - lost == 1  # it noticed, and sent nothing
    assert len(sink.to(email)) == 1


async def test_a_replica_resuming_after_another_claimed_its_delivery_neither_sends_nor_undoes_it(
        replicas, sink):
    first, second = replicas
    email = f"boris.{uuid.uuid4().hex[:6]}@acme.example"
    stale = await stalled_claim(first, email)
    taken = await second.repo.claim_due_delivery(second.worker, timedelta(seconds=60), "email")
    assert taken["_id"] == stale["_id"] and taken["claim"] == 2

    lost = claims_lost()
    await first.deliver(stale)  # resumes while the second holds the claim, before it sends
    assert claims_lost() - lost == 1
    # nor can the stale replica put the delivery back as due (it would be claimed a third time)
    await first.repo.schedule_retry(stale["_id"], "stale", datetime.now(UTC), stale["claim"])
    doc, _ = await stored(first, stale["_id"])
    assert doc["status"] == "pending" and doc["due_at"] > datetime.now(UTC) + timedelta(seconds=30)

    await second.deliver(taken)  # the holder of the claim sends it, once
    doc, events = await stored(second, stale["_id"])
    assert doc["status"] == "sent" and events == 1
    assert len(sink.wait_for(email, 1)) == 1
    assert len(sink.to(email)) == 1
