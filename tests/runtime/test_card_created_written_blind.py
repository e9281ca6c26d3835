"""The record a card's creation makes is written blind on its first delivery (sla's SLA
record, portal's request row, intake's thread map): a re-emitted card.created (the same
card, another event id) fails that attempt on the duplicate key, and its redelivery reads
first, finds the record and ends processed: one record, nothing dead-lettered."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from functools import partial

import aio_pika
import pytest
from desk_contracts import make_envelope
from desk_contracts.events import CardCreated, CardSnapshot
from desk_contracts.topology import Topology
from desk_runtime.bus import delete_topology
from desk_runtime.deadletters import list_dead
from desk_runtime.metrics import BUS_IN
from desk_runtime.service import ServiceRuntime
from desk_runtime.settings import ServiceSettings
from pymongo import AsyncMongoClient


def outcomes(service: str, outcome: str) -> float:
    """card.created deliveries of `service` settled with `outcome`, from this process's
    metrics."""
    return sum(sample.value for metric in BUS_IN.collect() for sample in metric.samples
               if sample.name.endswith("_total") and sample.labels.get("service") == service
               and sample.labels.get("event_type") == "card.created"
               and sample.labels.get("outcome") == outcome)


async def sla_runtime(common: dict) -> tuple[ServiceRuntime, str]:
    from sla.consumers import cards
    from sla.main import seed_demo
    from sla.repository import SlaRepository
    from sla.settings import SlaSettings

    settings = SlaSettings(**common)
    rt = ServiceRuntime("sla", settings)
    context = cards.Context(settings)
    for purpose, event_type, handler in cards.HANDLERS:
        rt.on(purpose, event_type)(partial(handler, ctx=context))
    await seed_demo(SlaRepository(rt.db))
    return rt, "sla.cards"


async def portal_runtime(common: dict) -> tuple[ServiceRuntime, str]:
    from portal.consumers import cards

    rt = ServiceRuntime("portal", ServiceSettings(**common))
    cards.register(rt)
    return rt, "portal.cards"


async def intake_runtime(common: dict) -> tuple[ServiceRuntime, str]:
    from intake.consumers import cards

    rt = ServiceRuntime("intake", ServiceSettings(**common))
    cards.register(rt)
    return rt, "intake.threads"


# service -> (its runtime with its card consumers, the collection of the record it makes)
SERVICES = {"sla": (sla_runtime, "card_sla"), "portal": (portal_runtime, "requests"),
            "intake": (intake_runtime, "threads")}


@pytest.mark.parametrize("service", list(SERVICES))
async def test_a_re_emitted_card_created_ends_with_one_record_and_no_dead_letter(
        service, amqp_url, mongo_url):
    make_runtime, collection = SERVICES[service]
    ns = f"t{uuid.uuid4().hex[:10]}"
    common = dict(amqp_url=amqp_url, mongo_url=mongo_url, bus_namespace=ns,
                  mongo_db=f"{ns}_{service}", log_json=False, outbox_relay=False)
    rt, queue = await make_runtime(common)
    now = datetime.now(UTC)
    card = CardSnapshot(card_id=f"c-{uuid.uuid4().hex[:8]}", number="SD-1", version=1,
                        title="Printer", service_id=None, board_id="support",
                        column_id="queue", lane_id="l1", status_category="queued",
                        customer_status="new", priority="medium",
                        requester={"email": "Ann@acme.example"}, channel="api",
                        created_at=now, updated_at=now)
    processed = outcomes(service, "processed")
    retried = outcomes(service, "retried")

    async def settled(count: int) -> None:
        for _ in range(200):
            if outcomes(service, "processed") - processed >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{service}: card.created not processed {count} times")

    try:
        await rt.start()
        await rt.bus.publish(make_envelope(CardCreated(card=card), account_id="default"))
        await settled(1)
        assert outcomes(service, "retried") == retried  # the first: written blind, at once
        # the same card's creation again, as another event (e.g. emitted again upstream)
        await rt.bus.publish(make_envelope(CardCreated(card=card), account_id="default"))
        await settled(2)
        # its first delivery wrote blind and failed; the redelivery read and was done
        assert outcomes(service, "retried") - retried == 1
        assert await rt.db[collection].count_documents({}) == 1
        assert await rt.db[collection].find_one({"_id": card.card_id}) is not None
        assert await list_dead(amqp_url, Topology(ns), queue, 10) == []
        if service == "sla":  # its clock was counted once, not once per delivery
            counts = [d async for d in rt.db["clock_counts"].find()]
            assert sum(d.get("running", 0) for d in counts) == 1
    finally:
        await rt.stop()
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            await delete_topology(await conn.channel(), Topology(ns))
        client = AsyncMongoClient(mongo_url)
        await client.drop_database(f"{ns}_{service}")
        await client.close()
