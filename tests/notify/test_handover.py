"""Deliveries a consumer plans go straight to this process's dispatcher.

They are recorded already claimed by it and, once the transaction commits, sent without
the claim's round trips in the store — and every guarantee of a claim still holds: a
stop hands back what was not sent, a process that died leaves its claims to run out and
another replica sends them, once, and a process that resumes after being taken over
does not send. Real store, real SMTP sink; the planner and dispatcher in this process.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import notify.dispatcher as dispatcher_module
import pytest
from desk_contracts import make_envelope
from desk_contracts.events import CatalogServiceChanged
from desk_runtime.mail import SmtpConfig
from desk_runtime.outbox import COLLECTION
from desk_runtime.service import ServiceRuntime
from notify.consumers.planner import Planner
from notify.dispatcher import LEASE, Dispatcher
from notify.settings import NotifySettings

from tests.notify.conftest import SERVICES

CONTEXT = {"card": {"number": "SUP-9", "title": "Printer jams",
                    "url": "http://portal.example/r/SUP-9"},
           "service": {"id": "problem", "name": "Something is broken"},
           "customer_name": "Anna", "auto_reply": ""}


@pytest.fixture
async def notify(amqp_url, mongo_url, sink):
    ns = f"t{uuid.uuid4().hex[:10]}"
    settings = NotifySettings(amqp_url=amqp_url, mongo_url=mongo_url, bus_namespace=ns,
                              mongo_db=f"{ns}_notify", log_json=False, outbox_relay=False,
                              smtp=SmtpConfig(host="127.0.0.1", port=sink.port))
    runtime = ServiceRuntime("notify", settings)
    dispatcher = Dispatcher(runtime, settings)
    await dispatcher.repo.ensure_indexes()
    yield dispatcher, Planner(settings, dispatcher)
    await dispatcher.http.aclose()
    await runtime.client.drop_database(runtime.db.name)
    await runtime.client.close()


class Calls:
    """Counts a repository method's calls (and still makes them)."""

    def __init__(self, dispatcher: Dispatcher, name: str):
        self.count = 0
        real = getattr(dispatcher.repo, name)

        async def counted(*args, **kwargs):
            self.count += 1
            return await real(*args, **kwargs)

        setattr(dispatcher.repo, name, counted)


async def plan(dispatcher: Dispatcher, planner: Planner, email: str) -> dict:
    """A consumer's transaction recording one acknowledgment to `email`; the stored record."""
    cause = make_envelope(CatalogServiceChanged(service=SERVICES["problem"], revision=1),
                          account_id="default")

    async def work(uow):
        await planner.record(uow, [planner.delivery(
            uow, kind="acknowledgment", channel="email", recipient=email, card_id="c1",
            context=CONTEXT, language="en", audience="customer")])

    await dispatcher.runtime.transact(work, causation=cause)
    [doc] = [d async for d in dispatcher.runtime.db["deliveries"].find({"recipient": email})]
    return doc


async def sent_events(dispatcher: Dispatcher, delivery_id: str) -> int:
    return await dispatcher.runtime.db[COLLECTION].count_documents(
        {"routing_key": "notification.sent.v1",
         "envelope.payload.notification_id": delivery_id})


def address(tag: str) -> str:
    return f"{tag}.{uuid.uuid4().hex[:6]}@acme.example"


async def test_a_planned_delivery_is_sent_without_claiming_it_in_the_store(notify, sink):
    dispatcher, planner = notify
    claims, confirms = Calls(dispatcher, "claim_due_deliveries"), Calls(dispatcher,
                                                                      "confirm_claims")
    email = address("anna")
    doc = await plan(dispatcher, planner, email)
    # recorded as a claim by this process would leave it: fenced, leased, counted
    assert doc["claimed_by"] == dispatcher.worker and doc["claim"] == 1
    assert doc["attempts"] == 1 and doc["due_at"] == doc["claimed_until"]
    assert doc["claimed_until"] > datetime.now(UTC) + LEASE - timedelta(seconds=5)

    # sent; the store is looked at again only after the idle poll
    poll = dispatcher.settings.dispatch_poll_seconds
    assert await dispatcher._claim_and_deliver("email") == poll
    assert len(sink.wait_for(email, 1)) == 1
    stored = await dispatcher.runtime.db["deliveries"].find_one({"_id": doc["_id"]})
    assert stored["status"] == "sent" and "due_at" not in stored
    assert await sent_events(dispatcher, doc["_id"]) == 1
    assert claims.count == 0 and confirms.count == 0  # no claim round trips at all
    # nothing is left over to send again
    assert await dispatcher._claim_and_deliver("email") is None
    assert claims.count == 1 and len(sink.to(email)) == 1


async def test_a_stop_hands_back_what_was_handed_over_and_not_sent(notify, sink):
    dispatcher, planner = notify
    waiting = await plan(dispatcher, planner, address("boris"))
    await dispatcher.stop()
    released = await dispatcher.runtime.db["deliveries"].find_one({"_id": waiting["_id"]})
    assert released["claimed_until"] is None and released["attempts"] == 0
    assert released["due_at"] <= datetime.now(UTC)  # due at once, for any replica
    # planned while stopping: recorded unclaimed, due at once
    late = await plan(dispatcher, planner, address("carol"))
    assert "claimed_by" not in late and late["due_at"] <= datetime.now(UTC)

    other = Dispatcher(dispatcher.runtime, dispatcher.settings)
    try:
        while await other._claim_and_deliver("email") == 0:
            pass
        assert sorted(rcpt[0] for rcpt, _, _ in sink.messages) == sorted(
            [waiting["recipient"], late["recipient"]])  # each once
    finally:
        await other.http.aclose()


