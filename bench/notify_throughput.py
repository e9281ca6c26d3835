"""Notify throughput under redelivery: N card events, each published twice, against real SMTP.

Runs notify as a real process (real RabbitMQ, SecantusDB or $DESK_TEST_MONGO_URL) against a
local aiosmtpd sink, publishes N `card.created` events with every event sent twice (a
redelivered duplicate right behind it) and reports:

* notifications/s (first publish → last acknowledgment mail received),
* p50/p99 latency from an event's publication to its mail arriving at the SMTP server,
* duplicates received (must be 0) and mails missing (must be 0),
* notify's peak resident memory (VmHWM),
* for comparison, a plain aio-pika publish (with confirms) + consume/ack of the same 2N
  message bodies on the same broker in the same run — the floor the bus itself costs.

    python bench/notify_throughput.py            # N=400 in one burst
    python bench/notify_throughput.py --events 100 --rate 5   # latency under steady load
    python bench/notify_throughput.py --events 1000 --email-workers 4
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aio_pika
from aiosmtpd.controller import Controller
from desk_contracts import make_envelope
from desk_contracts.catalog import Localized, ServiceDefinition, ServiceTarget
from desk_contracts.events import (
    CardCreated,
    CardSnapshot,
    CatalogServiceChanged,
    Person,
)
from desk_contracts.topology import Topology
from pymongo import MongoClient

from bench.common import pct, peak_rss_mb  # noqa: E402
from tests.support.infra import free_port, mongo_server, rabbitmq_server
from tests.support.metrics import sample_sum
from tests.support.stack import Stack, cleanup, wait_until


class Sink:
    """An aiosmtpd server that records when each message arrived and its Message-ID."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: list[tuple[float, str, str]] = []  # (time, message-id, recipient)
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                at = time.time()
                mid = ""
                for line in envelope.content.split(b"\r\n"):
                    if line.lower().startswith(b"message-id:"):
                        mid = line.split(b":", 1)[1].strip().decode()
                        break
                    if not line:
                        break
                with sink.lock:
                    sink.arrivals.append((at, mid, envelope.rcpt_tos[0].lower()))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)


def card_event(n: int, run: str) -> tuple[bytes, str, str]:
    now = datetime.now(UTC)
    email = f"bench-{run}-{n}@bench.example"
    card = CardSnapshot(
        card_id=str(uuid.uuid4()), number=f"SD-{n + 1}", version=1, title=f"Bench request {n}",
        service_id="bench", board_id="support", column_id="queue", lane_id="l1",
        status_category="queued", customer_status="Queued", priority="medium",
        requester=Person(email=email, name="Bench"), channel="email",
        created_at=now, updated_at=now)
    env = make_envelope(CardCreated(card=card), account_id="default")
    return env.model_dump_json().encode(), env.routing_key, email


