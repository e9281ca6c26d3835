"""The integrator example runs against the real broker and a running desk: the request it
publishes becomes a card, and it hears that card's `card.created`."""

from __future__ import annotations

import asyncio
import importlib
import sys

import aio_pika
import pytest

from tests.support.stack import Stack, cleanup

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def desk(mongo_url, amqp_url, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("integrator"))
    s.start(("boards",))
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)

    async def drop_integrator_queue() -> None:
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            await (await conn.channel()).queue_delete(f"{s.namespace}.crm.cards")

    asyncio.run(drop_integrator_queue())


async def test_integrator_files_a_request_and_hears_its_card(desk, amqp_url, monkeypatch):
    monkeypatch.setenv("DESK_AMQP_URL", amqp_url)
    monkeypatch.setenv("DESK_BUS_NAMESPACE", desk.namespace)
    sys.modules.pop("examples.integrator.app", None)
    integrator = importlib.import_module("examples.integrator.app")
    async with integrator.broker:
        await integrator.broker.start()
        request_id = await integrator.file_request(
            "question", "buyer@acme.example", "Invoice copy", "Please resend the invoice.")
        for _ in range(300):
            created = [e for e in integrator.seen if e.type == "card.created"
                       and e.payload["card"].get("request_id") == request_id]
            if created:
                break
            await asyncio.sleep(0.1)
    assert created, "the integrator never heard the card its request became"
    card = created[0].payload["card"]
    assert card["title"] == "Invoice copy"
    assert card["number"].startswith("SD-")
    assert card["requester"]["email"] == "buyer@acme.example"