async def test_a_dead_processs_handed_over_delivery_is_sent_once_by_another(
        notify, sink, monkeypatch):
    monkeypatch.setattr(dispatcher_module, "LEASE", timedelta(seconds=1))
    dispatcher, planner = notify
    email = address("dora")
    doc = await plan(dispatcher, planner, email)  # then this process freezes, sends nothing
    other = Dispatcher(dispatcher.runtime, dispatcher.settings)
    other.worker = "notify-b:2"
    try:
        assert await other._claim_and_deliver("email") != 0  # still claimed: not yet
        assert sink.messages == []
        await asyncio.sleep(1.2)  # the lease runs out
        assert await other._claim_and_deliver("email") == 0
        assert len(sink.wait_for(email, 1)) == 1
        # the frozen process resumes with its hand-over: its claim was taken over
        await dispatcher._claim_and_deliver("email")
        stored = await dispatcher.runtime.db["deliveries"].find_one({"_id": doc["_id"]})
        assert stored["status"] == "sent" and stored["claim"] == 2
        assert await sent_events(dispatcher, doc["_id"]) == 1
        assert len(sink.to(email)) == 1
    finally:
        await other.http.aclose()


async def test_only_deliveries_due_now_and_pending_are_claimed_on_record(notify):
    dispatcher, _ = notify
    now = datetime.now(UTC)
    due = {"_id": "d1", "channel": "email", "status": "pending", "next_attempt_at": now,
           "attempts": 0}
    assert dispatcher.claim_on_record(due)["claimed_by"] == dispatcher.worker
    later = due | {"next_attempt_at": now + timedelta(minutes=5)}
    suppressed = due | {"status": "suppressed"}
    unknown = due | {"channel": "pigeon"}
    for delivery in (later, suppressed, unknown):
        assert dispatcher.claim_on_record(delivery) is delivery


async def test_a_send_whose_record_meets_a_stuck_transaction_is_recorded_once_it_ends(
        notify, sink, monkeypatch, mongo_url):
    """A transaction left open on a delivery (its client gave up mid-way: the store keeps
    it until it reaps it) makes the record of the delivery's send conflict, and a plain
    write to the delivery waits in the store for as long as that transaction lives. The
    worker holds on to nothing: each of its store calls is bounded, so it keeps retrying
    the record, and once the transaction is gone the send is recorded — mailed once,
    one notification.sent."""
    from pymongo import AsyncMongoClient
    from notify.metrics import RECORD_RETRIES

    dispatcher, planner = notify
    monkeypatch.setattr(dispatcher.settings, "transaction_timeout_seconds", 0.5)
    monkeypatch.setattr(dispatcher_module, "RECORD_RETRY_MAX", 0.2)
    email = address("erik")
    doc = await plan(dispatcher, planner, email)
    other = AsyncMongoClient(mongo_url)
    session = other.start_session()
    try:
        await session.start_transaction()
        await other[dispatcher.runtime.db.name]["deliveries"].update_one(
            {"_id": doc["_id"]}, {"$set": {"touched": True}}, session=session)
        before = RECORD_RETRIES._value.get()
        worker = asyncio.create_task(dispatcher._claim_and_deliver("email"))
        for _ in range(200):  # the mail goes out; its record is tried again and again
            if sink.to(email) and RECORD_RETRIES._value.get() - before >= 3:
                break
            await asyncio.sleep(0.05)
        assert len(sink.to(email)) == 1
        assert RECORD_RETRIES._value.get() - before >= 3, "a record attempt never came back"
        assert not worker.done()
        await session.abort_transaction()
        await asyncio.wait_for(worker, 30)
    finally:
        await session.end_session()
        await other.close()
    stored = await dispatcher.runtime.db["deliveries"].find_one({"_id": doc["_id"]})
    assert stored["status"] == "sent" and "touched" not in stored
    assert await sent_events(dispatcher, doc["_id"]) == 1
    assert len(sink.to(email)) == 1


async def test_a_planned_delivery_wakes_the_worker_even_when_another_commit_came_first(
        notify, sink, monkeypatch):
    """notify commits many transactions that plan nothing (a card copy, a clock): one of
    them committing while a delivery's transaction still runs must not spend that
    delivery's wake-up — the worker would sleep out its idle back-off with the mail
    waiting (up to 10 s in a burst). Here the back-off is 60 s, so only the wake-up can
    send the mail in time."""
    dispatcher, planner = notify
    monkeypatch.setattr(dispatcher_module, "IDLE_MAX_SECONDS", 60.0)
    monkeypatch.setattr(dispatcher.settings, "dispatch_poll_seconds", 60.0)
    dispatcher.start()
    try:
        workers = dispatcher._channels["email"].workers
        for _ in range(100):  # their first round found nothing: each sleeps 60 s
            if all(w.waiting is not None for w in workers):
                break
            await asyncio.sleep(0.05)
        assert [w.waiting for w in workers] == [60.0] * len(workers)
        email = address("fay")
        cause = make_envelope(CatalogServiceChanged(service=SERVICES["problem"], revision=1),
                              account_id="default")
        recorded, go = asyncio.Event(), asyncio.Event()

        async def planning(uow):
            await planner.record(uow, [planner.delivery(
                uow, kind="acknowledgment", channel="email", recipient=email,
                card_id="c1", context=CONTEXT, language="en", audience="customer")])
            recorded.set()
            await go.wait()

        async def unrelated(uow):
            await uow.db["deliveries"].find_one({"_id": "none"}, session=uow.session)

        planned = asyncio.create_task(dispatcher.runtime.transact(planning, causation=cause))
        await recorded.wait()
        await dispatcher.runtime.transact(unrelated)  # commits first
        go.set()
        await planned
        assert len(await asyncio.to_thread(sink.wait_for, email, 1, 10.0)) == 1
    finally:
        await dispatcher.stop()