async def publish_all(amqp_url: str, exchange_name: str, bodies: list[tuple[bytes, str]],
                      stamps: list[float] | None = None, rate: float = 0.0) -> None:
    """Publish with confirms; `rate` > 0 paces events (pairs of bodies) per second."""
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(exchange_name)
        batch: list = []
        begin = time.monotonic()
        for i, (body, key) in enumerate(bodies):
            if rate > 0 and i % 2 == 0:
                await asyncio.gather(*batch)
                batch.clear()
                await asyncio.sleep(max(0.0, begin + (i // 2) / rate - time.monotonic()))
            if stamps is not None and i % 2 == 0:
                stamps.append(time.time())
            batch.append(exchange.publish(aio_pika.Message(body=body), routing_key=key))
            if len(batch) >= 50:
                await asyncio.gather(*batch)
                batch.clear()
        await asyncio.gather(*batch)


async def raw_broker(amqp_url: str, bodies: list[bytes]) -> float:
    """Plain aio-pika: publish every body with confirms to a quorum queue, consume, ack."""
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=16)
        name = f"bench.raw.{uuid.uuid4().hex[:8]}"
        queue = await channel.declare_queue(name, durable=True,
                                            arguments={"x-queue-type": "quorum"})
        started = time.perf_counter()
        done = asyncio.Event()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received >= len(bodies):
                done.set()

        tag = await queue.consume(on_message)
        batch: list = []
        for body in bodies:
            batch.append(channel.default_exchange.publish(aio_pika.Message(body=body),
                                                          routing_key=name))
            if len(batch) >= 50:
                await asyncio.gather(*batch)
                batch.clear()
        await asyncio.gather(*batch)
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - started
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
        return len(bodies) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--email-workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=100.0)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="events/s to publish at (0 = one burst, as fast as possible)")
    args = parser.parse_args()
    n = args.events
    run = uuid.uuid4().hex[:6]

    with mongo_server() as mongo_url, rabbitmq_server() as amqp_url:
        sink = Sink()
        sink.controller.start()
        stack = Stack(mongo_url, amqp_url, Path(tempfile.mkdtemp(prefix="bench-notify-")),
                      smtp_port=sink.port, extra={"notify": {
                          "NOTIFY_LOG_LEVEL": "WARNING",
                          "NOTIFY_EMAIL_WORKERS": str(args.email_workers),
                          "NOTIFY_PREFETCH": "64"}})
        try:
            stack.start(("notify",))
            exchange = Topology(stack.namespace).exchange
            service = ServiceDefinition(
                id="bench", name=Localized(en="Bench"),
                target=ServiceTarget(board_id="support", column_id="queue", lane_id="l1"))
            env = make_envelope(CatalogServiceChanged(service=service, revision=1),
                                account_id="default")
            asyncio.run(publish_all(amqp_url, exchange,
                                    [(env.model_dump_json().encode(), env.routing_key)]))
            mongo = MongoClient(mongo_url)
            wait_until(lambda: mongo[f"{stack.namespace}_notify"]["catalog"].count_documents(
                {}) == 1)

            events = [card_event(i, run) for i in range(n)]
            bodies: list[tuple[bytes, str]] = []
            for body, key, _ in events:
                bodies += [(body, key), (body, key)]  # every event twice: a redelivery
            stamps: list[float] = []
            started = time.time()
            asyncio.run(publish_all(amqp_url, exchange, bodies, stamps, args.rate))
            published = time.time()
            deadline = time.monotonic() + args.timeout
            deliveries = mongo[f"{stack.namespace}_notify"]["deliveries"]
            recorded_at = None
            while sink.count() < n and time.monotonic() < deadline:
                if recorded_at is None and deliveries.count_documents({}) >= n:
                    recorded_at = time.time()
                time.sleep(0.05)
            recorded_at = recorded_at or time.time()
            finished = time.time()
            time.sleep(2.0)  # give a (wrong) duplicate every chance to arrive
            peak = peak_rss_mb(stack["notify"].proc.pid)
            url = stack["notify"].url
            handler_ms = 1000 * sample_sum(url, "desk_bus_handler_seconds_sum") / max(
                sample_sum(url, "desk_bus_handler_seconds_count"), 1)
            send_ms = 1000 * sample_sum(url, "desk_notify_send_seconds_sum") / max(
                sample_sum(url, "desk_notify_send_seconds_count"), 1)
            dup_seen = sample_sum(url, "desk_bus_messages_consumed_total", outcome="duplicate")

            with sink.lock:
                arrivals = list(sink.arrivals)
            sent_at = {email: stamps[i] for i, (_, _, email) in enumerate(events)}
            per_recipient = Counter(rcpt for _, _, rcpt in arrivals)
            per_message_id = Counter(mid for _, mid, _ in arrivals)
            duplicates = (sum(c - 1 for c in per_recipient.values() if c > 1)
                          + sum(c - 1 for c in per_message_id.values() if c > 1))
            first_at: dict[str, float] = {}
            for at, _, rcpt in arrivals:
                first_at.setdefault(rcpt, at)
            latencies = [first_at[e] - sent_at[e] for e in sent_at if e in first_at]
            delivered = len(first_at)
            last = max(first_at.values()) if first_at else finished

            raw_rate = asyncio.run(raw_broker(amqp_url, [b for b, _ in bodies]))
            mongo.close()
        finally:
            stack.stop()
            sink.controller.stop()
            cleanup(mongo_url, amqp_url, stack.namespace)

    mode = f"paced at {args.rate:g} events/s" if args.rate else "in one burst"
    print(f"notify throughput — {n} card.created events, each published twice "
          f"({2 * n} messages) {mode}, {args.email_workers} e-mail workers")
    print(f"  publish of {2 * n} messages took     {published - started:8.2f} s")
    print(f"  mails delivered                      {delivered:8d} / {n}"
          f"   missing: {n - delivered}")
    print(f"  duplicates received                  {duplicates:8d}")
    print(f"  events recorded/s (consumer side)    {n / max(recorded_at - started, 1e-9):8.1f}")
    print(f"  notifications/s (publish→last mail)  {delivered / max(last - started, 1e-9):8.1f}")
    if latencies:
        p50 = statistics.median(latencies) * 1000
        print(f"  event→mail latency p50               {p50:8.0f} ms")
        print(f"  event→mail latency p99               {pct(latencies, 99) * 1000:8.0f} ms")
    print(f"  mean consumer handler time           {handler_ms:8.1f} ms "
          f"(duplicates recognised by the consumer: {dup_seen:.0f})")
    print(f"  mean SMTP send time                  {send_ms:8.1f} ms")
    print(f"  notify peak memory (VmHWM)           {peak:8.1f} MiB")
    print(f"  raw broker (aio-pika publish+consume of the same {2 * n} bodies): "
          f"{raw_rate:8.1f} msg/s")
    print(f"  notify cost per event vs raw broker: "
          f"{(raw_rate / 2) / max(delivered / max(last - started, 1e-9), 1e-9):.1f}× slower "
          f"(an event = 2 messages)")
    if duplicates or delivered < n:
        sys.exit(1)


if __name__ == "__main__":
    main()
