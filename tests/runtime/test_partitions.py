"""Partitioned queues on the real broker: a card's events land in one partition in order,
a message without the partition header arrives exactly once, and changing the partition
count keeps both."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import aio_pika
import pytest

from desk_contracts import make_envelope
from desk_contracts.events import Person, RequestReceived
from desk_contracts.topology import Topology, queue_spec
from desk_runtime.bus import Bus, delete_topology
from desk_runtime.partitions import repartition, status, take

SPEC = queue_spec("boards.requests")
CARDS = 6
PER_CARD = 5


@pytest.fixture
async def ns(amqp_url):
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        for count in (1, 2, 3):  # whatever the test left, at any count
            await delete_topology(await conn.channel(), Topology(name, count))


def request(key: str, seq: int) -> RequestReceived:
    return RequestReceived(request_id=key, channel="api", service_id="question",
                           requester=Person(email=f"{seq}@acme.example"),
                           subject=f"{key}:{seq}", text="T", received_at=datetime.now(UTC))


async def counts(amqp_url: str, topology: Topology) -> list[int]:
    """Messages waiting in each partition of the queue (-1: no such partition)."""
    return [ready for name, ready, _ in await status(amqp_url, topology)
            if name.startswith(topology.queue(SPEC) + ".p")]


async def contents(amqp_url: str, topology: Topology) -> dict[int, list[tuple[str, str]]]:
    """Each partition's messages (request id, subject) in queue order, taken out."""
    out: dict[int, list[tuple[str, str]]] = {}
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel()
        for index in range(topology.partitions):
            got: list[tuple[str, str]] = []

            async def keep(m, got=got) -> None:
                body = json.loads(m.body)["payload"]
                got.append((body["request_id"], body["subject"]))
            await take(channel, topology.partition(SPEC, index), keep)
            out[index] = got
    return out


async def publish(amqp_url: str, topology: Topology, keys: list[str]) -> None:
    bus = Bus(amqp_url, topology, "boards")
    await bus.start()
    try:
        for seq in range(PER_CARD):
            for key in keys:
                await bus.publish(make_envelope(request(key, seq), account_id="default"))
        # an integrator's message without the header: exactly one copy, in some partition
        await bus.publish_raw(make_envelope(request("no-header", 0), account_id="default")
                              .model_dump_json().encode(), "request.received.v1")
    finally:
        await bus.close()


def assert_cards_whole_and_in_order(parts: dict[int, list[tuple[str, str]]],
                                    keys: list[str]) -> None:
    where: dict[str, set[int]] = defaultdict(set)
    for index, messages in parts.items():
        for key, _ in messages:
            where[key].add(index)
    for key in keys:
        assert len(where[key]) == 1, (key, where[key])  # one card, one partition
        [index] = where[key]
        assert [s for k, s in parts[index] if k == key] == \
            [f"{key}:{i}" for i in range(PER_CARD)]  # in the order published


async def test_a_cards_events_share_a_partition_and_survive_repartitioning(amqp_url, ns):
    total = CARDS * PER_CARD + 1
    keys = [f"card-{uuid.uuid4().hex[:8]}" for _ in range(CARDS)]
    await publish(amqp_url, Topology(ns, 2), keys)
    spread = await counts(amqp_url, Topology(ns, 2))
    assert sum(spread) == total and all(spread), spread  # spread over both, none lost

    # growing: 2 → 3 partitions, every card still whole in one partition, in order
    assert (await repartition(amqp_url, ns, 2, 3))["boards.requests"] == total
    parts = await contents(amqp_url, Topology(ns, 3))
    assert sum(len(m) for m in parts.values()) == total
    assert_cards_whole_and_in_order(parts, keys)
    assert [k for m in parts.values() for k, _ in m].count("no-header") == 1

    # shrinking: 3 → 1, the partitions beyond are gone and nothing was lost or reordered
    await publish(amqp_url, Topology(ns, 3), keys)
    assert (await repartition(amqp_url, ns, 3, 1))["boards.requests"] == total
    assert await counts(amqp_url, Topology(ns, 3)) == [total, -1, -1]
    parts = await contents(amqp_url, Topology(ns, 1))
    assert_cards_whole_and_in_order(parts, keys)


async def test_a_binding_an_older_version_left_is_removed_when_the_topology_is_declared(
        amqp_url, ns):
    # an older version bound intake.threads to comment.added, which intake never handled
    topology = Topology(ns, 1)
    threads, portal = queue_spec("intake.threads"), queue_spec("portal.cards")
    bus = Bus(amqp_url, topology, "intake")
    await bus.start()
    await bus.close()
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel()
        events = await channel.get_exchange(topology.exchange)
        spread = await channel.get_exchange(topology.hash_exchange(threads))
        await spread.bind(events, routing_key="comment.added.v1")
    # the new version starts: declaring the topology drops the retired binding
    bus = Bus(amqp_url, topology, "intake")
    await bus.start()
    try:
        await bus.publish_raw(b"{}", "comment.added.v1")
    finally:
        await bus.close()
    ready = {name: n for name, n, _ in await status(amqp_url, topology)}
    assert ready[topology.partition(portal, 0)] == 1  # still bound where it is handled
    assert ready[topology.partition(threads, 0)] == 0
