"""Killing boards mid-way loses nothing and publishes nothing twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
from desk_contracts import make_envelope
from desk_contracts.events import Person, RequestReceived
from desk_contracts.topology import Topology

from tests.support.stack import (
    Stack,
    auth,
    cards_for_request,
    cleanup,
    mongo_find,
    wait_until,
)

pytestmark = pytest.mark.slow


class Tap:
    """A queue of the test's own, bound to `card.created.v1`, that records every copy."""

    def __init__(self, amqp_url: str, namespace: str):
        self.amqp_url = amqp_url
        self.topology = Topology(namespace)
        self.name = f"{namespace}.test.tap.{uuid.uuid4().hex[:6]}"

    async def _declare(self) -> None:
        conn = await aio_pika.connect(self.amqp_url)
        async with conn:
            ch = await conn.channel()
            exchange = await ch.declare_exchange(self.topology.exchange, "topic", durable=True)
            queue = await ch.declare_queue(self.name, durable=False, auto_delete=False)
            await queue.bind(exchange, "card.created.v1")

    def declare(self) -> None:
        asyncio.run(self._declare())

    def drain(self) -> list[dict]:
        async def run() -> list[dict]:
            conn = await aio_pika.connect(self.amqp_url)
            async with conn:
                ch = await conn.channel()
                q = await ch.get_queue(self.name, ensure=False)
                out = []
                while (m := await q.get(no_ack=True, fail=False)) is not None:
                    out.append(json.loads(m.body))
                return out
        return asyncio.run(run())


def created_entries(stack: Stack, card_id: str) -> list[dict]:
    """boards' outbox entries of one card's card.created, read from its store."""
    return mongo_find(stack.mongo_url, f"{stack.namespace}_boards", "outbox",
                      {"routing_key": "card.created.v1",
                       "envelope.payload.card.card_id": card_id})


@pytest.fixture
def stack(mongo_url, amqp_url, tmp_path):
    # Notify is not needed here; SMTP port 9 refuses, which is fine for this test.
    # leases of 3 s: the restarted boards takes the killed one's partitions, and the
    # events it committed and did not publish, over within seconds, not after the
    # default 10 s
    s = Stack(mongo_url, amqp_url, tmp_path, smtp_port=9, lease_seconds=3)
    s.extra["boards"] = {"BOARDS_OUTBOX_RELAY": "false"}
    s.start(("boards",))
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


def cards_by_request(stack: Stack, request_ids: list[str]) -> dict[str, list[dict]]:
    """The cards of each request, from boards' card list (every page): one look for all
    of them instead of a query per request."""
    out: dict[str, list[dict]] = {rid: [] for rid in request_ids}
    params: dict[str, str | int] = {"limit": 200}
    while True:
        r = httpx.get(f"{stack['boards'].url}/v1/cards", params=params, headers=auth(stack),
                      timeout=10)
        r.raise_for_status()
        page = r.json()
        for c in page["items"]:
            if c.get("request_id") in out:
                out[c["request_id"]].append(c)
        if not page.get("next_cursor"):
            return out
        params["cursor"] = page["next_cursor"]


def publish_requests(amqp_url: str, namespace: str, n: int) -> list[str]:
    async def run() -> list[str]:
        ids = []
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            ch = await conn.channel(publisher_confirms=True)
            exchange = await ch.get_exchange(Topology(namespace).exchange)
            for i in range(n):
                request_id = f"crash-{uuid.uuid4()}"
                env = make_envelope(RequestReceived(
                    request_id=request_id, channel="api", service_id="question",
                    requester=Person(email=f"c{i}@acme.example"), subject=f"Request {i}",
                    text="body", received_at=datetime.now(UTC)), account_id="default")
                await exchange.publish(aio_pika.Message(env.model_dump_json().encode()),
                                       routing_key=env.routing_key)
                ids.append(request_id)
        return ids
    return asyncio.run(run())


def test_kill_after_commit_before_publish_publishes_once_after_restart(stack, amqp_url):
    tap = Tap(amqp_url, stack.namespace)
    tap.declare()
    [request_id] = publish_requests(amqp_url, stack.namespace, 1)
    [card] = wait_until(lambda: cards_for_request(stack, request_id))
    # the positive signal: its card.created is committed in the outbox, unsent (this
    # process has no relay), so nothing can have reached the bus
    [entry] = wait_until(lambda: created_entries(stack, card["id"]))
    assert entry["sent_at"] is None
    assert tap.drain() == []

    stack["boards"].kill()
    stack["boards"].start({"BOARDS_OUTBOX_RELAY": "true"})

    # the new process publishes it once the dead committer's lease (3 s here) has run out
    events = wait_until(tap.drain, timeout=60)
    # once the entry is marked sent nothing publishes it again; publisher confirms put
    # every copy published before that in the tap already
    wait_until(lambda: [e for e in created_entries(stack, card["id"]) if e["sent_at"]],
               timeout=30)
    events += tap.drain()
    created = [e for e in events if e["payload"]["card"]["card_id"] == card["id"]]
    assert len(created) == 1
    assert [c["id"] for c in cards_for_request(stack, request_id)] == [card["id"]]


def test_kill_during_a_burst_loses_no_request_and_duplicates_no_card(stack, amqp_url):
    tap = Tap(amqp_url, stack.namespace)
    tap.declare()
    # the relay switched on (a clean restart: the crash under test is the one below)
    stack["boards"].stop()
    stack["boards"].start({"BOARDS_OUTBOX_RELAY": "true"})
    request_ids = publish_requests(amqp_url, stack.namespace, 40)
    # let it get part-way through, then crash it without any clean shutdown
    wait_until(lambda: cards_for_request(stack, request_ids[3]), timeout=30, interval=0.02)
    stack["boards"].kill()
    stack["boards"].start({"BOARDS_OUTBOX_RELAY": "true"})

    wait_until(lambda: all(cards_by_request(stack, request_ids).values()), timeout=60,
               interval=0.5)
    cards = cards_by_request(stack, request_ids)
    assert all(len(c) == 1 for c in cards.values()), \
        {rid: [x["number"] for x in c] for rid, c in cards.items() if len(c) != 1}
    numbers = [c[0]["number"] for c in cards.values()]
    assert len(set(numbers)) == len(numbers)

    seen: dict[str, set[str]] = {}

    def all_published() -> bool:
        for e in tap.drain():
            seen.setdefault(e["payload"]["card"]["card_id"], set()).add(e["event_id"])
        return len(seen) >= len(request_ids)

    wait_until(all_published, timeout=30)
    # every card announced; a re-publication after the crash reuses the same event_id,
    # so consumers (which deduplicate by event_id) see each card.created once
    assert {c[0]["id"] for c in cards.values()} == set(seen)
    assert all(len(ids) == 1 for ids in seen.values())
