"""The partitions of the bus's queues from the command line: what they hold, and changing
their number.

    python -m desk_runtime.partitions status
    python -m desk_runtime.partitions owners
    python -m desk_runtime.partitions repartition --from 4 --to 8

`owners` lists, per service, its live replicas and the partitions each consumes (the
membership records in the service's store, desk_runtime.membership; DESK_MONGO_URL, and
DESK_MONGO_DB_PATTERN, default `desk_{service}`, for each service's database).

`repartition` is for a stopped desk (every service scaled to zero, so nothing consumes
or publishes): it re-spreads what waits in the queues over the new partition count so
that each card's events are again in one partition, in their order. Per queue it
(1) declares the new partitions and binds them to the queue's consistent-hash exchange,
(2) unbinds the partitions beyond the new count, (3) moves every message of the old
partitions, one partition after the other and in order, to a staging queue, (4) publishes
the staged messages again through the hash exchange (their `x-partition-key` header
picks the new partition) and (5) deletes the staging queue and the partitions beyond the
new count. A card's events were all in one old partition, so they stay in order. Start
the services with `<SERVICE>_BUS_PARTITIONS` set to the new count afterwards.

Uses DESK_AMQP_URL and DESK_BUS_NAMESPACE like the services do.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import aio_pika
from desk_contracts.topology import QUEUES, PARTITIONS, QueueSpec, Topology
from pymongo import AsyncMongoClient

from desk_runtime.membership import Members


async def status(amqp_url: str, topology: Topology) -> list[tuple[str, int, int]]:
    """(partition queue, ready messages, consumers) for every queue's partitions."""
    out = []
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        for spec in QUEUES:
            for name in topology.partition_queues(spec):
                channel = await conn.channel()
                try:
                    queue = await channel.declare_queue(name, passive=True)
                except aio_pika.exceptions.ChannelClosed:
                    out.append((name, -1, 0))
                    continue
                out.append((name, queue.declaration_result.message_count,
                            queue.declaration_result.consumer_count))
                await channel.close()
    return out


async def take(channel: aio_pika.abc.AbstractChannel, name: str, handle) -> int:
    """Every message waiting in queue `name`, in order, each handed to `handle` then acked.

    Consumed, not fetched: quorum queues with a single active consumer refuse basic.get.
    With the services stopped, this consumer is the queue's only (so active) one.
    """
    queue = await channel.declare_queue(name, passive=True)
    count = queue.declaration_result.message_count
    taken = 0
    if count:
        async with queue.iterator() as messages:
            async for message in messages:
                await handle(message)
                await message.ack()
                taken += 1
                if taken == count:
                    break
    return taken


def _copy(message: aio_pika.abc.AbstractIncomingMessage) -> aio_pika.Message:
    headers = {k: v for k, v in (message.headers or {}).items() if k != "x-delivery-count"}
    return aio_pika.Message(body=message.body, headers=headers,
                            content_type=message.content_type,
                            correlation_id=message.correlation_id,
                            message_id=message.message_id, type=message.type,
                            timestamp=message.timestamp, app_id=message.app_id,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


async def repartition_queue(channel: aio_pika.abc.AbstractChannel, spec: QueueSpec,
                            old: Topology, new: Topology) -> int:
    """Re-spread one logical queue's waiting messages from `old`'s partitions to `new`'s."""
    spread = await channel.get_exchange(new.hash_exchange(spec), ensure=False)
    for index in range(new.partitions):
        queue = await channel.declare_queue(new.partition(spec, index), durable=True,
                                            arguments=new.queue_arguments(spec))
        await queue.bind(spread, routing_key="1")
    for index in range(new.partitions, old.partitions):
        queue = await channel.get_queue(old.partition(spec, index), ensure=False)
        await queue.unbind(spread, routing_key="1")
    staging = await channel.declare_queue(f"{new.queue(spec)}.restage", durable=True,
                                          arguments={"x-queue-type": "quorum"})
    for index in range(old.partitions):
        await take(channel, old.partition(spec, index), lambda m: channel.default_exchange
                   .publish(_copy(m), routing_key=staging.name))
    moved = await take(channel, staging.name,
                       lambda m: spread.publish(_copy(m), routing_key=""))
    await staging.delete(if_unused=False, if_empty=False)  # emptied above
    for index in range(new.partitions, old.partitions):
        await channel.queue_delete(old.partition(spec, index))
    return moved


async def repartition(amqp_url: str, namespace: str, old_count: int, new_count: int
                      ) -> dict[str, int]:
    """Every queue from `old_count` to `new_count` partitions; messages moved per queue."""
    old, new = Topology(namespace, old_count), Topology(namespace, new_count)
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=100)
        return {spec.name: await repartition_queue(channel, spec, old, new) for spec in QUEUES}


async def owners(mongo_url: str, pattern: str) -> dict[str, dict[str, list[int]]]:
    """Per consuming service: each live replica and the partitions it consumes."""
    client = AsyncMongoClient(mongo_url)
    try:
        services = sorted({spec.service for spec in QUEUES})
        return {service: await Members(client[pattern.format(service=service)], "", 1.0)
                .owners() for service in services}
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m desk_runtime.partitions")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status")
    sub.add_parser("owners", help="which replica consumes which partitions")
    change = sub.add_parser("repartition", help="with every service stopped")
    change.add_argument("--from", dest="old", type=int, required=True)
    change.add_argument("--to", dest="new", type=int, required=True)
    args = parser.parse_args()
    url = os.environ.get("DESK_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    namespace = os.environ.get("DESK_BUS_NAMESPACE", "")
    if args.command == "owners":
        found = asyncio.run(owners(
            os.environ.get("DESK_MONGO_URL", "mongodb://127.0.0.1:27017/?directConnection=true"),
            os.environ.get("DESK_MONGO_DB_PATTERN", "desk_{service}")))
        for service, replicas in found.items():
            print(f"{service}: {len(replicas)} live replica(s)")
            for holder, parts in sorted(replicas.items()):
                print(f"  {holder:50} partitions {parts}")
    elif args.command == "status":
        topology = Topology(namespace, int(os.environ.get("DESK_BUS_PARTITIONS", PARTITIONS)))
        for name, ready, consumers in asyncio.run(status(url, topology)):
            print(f"{name:40} {'missing' if ready < 0 else ready:>8} ready  "
                  f"{consumers} consumer(s)")
    else:
        if args.new < 1:
            parser.error("--to must be at least 1")
        for name, moved in asyncio.run(repartition(url, namespace, args.old, args.new)).items():
            print(f"{name}: {moved} message(s) re-spread")


if __name__ == "__main__":
    main()
