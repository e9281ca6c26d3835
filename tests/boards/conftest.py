"""Boards as a real process on the real broker and store, plus helpers to drive it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
from desk_contracts import make_envelope
from desk_contracts.events import EventPayload, Person, RequestReceived
from desk_contracts.topology import Topology
from pymongo import MongoClient

from tests.support.stack import Stack, auth, cleanup, wait_until


class Desk:
    """What a test needs: the boards URL, an admin client, the bus and the store."""

    def __init__(self, stack: Stack, mongo_url: str, amqp_url: str):
        self.stack = stack
        self.url = stack["boards"].url
        self.admin = httpx.Client(base_url=self.url, headers=auth(stack), timeout=20)
        self.amqp_url = amqp_url
        self.mongo = MongoClient(mongo_url, tz_aware=True)
        self.db = self.mongo[f"{stack.namespace}_boards"]

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"},
                            timeout=20)

    def publish(self, *payloads: EventPayload) -> list[str]:
        """Publish as intake/portal would; the events' ids."""
        ids: list[str] = []

        async def run() -> None:
            conn = await aio_pika.connect(self.amqp_url)
            async with conn:
                channel = await conn.channel(publisher_confirms=True)
                exchange = await channel.get_exchange(Topology(self.stack.namespace).exchange)
                for payload in payloads:
                    env = make_envelope(payload, account_id="default")
                    ids.append(str(env.event_id))
                    await exchange.publish(aio_pika.Message(body=env.model_dump_json().encode()),
                                           routing_key=env.routing_key)
        asyncio.run(run())
        return ids

    def request(self, service: str = "question", **overrides) -> dict:
        """Publish a request.received as intake/portal would and wait for its card."""
        request_id = overrides.pop("request_id", f"t-{uuid.uuid4()}")
        body = {"request_id": request_id, "channel": "email", "service_id": service,
                "requester": Person(email=f"c.{uuid.uuid4().hex[:6]}@acme.example",
                                    name="Customer"),
                "subject": "Printer on fire", "text": "Please help.",
                "received_at": datetime.now(UTC)} | overrides
        self.publish(RequestReceived(**body))
        return self.card_of(request_id)

    def card_of(self, request_id: str) -> dict:
        def find():
            r = self.admin.get("/v1/cards", params={"request_id": request_id})
            r.raise_for_status()
            return r.json()["items"]
        return wait_until(find, timeout=30)[0]

    def card(self, ref: str) -> dict:
        r = self.admin.get(f"/v1/cards/{ref}")
        r.raise_for_status()
        return r.json()

    def outbox(self, type_: str | None = None, card_id: str | None = None) -> list[dict]:
        """The events boards committed to publish (its outbox), oldest first."""
        query: dict = {}
        if type_:
            query["envelope.type"] = type_
        found = [d["envelope"] for d in self.db["outbox"].find(query).sort("seq", 1)]
        if card_id:
            found = [e for e in found if card_id in (
                e["payload"].get("card_id"), (e["payload"].get("card") or {}).get("card_id"),
                e["payload"].get("child_id"), e["payload"].get("parent_id"))]
        return found

    def drain(self, queue: str) -> list[bytes]:
        """Every message waiting in one of the namespace's logical queues (all partitions),
        taken as its consumer would take them. Partitions have a single active consumer and
        refuse basic.get, so each is consumed for as many messages as it holds."""
        async def run() -> list[bytes]:
            topology = Topology(self.stack.namespace)
            conn = await aio_pika.connect(self.amqp_url)
            bodies: list[bytes] = []
            async with conn:
                channel = await conn.channel()
                for index in range(topology.partitions):
                    name = f"{topology.name(queue)}.p{index}"
                    q = await channel.declare_queue(name, passive=True)
                    waiting = q.declaration_result.message_count
                    if not waiting:
                        continue
                    async with q.iterator(no_ack=True) as messages:
                        async for message in messages:
                            bodies.append(message.body)
                            waiting -= 1
                            if waiting == 0:
                                break
            return bodies
        return asyncio.run(run())

    def put_service(self, service: dict) -> None:
        r = self.admin.put(f"/v1/services/{service['id']}", json=service)
        assert r.status_code == 200, r.text

    def new_agent(self, boards: list[str], role: str = "agent", name: str = "Agent") -> dict:
        r = self.admin.post("/v1/agents", json={"id": f"ag-{uuid.uuid4().hex[:8]}",
                                                "name": name, "role": role, "boards": boards})
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture(scope="module")
def desk(mongo_url, amqp_url, tmp_path_factory):
    stack = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("boards"))
    stack.start(("boards",))
    d = Desk(stack, mongo_url, amqp_url)
    yield d
    d.admin.close()
    d.mongo.close()
    stack.stop()
    cleanup(mongo_url, amqp_url, stack.namespace)
