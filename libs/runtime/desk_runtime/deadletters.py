"""Dead-letter queues from the command line: list what is there and why, replay it.

    python -m desk_runtime.deadletters list boards.requests
    python -m desk_runtime.deadletters replay boards.requests [--limit N]

Uses DESK_AMQP_URL and DESK_BUS_NAMESPACE like the services do.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import aio_pika
from desk_contracts.topology import PARTITIONS, Topology, queue_spec


async def list_dead(amqp_url: str, topology: Topology, queue: str, limit: int) -> list[dict]:
    """Peek at dead letters without removing them."""
    spec = queue_spec(queue)
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel()
        dead = await channel.get_queue(topology.dead_queue(spec), ensure=False)
        seen: list[dict] = []
        held = []
        while len(seen) < limit:
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            held.append(message)
            headers = message.headers or {}
            seen.append({
                "message_id": message.message_id,
                "reason": headers.get("x-dead-reason", "delivery limit / broker"),
                "detail": headers.get("x-dead-detail", ""),
                "routing_key": headers.get("x-original-routing-key", message.routing_key),
                "at": headers.get("x-dead-at"),
                "body": message.body[:200].decode(errors="replace"),
            })
        for message in held:
            await message.nack(requeue=True)
        return seen


async def replay(amqp_url: str, topology: Topology, queue: str, limit: int) -> int:
    """Move dead letters back onto their original queue (after the cause is fixed).

    They go through the queue's consistent-hash exchange with their `x-partition-key`
    header, so each lands in its card's partition again.
    """
    spec = queue_spec(queue)
    conn = await aio_pika.connect(amqp_url)
    moved = 0
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        dead = await channel.get_queue(topology.dead_queue(spec), ensure=False)
        spread = await channel.get_exchange(topology.hash_exchange(spec), ensure=False)
        while moved < limit:
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = {k: v for k, v in (message.headers or {}).items()
                       if not k.startswith("x-dead") and k != "x-death"}
            headers["x-replayed"] = True
            await spread.publish(
                aio_pika.Message(body=message.body, headers=headers,
                                 content_type=message.content_type,
                                 message_id=message.message_id,
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=headers.get("x-original-routing-key") or "",
            )
            await message.ack()
            moved += 1
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m desk_runtime.deadletters")
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("queue", help="e.g. boards.requests")
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    url = os.environ.get("DESK_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    topology = Topology(os.environ.get("DESK_BUS_NAMESPACE", ""),
                        int(os.environ.get("DESK_BUS_PARTITIONS", PARTITIONS)))
    if args.command == "list":
        for row in asyncio.run(list_dead(url, topology, args.queue, args.limit)):
            print(f"{row['at']}  {row['routing_key']}  {row['reason']}: {row['detail']}")
            print(f"    {row['body']}")
    else:
        print(f"replayed {asyncio.run(replay(url, topology, args.queue, args.limit))} message(s)")


if __name__ == "__main__":
    main()
