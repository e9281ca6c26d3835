"""Intake e-mail throughput: N mails into the SMTP listener until each is `request.received`.

Runs intake as a real process (real RabbitMQ, SecantusDB) with the catalog given over the
bus, sends N distinct mails over C concurrent SMTP connections and reports:

* SMTP accept rate (mails/s until the last 250) — each 250 means "raw bytes committed",
* end-to-end messages/s (first send → last `request.received` on the bus),
* p50/p99 latency from a mail's 250 to its `request.received` arriving on the bus,
* mails missing (must be 0) and duplicates (must be 0; every 10th mail is sent twice),
* intake's peak resident memory (VmHWM),
* for comparison, a bare aiosmtpd server that answers 250 without doing anything, fed
  the same mails the same way in the same run — the floor SMTP itself costs.

    python bench/intake_mail.py                 # N=300, 8 connections
    python bench/intake_mail.py --mails 1000 --connections 16 --workers 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aio_pika  # noqa: E402
import aiosmtplib  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from desk_contracts import make_envelope  # noqa: E402
from desk_contracts.catalog import Localized, ServiceDefinition, ServiceTarget  # noqa: E402
from desk_contracts.events import CatalogServiceChanged  # noqa: E402
from desk_contracts.topology import Topology  # noqa: E402

from bench.common import pct, peak_rss_mb  # noqa: E402
from tests.support.infra import free_port, mongo_server, rabbitmq_server  # noqa: E402
from tests.support.stack import Stack, cleanup, wait_until  # noqa: E402

DOMAIN = "desk.localhost"


def make_mails(n: int, run: str) -> list[tuple[str, bytes]]:
    mails = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = f"Customer {i} <customer{i}@acme.example>"
        msg["To"] = f"bench@{DOMAIN}"
        msg["Subject"] = f"Benchmark request {i}: VPN drops every few minutes"
        mid = f"bench-{run}-{i}@acme.example"
        msg["Message-ID"] = f"<{mid}>"
        msg.set_content("Hello,\n\nsince this morning the VPN disconnects every few minutes.\n"
                        "Client 5.2.1 on Windows 11.\n\nRegards,\nCustomer\n" * 3)
        mails.append((mid, msg.as_bytes()))
    return mails


async def send_all(port: int, mails: list[tuple[str, bytes]], connections: int,
                   accepted: dict[str, float]) -> None:
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in mails:
        queue.put_nowait(item)

    async def worker() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        try:
            while not queue.empty():
                mid, raw = queue.get_nowait()
                await smtp.sendmail("bounces@acme.example", [f"bench@{DOMAIN}"], raw)
                accepted.setdefault(mid, time.time())
        finally:
            await smtp.quit()

    await asyncio.gather(*(worker() for _ in range(connections)))


async def observe(amqp_url: str, exchange: str, arrivals: dict[str, float], counts: dict,
                  ready: asyncio.Event, stop: asyncio.Event) -> None:
    conn = await aio_pika.connect_robust(amqp_url)
    async with conn:
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=500)
        queue = await channel.declare_queue(f"bench-observer-{uuid.uuid4().hex[:8]}",
                                            exclusive=True, auto_delete=True)
        await queue.bind(await channel.get_exchange(exchange), "request.received.v1")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                payload = json.loads(message.body)["payload"]
                mid = payload.get("channel_ref")
                counts[mid] = counts.get(mid, 0) + 1
                arrivals.setdefault(mid, time.time())

        await queue.consume(on_message)
        ready.set()
        await stop.wait()


async def run_intake(amqp_url: str, exchange: str, port: int, mails, connections: int,
                     timeout: float) -> tuple[dict, dict, dict, float, float]:
    arrivals: dict[str, float] = {}
    counts: dict[str, int] = {}
    accepted: dict[str, float] = {}
    ready, stop = asyncio.Event(), asyncio.Event()
    watcher = asyncio.create_task(observe(amqp_url, exchange, arrivals, counts, ready, stop))
    await ready.wait()
    # every 10th mail is delivered twice (a sending server's retry): must stay one request
    doubled = mails + mails[::10]
    started = time.time()
    await send_all(port, doubled, connections, accepted)
    sent = time.time()
    deadline = time.monotonic() + timeout
    while len(arrivals) < len(mails) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)  # a wrong duplicate gets every chance to show up
    stop.set()
    await watcher
    return arrivals, counts, accepted, started, sent


async def raw_smtp(mails, connections: int) -> float:
    """A bare aiosmtpd accepting everything: mails/s for the same traffic."""

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        started = time.time()
        await send_all(port, mails + mails[::10], connections, {})
        return (len(mails) + len(mails[::10])) / (time.time() - started)
    finally:
        controller.stop()


async def publish(amqp_url: str, exchange: str, body: bytes, key: str) -> None:
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        ex = await channel.get_exchange(exchange)
        await ex.publish(aio_pika.Message(body=body), routing_key=key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--workers", type=int, default=4, help="INTAKE_MAIL_WORKERS")
    args = parser.parse_args()
    n, run = args.mails, uuid.uuid4().hex[:8]
    mails = make_mails(n, run)
    with mongo_server() as mongo_url, rabbitmq_server() as amqp_url:
        stack = Stack(mongo_url, amqp_url, Path(tempfile.mkdtemp(prefix="bench-intake-")),
                      extra={"intake": {"INTAKE_LOG_LEVEL": "WARNING",
                                        "INTAKE_MAIL_WORKERS": str(args.workers)}})
        try:
            stack.start(("intake",))
            exchange = Topology(stack.namespace).exchange
            service = ServiceDefinition(
                id="bench", name=Localized(en="Bench"),
                target=ServiceTarget(board_id="support", column_id="queue", lane_id="l1"))
            env = make_envelope(CatalogServiceChanged(service=service, revision=1),
                                account_id="default")
            asyncio.run(publish(amqp_url, exchange, env.model_dump_json().encode(),
                                env.routing_key))

            def catalog_ready() -> bool:
                import smtplib
                try:
                    with smtplib.SMTP("127.0.0.1", stack.ports["intake_smtp"]) as s:
                        s.ehlo()
                        s.mail("probe@acme.example")
                        return s.rcpt(f"bench@{DOMAIN}")[0] == 250
                except OSError:
                    return False
            wait_until(catalog_ready, timeout=30)

            arrivals, counts, accepted, started, sent = asyncio.run(run_intake(
                amqp_url, exchange, stack.ports["intake_smtp"], mails, args.connections,
                args.timeout))
            peak = peak_rss_mb(stack["intake"].proc.pid)
            raw_rate = asyncio.run(raw_smtp(mails, args.connections))
        finally:
            stack.stop()
            cleanup(mongo_url, amqp_url, stack.namespace)

    wanted = {mid for mid, _ in mails}
    latencies = [arrivals[m] - accepted[m] for m in wanted if m in arrivals and m in accepted]
    missing = len(wanted - set(arrivals))
    duplicates = sum(c - 1 for m, c in counts.items() if m in wanted and c > 1)
    last = max(arrivals.values()) if arrivals else time.time()
    total_sent = n + len(mails[::10])
    print(f"intake e-mail — {n} distinct mails (+{len(mails[::10])} redelivered duplicates) "
          f"over {args.connections} SMTP connections, {args.workers} processing workers")
    print(f"  SMTP accept rate (250 = stored)      {total_sent / max(sent - started, 1e-9):8.1f} "
          f"mails/s")
    e2e_rate = len(latencies) / max(last - started, 1e-9)
    print(f"  end-to-end (send → request.received) {e2e_rate:8.1f} requests/s")
    if latencies:
        p50 = 1000 * statistics.median(latencies)
        print(f"  latency 250 → request.received  p50  {p50:8.1f} ms")
        print(f"                                  p99  {1000 * pct(latencies, 99):8.1f} ms")
    print(f"  missing requests                     {missing:8d}")
    print(f"  duplicate requests                   {duplicates:8d}")
    print(f"  intake peak memory (VmHWM)           {peak:8.1f} MiB")
    print(f"  raw aiosmtpd (250 without storing), same mails and connections: "
          f"{raw_rate:.1f} mails/s")


if __name__ == "__main__":
    main()
