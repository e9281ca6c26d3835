"""Boards and notify on 1, 2 and 4 replicas: the same burst, throughput and p99 side by side.

Starts its own SecantusDB, the machine's RabbitMQ on a unique bus namespace, an SMTP sink
and the five services (one process each, as `make run`); then, for each replica count,
starts more boards and notify processes, waits until they share the four bus partitions
(each replica consumes its fair share, agreed through the store: 4, 2+2, 1+1+1+1) and
sends the same burst of web-form requests to intake. For each count it prints:

* requests/s through the whole path (first POST to last acknowledgment mail);
* p50/p99 from the POST to the card (`card.created` on the bus: boards' consumer) and to
  the acknowledgment mail at the sink (notify's consumer and sender);
* the CPU each part used during the burst (store, boards, notify, the others), in % of
  one core, and the busiest boards/notify process's share of its service's CPU (how the
  work spread over the replicas) — what limits the curve is whichever is near a full
  core (or, on a small machine, the machine itself: the sum);
* and once, before the services start, the raw store (serial two-insert transactions)
  and the raw broker (publish with confirms + consume) of the same run;
* the machine's load average before and after (others may be using the machine: the
  figures are this run's, on a machine shared or not).

    python bench/replicas.py                        # 1, 2, 4 replicas, 120 requests each
    python bench/replicas.py --burst 300 --counts 1 2 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aio_pika  # noqa: E402
import httpx  # noqa: E402
from desk_contracts.topology import Topology  # noqa: E402

from bench.common import cpu_seconds, pct  # noqa: E402
from bench.notify_throughput import Sink, raw_broker  # noqa: E402
from bench.pipeline import PipelineStack, Store, txn_rate, wait_catalogs  # noqa: E402
from tests.support.infra import rabbitmq_server  # noqa: E402
from tests.support.stack import SERVICES, cleanup, mongo_find, wait_until  # noqa: E402

SCALED = ("boards", "notify")


def processes(stack: PipelineStack) -> dict[str, list[int]]:
    return {name: [p.proc.pid for p in stack.all_of(name)] for name in SERVICES}


def shares(stack: PipelineStack, name: str) -> list[int]:
    """How many partitions each live replica of `name` consumes (from the store), largest first."""
    members = mongo_find(stack.mongo_url, f"{stack.namespace}_{name}", "members",
                         {"expires_at": {"$gt": datetime.now(UTC)}})
    return sorted((len(m.get("owns") or []) for m in members), reverse=True)


def fair(count: int, partitions: int = 4) -> list[int]:
    base, extra = divmod(partitions, count)
    return [base + 1] * extra + [base] * (count - extra)


def cpu_of(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


async def burst(stack: PipelineStack, sink: Sink, store: Store, n: int, concurrency: int,
                timeout: float) -> dict:
    """`n` requests; per request the seconds to its card and to its acknowledgment mail."""
    tag = uuid.uuid4().hex[:6]
    emails = [f"r{tag}.{i}@acme.example" for i in range(n)]
    posted: dict[str, float] = {}
    carded: dict[str, float] = {}
    conn = await aio_pika.connect(stack.amqp_url)
    channel = await conn.channel()
    exchange = await channel.get_exchange(Topology(stack.namespace).exchange)
    tap = await channel.declare_queue(exclusive=True)
    await tap.bind(exchange, "card.created.v1")

    async def on_card(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        card = json.loads(message.body)["payload"]["card"]
        email = ((card.get("requester") or {}).get("email") or "").lower()
        carded.setdefault(email, time.time())
    await tap.consume(on_card, no_ack=True)

    pids = processes(stack)
    cpu_before = {name: cpu_of(p) for name, p in pids.items()} | {
        "store": cpu_seconds(store.proc.pid)}
    each_before = {pid: cpu_seconds(pid) for name in SCALED for pid in pids[name]}
    todo = list(emails)
    retries: list[str] = []
    intake = stack["intake"].url

    async def client() -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            while todo:
                email = todo.pop()
                body = {"service": "problem", "requester": {"email": email, "name": "Bench"},
                        "subject": "Printer jams", "text": "It jams on every page.",
                        "fields": {"system": "mail", "impact": 3}}
                posted[email] = time.time()
                while True:  # a store too busy to answer in time: 503, try again
                    r = await http.post(f"{intake}/v1/requests", json=body)
                    if r.status_code != 503:
                        break
                    retries.append(email)
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                r.raise_for_status()
    started = time.time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wanted = set(emails)
    deadline = time.monotonic() + timeout
    mailed: dict[str, float] = {}
    while time.monotonic() < deadline:
        with sink.lock:
            for at, _, rcpt in sink.arrivals:
                if rcpt.lower() in wanted:
                    mailed.setdefault(rcpt.lower(), at)
        if len(mailed) == n and len(carded.keys() & wanted) == n:
            break
        await asyncio.sleep(0.1)
    finished = max(mailed.values(), default=time.time())
    cpu_after = {name: cpu_of(p) for name, p in pids.items()} | {
        "store": cpu_seconds(store.proc.pid)}
    each = {name: sorted((cpu_seconds(pid) - each_before[pid] for pid in pids[name]),
                         reverse=True) for name in SCALED}
    await conn.close()
    wall = finished - started
    return {
        "rate": len(mailed) / wall if wall > 0 else float("nan"),
        "card": [carded[e] - posted[e] for e in emails if e in carded],
        "mail": [mailed[e] - posted[e] for e in emails if e in mailed],
        "missing": n - len(mailed),
        "retries": len(retries),
        "cpu": {k: 100 * (cpu_after[k] - cpu_before[k]) / wall for k in cpu_after},
        # how the work spread over a service's processes: the busiest one's share
        "busiest": {k: v[0] / sum(v) if sum(v) > 0 else float("nan") for k, v in each.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--txn-seconds", type=float, default=4.0)
    parser.add_argument("--broker-messages", type=int, default=2000)
    args = parser.parse_args()

    results: dict[int, dict] = {}
    raw: dict[str, float] = {}
    load_before = os.getloadavg()[0]
    with rabbitmq_server() as amqp_url:
        store = Store(retry_writes=False)
        sink = Sink()
        stack = None
        try:
            raw = {"txn": asyncio.run(txn_rate(store.url, args.txn_seconds)),
                   "bus": asyncio.run(raw_broker(amqp_url, [
                       json.dumps({"n": i, "pad": "x" * 1000}).encode()
                       for i in range(args.broker_messages)]))}
            print(f"raw, same run: store 2-insert transactions {raw['txn']:.1f}/s (serial); "
                  f"broker publish+consume {raw['bus']:.1f} msg/s", flush=True)
            sink.controller.start()
            stack = PipelineStack(store.url, amqp_url,
                                  Path(tempfile.mkdtemp(prefix="bench-replicas-")),
                                  smtp_port=sink.port, namespace=f"br{uuid.uuid4().hex[:10]}")
            stack.start()
            wait_catalogs(store.url, stack.namespace)
            for count in sorted(args.counts):
                for name in SCALED:
                    more = count - len(stack.all_of(name))
                    if more > 0:  # on a busy small machine a start can take minutes
                        for proc in stack.start_replicas(name, more, wait=False):
                            proc.wait_ready(timeout=300)
                for name in SCALED:  # the partitions handed over: every replica works
                    wait_until(lambda name=name: shares(stack, name) == fair(count),
                               timeout=120, interval=0.5)
                print(f"{count} replica(s) of boards and notify: burst of {args.burst} "
                      f"(partitions per replica: boards {shares(stack, 'boards')}, notify "
                      f"{shares(stack, 'notify')}; load average "
                      f"{os.getloadavg()[0]:.1f}) ...", flush=True)
                results[count] = asyncio.run(burst(stack, sink, store, args.burst,
                                                   args.concurrency, args.timeout))
                r = results[count]  # as it comes, in case a later count does not finish
                print(f"  {r['rate']:.1f} requests/s; card p99 {pct(r['card'], 99) * 1000:.0f}"
                      f" ms; ack mail p99 {pct(r['mail'], 99) * 1000:.0f} ms; not through "
                      f"{r['missing']}; CPU % store {r['cpu']['store']:.0f} boards "
                      f"{r['cpu']['boards']:.0f} notify {r['cpu']['notify']:.0f}; busiest "
                      f"process share boards {r['busiest']['boards']:.0%} notify "
                      f"{r['busiest']['notify']:.0%}", flush=True)
        finally:
            if stack is not None:
                stack.stop()
            sink.controller.stop()
            if stack is not None:
                cleanup(store.url, amqp_url, stack.namespace)
            store.stop()

    print(f"\nmachine: {os.cpu_count()} cores, load average (1 min) {load_before:.1f} before "
          f"the run, {os.getloadavg()[0]:.1f} after (above what this run adds: others use "
          f"the machine too)")
    print("\nraw, same run (before the services start)")
    print(f"  store transaction of 2 insert_one's   {raw['txn']:8.1f} /s (serial)")
    print(f"  broker publish (confirms) + consume   {raw['bus']:8.1f} msg/s")
    counts = sorted(results)
    head = "".join(f"{c:>12}" for c in counts)
    print(f"\nreplicas of boards and notify      {head}")
    rows = [
        ("requests/s (POST → ack mail)", lambda r: f"{r['rate']:.1f}"),
        ("  ÷ raw 2-insert txn rate", lambda r: f"{r['rate'] / raw['txn']:.3f}"),
        ("POST → card p50 (ms)", lambda r: f"{pct(r['card'], 50) * 1000:.0f}"),
        ("POST → card p99 (ms)", lambda r: f"{pct(r['card'], 99) * 1000:.0f}"),
        ("POST → ack mail p50 (ms)", lambda r: f"{pct(r['mail'], 50) * 1000:.0f}"),
        ("POST → ack mail p99 (ms)", lambda r: f"{pct(r['mail'], 99) * 1000:.0f}"),
        ("not through (of the burst)", lambda r: f"{r['missing']}"),
        ("POSTs answered 503, retried", lambda r: f"{r['retries']}"),
    ]
    for label, cell in rows:
        print(f"{label:35}" + "".join(f"{cell(results[c]):>12}" for c in counts))
    print("CPU during the burst, % of one core")
    for part in ("store", *SERVICES):
        print(f"  {part:33}" + "".join(f"{results[c]['cpu'][part]:>12.0f}" for c in counts))
    for name in SCALED:
        print(f"  {name + ': busiest process share':33}"
              + "".join(f"{results[c]['busiest'][name]:>12.0%}" for c in counts))
    print(f"  {'all (this machine has ' + str(__import__('os').cpu_count()) + ' cores)':33}"
          + "".join(f"{sum(results[c]['cpu'].values()):>12.0f}" for c in counts))
    return 1 if any(r["missing"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
