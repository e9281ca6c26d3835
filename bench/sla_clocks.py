"""SLA at scale: breach-detection lag and memory with many open clocks held in the store.

    python bench/sla_clocks.py                 # 1,000,000 clocks (a few minutes)
    python bench/sla_clocks.py --clocks 100000

Runs the real sla service as a process against a real Mongo-protocol server and the
local RabbitMQ, in two phases: first with 1,000 open clocks in the store, then with
`--clocks`. In each phase it plants `--due` records whose deadlines fall over the next
few seconds and measures, for each breach, how late `sla.breached` reached a consumer
on the bus after its deadline, while sampling the sla process's resident memory.
The raw figures beside them: a claim query on the same collection, and a plain
publish → consume round trip on the same broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aio_pika  # noqa: E402
from desk_contracts.topology import Topology  # noqa: E402
from pymongo import AsyncMongoClient, ReturnDocument  # noqa: E402
from sla.domain.calendar import BusinessCalendar  # noqa: E402
from sla.domain.clock import CardSla  # noqa: E402
from sla.domain.policy import SlaPolicy  # noqa: E402
from sla.repository import FREE, SlaRepository  # noqa: E402

from bench.common import pct  # noqa: E402
from tests.support.infra import mongo_server, rabbitmq_server  # noqa: E402
from tests.support.stack import ServiceProcess, Stack, cleanup  # noqa: E402

SPREAD = 30.0  # seconds over which the planted deadlines fall (set by --spread)
POLICY = SlaPolicy(name="bench", targets={"first_response": 0.05, "resolution": 100000})
ALWAYS = BusinessCalendar.always()


def record(card_id: str, n: int, opened: datetime) -> CardSla:
    return CardSla.open(card_id=card_id, number=f"SD-{n}", service_id="bench", policy=POLICY,
                        cal=ALWAYS, priority="medium", category="queued", column_id="queue",
                        at=opened, warn_share=0.8)


async def fill(db, count: int, start_n: int) -> float:
    """Hold `count` open clocks whose deadlines are weeks away; returns docs/s."""
    far = datetime.now(UTC) + timedelta(days=30)
    template = record("template", 0, far).model_dump(mode="python")
    began = time.perf_counter()
    batch = []
    for i in range(count):
        n = start_n + i
        doc = {"_id": f"held-{n}", "version": 1, "sla": {**template, "card_id": f"held-{n}",
                                                         "number": f"SD-{n}"},
               "number": f"SD-{n}", "service_id": "bench", "open": True, "paused": False,
               "next_due_at": far + timedelta(seconds=n), "lease_until": FREE,
               "lease_owner": None}
        batch.append(doc)
        if len(batch) == 10_000:
            await db["card_sla"].insert_many(batch, ordered=False)
            batch = []
            if (i + 1) % 100_000 == 0:
                print(f"  … {i + 1:,} clocks held", flush=True)
    if batch:
        await db["card_sla"].insert_many(batch, ordered=False)
    await db["clock_counts"].update_one({"_id": 0}, {"$inc": {"running": count}}, upsert=True)
    return count / (time.perf_counter() - began)


def rss_sampler(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    peak[0] = max(peak[0], int(line.split()[1]) * 1024)
        except FileNotFoundError:
            return
        stop.wait(0.1)


async def phase(stack: Stack, mongo_url: str, amqp_url: str, due: int, label: str) -> dict:
    client = AsyncMongoClient(mongo_url, tz_aware=True)
    db = client[f"{stack.namespace}_sla"]
    held = await db["card_sla"].estimated_document_count()
    env = stack.env_for("sla")
    proc = ServiceProcess("sla", env, int(env["SLA_HTTP_PORT"]), stack.workdir / "sla.log")
    stack.services["sla"] = proc
    proc.start(wait=False)
    proc.wait_ready(timeout=900)  # a large store may still be building an index
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=rss_sampler, args=(proc.proc.pid, stop, peak), daemon=True)
    sampler.start()

    conn = await aio_pika.connect(amqp_url)
    ch = await conn.channel()
    ex = await ch.get_exchange(Topology(stack.namespace).exchange)
    q = await ch.declare_queue(exclusive=True)
    await q.bind(ex, "sla.breached.v1")
    await asyncio.sleep(1.0)  # steady state: the service idles over its held clocks

    repo = SlaRepository(db)
    now = datetime.now(UTC)
    ids = []
    for i in range(due):
        deadline = now + timedelta(seconds=3 + SPREAD * i / due)
        card_id = f"due-{label}-{i}-{uuid.uuid4().hex[:6]}"
        sla = record(card_id, 10_000_000 + i, deadline - timedelta(seconds=3))
        await repo.save(sla, 0, sla.next_due_at(None), None)
        ids.append(card_id)
    lags: list[float] = []
    end = time.monotonic() + SPREAD + 120
    seen: set[str] = set()
    duplicates = 0
    while len(seen) < due and time.monotonic() < end:
        msg = await q.get(fail=False)
        if msg is None:
            await asyncio.sleep(0.01)
            continue
        received = datetime.now(UTC)
        await msg.ack()
        payload = json.loads(msg.body)["payload"]
        if payload["target"] != "first_response":
            continue
        if payload["card_id"] in seen:
            duplicates += 1
        seen.add(payload["card_id"])
        lags.append((received - datetime.fromisoformat(payload["at"])).total_seconds())
    await conn.close()
    stop.set()
    sampler.join()
    stack["sla"].stop()
    del stack.services["sla"]
    await client.close()
    return {"held": held, "due": due, "detected": len(seen), "duplicates": duplicates,
            "lag_p50": pct(lags, 50), "lag_p99": pct(lags, 99), "lag_max": max(lags or [0]),
            "peak_rss_mb": peak[0] / 2**20}


async def raw_store(mongo_url: str, db_name: str, n: int = 300) -> dict:
    client = AsyncMongoClient(mongo_url, tz_aware=True)
    col = client[db_name]["card_sla"]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await col.find_one_and_update(
            {"next_due_at": {"$lte": datetime.now(UTC)}, "lease_until": {"$lt": FREE}},
            {"$set": {"lease_until": FREE}}, sort=[("next_due_at", 1)], projection={"_id": 1},
            return_document=ReturnDocument.AFTER)
        times.append(time.perf_counter() - t)
    await client.close()
    return {"claim_p50_ms": pct(times, 50) * 1000, "claim_p99_ms": pct(times, 99) * 1000}


async def raw_broker(amqp_url: str, n: int = 300) -> dict:
    conn = await aio_pika.connect(amqp_url)
    ch = await conn.channel()
    q = await ch.declare_queue(exclusive=True)
    lats = []
    for _ in range(n):
        t = time.perf_counter()
        await ch.default_exchange.publish(aio_pika.Message(b"x"), routing_key=q.name)
        while (msg := await q.get(fail=False)) is None:
            await asyncio.sleep(0.0005)
        await msg.ack()
        lats.append(time.perf_counter() - t)
    await conn.close()
    return {"roundtrip_p50_ms": pct(lats, 50) * 1000, "roundtrip_p99_ms": pct(lats, 99) * 1000}


async def main(args) -> None:
    with mongo_server() as mongo_url, rabbitmq_server() as amqp_url:
        stack = Stack(mongo_url, amqp_url, Path(tempfile.mkdtemp(prefix="bench-sla-")))
        stack.extra["sla"] = {"SLA_LOG_LEVEL": "INFO", "SLA_LOG_JSON": "true"}
        client = AsyncMongoClient(mongo_url, tz_aware=True)
        db = client[f"{stack.namespace}_sla"]
        await db["policies"].insert_one({"_id": "bench", "policy": POLICY.model_dump(mode="json")})
        await SlaRepository(db).ensure_indexes()
        print(f"logs: {stack.workdir}", flush=True)
        results = []
        try:
            print("phase 1: 1,000 held clocks", flush=True)
            await fill(db, 1_000, 0)
            results.append(await phase(stack, mongo_url, amqp_url, args.due, "small"))
            print(f"filling the store to {args.clocks:,} held clocks", flush=True)
            rate = await fill(db, args.clocks - 1_000, 1_000)
            print(f"  inserted at {rate:,.0f} docs/s", flush=True)
            print(f"phase 2: {args.clocks:,} held clocks", flush=True)
            results.append(await phase(stack, mongo_url, amqp_url, args.due, "large"))
            raw = {**await raw_store(mongo_url, f"{stack.namespace}_sla"),
                   **await raw_broker(amqp_url)}
        finally:
            await client.close()
            await asyncio.to_thread(cleanup, mongo_url, amqp_url, stack.namespace)

    print()
    print(f"{'held clocks':>12} {'due':>5} {'detected':>8} {'dupes':>5} {'lag p50':>9} "
          f"{'lag p99':>9} {'lag max':>9} {'sla peak RSS':>13}")
    for r in results:
        print(f"{r['held']:>12,} {r['due']:>5} {r['detected']:>8} {r['duplicates']:>5} "
              f"{r['lag_p50'] * 1000:>7.0f}ms {r['lag_p99'] * 1000:>7.0f}ms "
              f"{r['lag_max'] * 1000:>7.0f}ms {r['peak_rss_mb']:>10.1f} MB")
    print(f"raw store: due-claim query on {args.clocks:,} records p50 "
          f"{raw['claim_p50_ms']:.2f} ms, p99 {raw['claim_p99_ms']:.2f} ms")
    print(f"raw broker: publish→consume p50 {raw['roundtrip_p50_ms']:.2f} ms, "
          f"p99 {raw['roundtrip_p99_ms']:.2f} ms")
    print(f"planted deadlines: {args.due} over {args.spread:.0f} s "
          f"({args.due / args.spread:.1f} breaches/s plus as many warnings)")
    print(f"memory growth from 1,000 to {args.clocks:,} held clocks: "
          f"{results[1]['peak_rss_mb'] - results[0]['peak_rss_mb']:+.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clocks", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=300)
    parser.add_argument("--spread", type=float, default=30.0,
                        help="seconds over which the planted deadlines fall (default 30: "
                             "10 breaches + 10 warnings a second, as 1M clocks with deadlines "
                             "spread over a day give ~12 a second)")
    args = parser.parse_args()
    SPREAD = args.spread
    asyncio.run(main(args))
