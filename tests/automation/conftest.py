"""Automation's process-level tests share one stack: the five services on the real bus
and store, with the demo catalog's automation (the four stories) loaded by boards."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import httpx
import pytest
from desk_contracts import make_envelope
from desk_contracts.topology import PARTITION_HEADER, Topology

from tests.support.mail import MailSink
from tests.support.stack import Stack, auth, cleanup, wait_until


@pytest.fixture(scope="package")
def mail():
    with MailSink() as sink:
        yield sink


@pytest.fixture(scope="package")
def stack(mongo_url, amqp_url, mail, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("automation"), smtp_port=mail.port)
    # the automation clock looks for due timed rules every second (default 5 s)
    s.extra["boards"] = {"BOARDS_AUTOMATION_TIMER_SECONDS": "1"}
    s.start()
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


class Boards:
    """Boards' API as the admin token holder, and the requests customers file via intake."""

    def __init__(self, stack: Stack, amqp_url: str):
        self.stack = stack
        self.amqp_url = amqp_url
        self.http = httpx.Client(base_url=stack["boards"].url, headers=auth(stack), timeout=20)

    def put(self, kind: str, item_id: str, body: dict) -> httpx.Response:
        return self.http.put(f"/v1/automation/{kind}/{item_id}", json=body)

    def card(self, ref: str) -> dict:
        r = self.http.get(f"/v1/cards/{ref}")
        r.raise_for_status()
        return r.json()

    def runs(self, ref: str) -> list[dict]:
        r = self.http.get(f"/v1/cards/{ref}/automation")
        r.raise_for_status()
        return r.json()["items"]

    def move(self, card: dict, column_id: str) -> dict:
        current = self.card(card["id"])
        r = self.http.post(f"/v1/cards/{card['id']}/move", json={
            "column_id": column_id, "version": current["version"]})
        assert r.status_code == 200, r.text
        return r.json()

    def submit(self, service: str, subject: str, fields: dict | None = None,
               email: str | None = None, name: str = "Anna") -> dict:
        """A customer's request through intake's web API; its card once boards made it."""
        email = email or f"anna.{uuid.uuid4().hex[:6]}@hopper.example"
        body = {"service": service, "requester": {"email": email, "name": name},
                "subject": subject, "text": f"{subject}, please.", "fields": fields or {}}

        def post():
            r = httpx.post(f"{self.stack['intake'].url}/v1/requests", json=body, timeout=10)
            return r if r.status_code != 404 else None  # intake still taking in the catalog
        r = wait_until(post, timeout=30)
        assert r.status_code == 202, r.text
        request_id = r.json()["request_id"]
        found = wait_until(lambda: self.http.get("/v1/cards", params={
            "request_id": request_id}).json()["items"], timeout=30)
        return found[0] | {"email": email}

    def publish(self, payload) -> None:
        """An event on the bus as its owner publishes it (keyed by its card)."""
        async def run() -> None:
            envelope = make_envelope(payload, account_id="default")
            conn = await aio_pika.connect(self.amqp_url)
            async with conn:
                channel = await conn.channel(publisher_confirms=True)
                exchange = await channel.get_exchange(Topology(self.stack.namespace).exchange)
                await exchange.publish(aio_pika.Message(
                    body=envelope.model_dump_json().encode(),
                    headers={PARTITION_HEADER: payload.card_id}),
                    routing_key=envelope.routing_key)
        asyncio.run(run())

    def children(self, card_id: str) -> list[dict]:
        parent = self.card(card_id)
        return [self.card(link["card_id"]) for link in parent["links"]
                if link["kind"] == "child"]


@pytest.fixture(scope="package")
def boards(stack, amqp_url):
    b = Boards(stack, amqp_url)
    yield b
    b.http.close()
