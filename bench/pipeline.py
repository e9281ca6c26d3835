"""The whole pipeline on a fresh store: web-form requests → card, SLA clock, ack mail, portal row.

Starts its own SecantusDB (an empty store in a temporary directory), the five services as
real processes (tests/support/stack.py's launcher, but with each service's own poll
intervals, as `make run` runs them), the machine's RabbitMQ on a unique bus namespace and
a local SMTP sink (aiosmtpd). Then it prints:

* the raw store (serial insert_one; serial transactions of two insert_one's) and the raw
  broker (aio-pika publish with confirms + consume) measured in the same run, before the
  services start;
* each process's CPU while the stack is idle (the store's and each service's, % of one
  core), and the store's plain insert rate with the stack idle before and after the load;
* for a burst (default 300 `POST /v1/requests`, 8 at a time): cards/s and its ratio to the
  raw two-insert transaction rate; p50/p99/max from the POST to the card (`card.created`
  on the bus), to the SLA clock (`sla.clock_changed`), to the acknowledgment mail at the
  SMTP sink and to the portal's read-model row; how many tickets did not complete; the
  same time hop by hop (POST → intake's commit → `request.received` on the bus → the card's
  commit → `card.created` on the bus → the mail), from the events' `occurred_at`, so a slow
  stage shows itself;
* store transactions (and store operations) per ticket: SecantusDB's `serverStatus` has
  no transaction counters, so the admin database's profiler (level 2) records every
  `commitTransaction`/`abortTransaction` — one extra small write per transaction — and
  each is attributed to a service by its client port; store operations per service
  database come from the `top` command (free). Gross figures and figures net of the idle
  background rate are both printed;
* a soak (`--soak-minutes 30 --rate 5`): steady requests, latency per minute window;
* how long the stack keeps working after the last stage (backlogs behind it: statistics,
  other consumers); the "after" insert rate is measured once it is quiet, so it shows the
  store getting slower, not the store still busy;
* `--idle-after-minutes 60`: the stack left idle that long after the load, then the
  average idle CPU of each process over the stretch and the store's insert rate again;
* `--ops-detail`: the burst's and the soak's store operations per ticket by collection and kind;
* `--explain`: the store's profiler records every command of the burst; each kind of query
  is run again on the store as the burst left it, and those taking ≥ 2 ms and ≥ 3 × an
  `_id` lookup at the time (a scan) are listed with how often they ran per ticket and
  the store's plan (the profiler adds a write per command, so the run's other figures are
  not comparable);
* each process's peak RSS;
* a machine speed probe (fixed pure-Python work, CPU ms) before and after the burst: the
  same code's CPU per ticket moved by 40 % between back-to-back runs on this machine. A
  rough reading only — it moved 12–23 ms itself between runs, and after the burst it runs
  beside the stack's leftover work (two vCPUs may share one core) — but a run whose probe
  reads high is one to repeat before comparing figures.

The bench observes without joining the pipeline: an extra exclusive queue bound to the
namespace's exchange (`card.created`, `sla.clock_changed`, no-ack), arrivals at the sink,
and a read-only indexed poll of portal's `requests` by request id (`--portal-poll`,
default every 0.5 s, so the portal figure is exact to that interval).

    python bench/pipeline.py                          # burst of 300, 8 concurrent
    python bench/pipeline.py --burst 100 --timeout 900
    python bench/pipeline.py --burst 0 --soak-minutes 30 --rate 5
    python bench/pipeline.py --burst 100 --idle-after-minutes 60
    python bench/pipeline.py --retry-writes           # the driver's default URL (retryable
                                                      # writes on), to compare

`--store-log PATH` keeps the store's own log (INFO); `--store-module` runs another module as
the store (`secantus`: SecantusDB as released, without the desk's changes).

Ctrl-C during the load stops sending (soak) or waiting and still prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aio_pika
import httpx
from desk_contracts.topology import Topology
from pymongo import AsyncMongoClient

from bench.common import (
    broker_pids,
    cpu_seconds,
    cpu_seconds_or_zero,
    local_tcp_ports,
    machine_cpu,
    pct,
    peak_rss_mb,
    speed_probe,
)
from bench.notify_throughput import Sink, raw_broker
from tests.support.infra import free_port, rabbitmq_server, wait_port
from tests.support.stack import SERVICES, Stack, cleanup

STAGES = ("card", "sla", "mail", "portal")
# What the test suite shortens so tests finish fast; the bench leaves each service's own.
TEST_TIMINGS = ("OUTBOX_POLL_SECONDS", "DISPATCH_POLL_SECONDS", "RETRY_BASE_SECONDS",
                "MAIL_RETRY_SECONDS")


class PipelineStack(Stack):
    """The suite's launcher with the services' default poll intervals (as `make run`)."""

    keep_test_timings = False

    def env_for(self, name: str) -> dict[str, str]:
        env = super().env_for(name)
        if not self.keep_test_timings:
            wanted = self.extra.get(name, {})
            for key in list(env):
                if key.split("_", 1)[1] in TEST_TIMINGS and key not in wanted:
                    del env[key]
        return env


class Store:
    """A fresh SecantusDB of our own: an empty directory, a free port, its pid for CPU."""

    def __init__(self, retry_writes: bool, module: str = "desk_runtime.embedded_store",
                 log: str | None = None) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-pipeline-store-")
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child's
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--host", "127.0.0.1",
             "--port", str(self.port),
             "--storage-path", self.dir, "--log-level", "INFO" if log else "WARNING"],
            stdout=out, stderr=out)
        if log:
            out.close()
        wait_port("127.0.0.1", self.port)
        self.url = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
        if not retry_writes:
            self.url += "&retryWrites=false"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- the raw store and broker ---------------------------------------------------------

async def insert_rate(url: str, seconds: float) -> float:
    """Serial insert_one into a scratch collection for `seconds`: inserts/s."""
    client = AsyncMongoClient(url)
    coll = client["bench_scratch"][f"inserts_{uuid.uuid4().hex[:8]}"]
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        await coll.insert_one({"n": n, "pad": "x" * 200})
        n += 1
    rate = n / (time.perf_counter() - started)
    await coll.drop()
    await client.close()
    return rate


async def insert_rates(url: str, seconds: float, samples: int) -> list[float]:
    """`samples` insert_rate readings in a row: a single few-second reading of a store
    with a stack around it moves a lot (a checkpoint, a poll landing in it)."""
    return [await insert_rate(url, seconds) for _ in range(max(1, samples))]


def rates_line(rates: list[float], before: list[float] | None = None) -> str:
    """The median reading (its ratio to the median before), then every reading."""
    line = f"{statistics.median(rates):8.1f} /s"
    if before is not None:
        line += f"   = {statistics.median(rates) / statistics.median(before):.2f} × before"
    return line + "   (" + ", ".join(f"{r:.0f}" for r in rates) + ")"


async def txn_rate(url: str, seconds: float) -> float:
    """Serial transactions of two insert_one's (as the services run them): transactions/s."""
    client = AsyncMongoClient(url)
    db = client["bench_scratch"]
    a, b = db[f"txn_a_{uuid.uuid4().hex[:8]}"], db[f"txn_b_{uuid.uuid4().hex[:8]}"]
    await a.insert_one({"warm": True})  # collections exist before the first transaction
    await b.insert_one({"warm": True})
    n, started = 0, time.perf_counter()
    async with client.start_session() as session:
        while time.perf_counter() - started < seconds:
            async def work(s, n=n):
                await a.insert_one({"n": n, "pad": "x" * 200}, session=s)
                await b.insert_one({"n": n, "pad": "x" * 200}, session=s)
            await session.with_transaction(work)
            n += 1
    rate = n / (time.perf_counter() - started)
    await a.drop()
    await b.drop()
    await client.close()
    return rate


# ---- what the bench watches -----------------------------------------------------------

@dataclass
class Ticket:
    i: int
    email: str
    posted: float = 0.0      # when the POST was sent (time.time())
    answered: float = 0.0    # when intake answered
    status: int = 0          # intake's HTTP status (0: no answer)
    request_id: str | None = None
    at: dict[str, float] = field(default_factory=dict)  # stage -> time.time()

    def latency(self, stage: str) -> float | None:
        return self.at[stage] - self.posted if stage in self.at else None

    @property
    def accepted(self) -> bool:
        return self.status in (200, 202)

    @property
    def complete(self) -> bool:
        return all(s in self.at for s in STAGES)


class Observer:
    """Everything seen of the pipeline, keyed the way each source knows it; `resolve()`
    attributes it to tickets (events may arrive before intake's answer does)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.tickets: list[Ticket] = []
        self.by_request: dict[str, Ticket] = {}
        self.by_email: dict[str, Ticket] = {}
        self.cards: dict[str, tuple[float, str]] = {}   # request_id -> (seen, card_id)
        self.received: dict[str, tuple[float, float]] = {}  # request_id -> (occurred, seen)
        self.card_commit: dict[str, float] = {}         # request_id -> card occurred_at
        self.clocks: dict[str, float] = {}              # card_id -> first clock_changed seen
        self.portal: dict[str, float] = {}              # request_id -> first poll that found it
        self.mails_seen = 0
        self.portal_reads: list[float] = []  # when the bench itself read portal's rows
        self.conn: aio_pika.abc.AbstractRobustConnection | None = None

    async def subscribe(self, amqp_url: str, exchange: str) -> None:
        self.conn = await aio_pika.connect_robust(amqp_url)
        channel = await self.conn.channel()
        await channel.set_qos(prefetch_count=512)
        ex = await channel.get_exchange(exchange)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in ("request.received.v1", "card.created.v1", "sla.clock_changed.v1"):
            await queue.bind(ex, key)
        await queue.consume(self.on_message, no_ack=True)

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen = time.time()
        try:
            env = json.loads(message.body)
            payload = env["payload"]
            if env["type"] == "card.created":
                request_id = payload["card"].get("request_id")
                if request_id and request_id not in self.cards:
                    self.cards[request_id] = (seen, payload["card"]["card_id"])
                    occurred = env.get("occurred_at")
                    if occurred:
                        self.card_commit[request_id] = (
                            datetime.fromisoformat(occurred).timestamp())
            elif env["type"] == "request.received":
                occurred = env.get("occurred_at")
                self.received.setdefault(payload["request_id"], (
                    datetime.fromisoformat(occurred).timestamp() if occurred else seen, seen))
            elif env["type"] == "sla.clock_changed":
                self.clocks.setdefault(payload["card_id"], seen)
        except (ValueError, KeyError, TypeError):
            pass

    def add(self, ticket: Ticket) -> None:
        self.tickets.append(ticket)
        self.by_email[ticket.email] = ticket

    def resolve(self) -> None:
        with self.sink.lock:
            new = self.sink.arrivals[self.mails_seen:]
        self.mails_seen += len(new)
        for at, _, rcpt in new:
            t = self.by_email.get(rcpt)
            if t is not None:
                t.at.setdefault("mail", at)
        for t in self.tickets:
            if not t.request_id:
                continue
            card = self.cards.get(t.request_id)
            if card:
                t.at.setdefault("card", card[0])
                if card[1] in self.clocks:
                    t.at.setdefault("sla", self.clocks[card[1]])
            if t.request_id in self.portal:
                t.at.setdefault("portal", self.portal[t.request_id])

    async def poll_portal(self, url: str, db: str, every: float) -> None:
        """Portal's read model has no event of its own: read its rows by request id."""
        client = AsyncMongoClient(url)
        rows = client[db]["requests"]
        try:
            while True:
                await asyncio.sleep(every)
                pending = [t.request_id for t in self.tickets
                           if t.request_id and t.request_id not in self.portal]
                for i in range(0, len(pending), 200):
                    found = rows.find({"request_id": {"$in": pending[i:i + 200]}},
                                      {"request_id": 1}, batch_size=200)  # one operation
                    now = time.time()
                    self.portal_reads.append(now)
                    async for row in found:
                        self.portal.setdefault(row["request_id"], now)
        finally:
            await client.close()


class TxnCounter:
    """Counts the store's committed/aborted transactions, by the process that ran them.

    The admin database's profiler at level 2 writes one `system.profile` entry per
    `commitTransaction`/`abortTransaction` (drivers send both to admin); a client port is
    mapped to the process owning it through /proc. The profile is capped, so it is read
    incrementally."""

    def __init__(self, url: str, pids: dict[str, int]) -> None:
        self.client = AsyncMongoClient(url, tz_aware=True)
        self.pids = pids
        self.ports: dict[int, str] = {}
        self.events: list[tuple[float, str, str]] = []  # (server time, commit|abort, who)
        self.last_id = None
        self.paused = True  # read at phase ends; while load runs, often enough for the cap

    async def start(self) -> None:
        await self.client.admin.command("profile", 2)

    def _refresh_ports(self) -> None:
        for name, pid in self.pids.items():
            for port in local_tcp_ports(pid):
                self.ports[port] = name

    async def poll(self) -> None:
        self._refresh_ports()
        query = {"op": "command"} | ({"_id": {"$gt": self.last_id}} if self.last_id else {})
        async for entry in self.client.admin["system.profile"].find(
                query, {"command": 1, "client": 1, "ts": 1}).sort("_id", 1):
            self.last_id = entry["_id"]
            command = entry.get("command") or {}
            kind = ("commit" if "commitTransaction" in command else
                    "abort" if "abortTransaction" in command else None)
            if kind is None:
                continue
            port = int((entry.get("client") or ":0").rsplit(":", 1)[1] or 0)
            if port not in self.ports:
                self._refresh_ports()
            self.events.append((entry["ts"].timestamp(), kind, self.ports.get(port, "other")))

    async def run(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            if self.paused:
                continue
            try:
                await self.poll()
            except Exception as exc:  # noqa: BLE001 — a busy store must not end the count
                print(f"  (transaction count: {exc!r})", flush=True)

    def between(self, start: float, end: float) -> Counter:
        return Counter((kind, who) for ts, kind, who in self.events if start <= ts < end)

    async def close(self) -> None:
        try:
            await self.client.admin.command("profile", 0)
        finally:
            await self.client.close()


async def top_ops(url: str, namespace: str, *, detail: bool = False) -> Counter:
    """Store operations so far per service database (the `top` command's counts); with
    `detail`, per service, collection and kind of operation."""
    client = AsyncMongoClient(url)
    try:
        totals = (await client.admin.command("top"))["totals"]
    finally:
        await client.close()
    ops: Counter = Counter()
    for ns, sections in totals.items():
        if ns == "note":
            continue
        db = ns.split(".", 1)[0]
        if db in ("admin", "bench_scratch"):  # the bench's own (profile reads, probes)
            continue
        who = db[len(namespace) + 1:] if db.startswith(namespace + "_") else "other"
        if not detail:
            ops[who] += sections["total"]["count"]
            continue
        coll = ns.split(".", 1)[1] if "." in ns else ns
        for kind in ("queries", "getmore", "insert", "update", "remove", "commands"):
            if sections.get(kind, {}).get("count"):
                ops[(f"{who}.{coll} {kind}", "count")] += sections[kind]["count"]
                ops[(f"{who}.{coll} {kind}", "ms")] += sections[kind].get("time", 0) / 1000
    return ops


async def print_ops_detail(url: str, namespace: str, before: Counter, tickets: int,
                           window: str) -> None:
    """The store operations per ticket since `before`, by collection and kind."""
    detail = await top_ops(url, namespace, detail=True)
    detail.subtract(before)
    per = max(tickets, 1)
    spent = Counter({k: v for (k, what), v in detail.items() if what == "ms"})
    print(f"store operations per ticket by collection and kind ({window} window), "
          "with the store's time on them (`top`; a transaction's statements "
          "included, its commit not):")
    print(f"  {'ops':>7}  {'ms':>7}")
    for key, ms in spent.most_common(40):
        print(f"  {detail[(key, 'count')] / per:7.2f}  {ms / per:7.2f}  {key}")
    print(f"  {'':>7}  {sum(spent.values()) / per:7.2f}  in all")


async def store_requests(url: str) -> Counter:
    """Every request the store has answered so far (`serverStatus`: network.numRequests),
    by kind (opcounters): unlike `top`, reads of collections that do not exist yet, commits
    and the drivers' own commands count too."""
    client = AsyncMongoClient(url)
    try:
        status = await client.admin.command("serverStatus")
    finally:
        await client.close()
    counts = Counter({k: int(v) for k, v in (status.get("opcounters") or {}).items()})
    counts["requests"] = int((status.get("network") or {}).get("numRequests", 0))
    return counts


def print_requests(counts: Counter, idle: Counter, idle_seconds: float, seconds: float,
                   tickets: int) -> None:
    per = max(tickets, 1)
    rate = idle["requests"] / idle_seconds if idle_seconds > 0 else 0.0
    kinds = "  ".join(f"{k} {counts[k] / per:.1f}" for k in
                      ("query", "insert", "update", "delete", "getmore", "command") if counts[k])
    print(f"      store requests/ticket:      {counts['requests'] / per:.1f}  ({kinds}; net of "
          f"the idle {rate:.1f}/s: {(counts['requests'] - rate * seconds) / per:.1f}; every "
          "command answered: commits, reads of missing collections, the bench's polls)")


def _shape(value):
    """A filter with its values replaced by their types: one line per kind of query."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def _queries_of(command: dict) -> list[tuple[str, str, dict, dict | None]]:
    """(operation, collection, filter, sort) of each query a profiled command ran."""
    if "find" in command:
        return [("find", command["find"], command.get("filter") or {}, command.get("sort"))]
    if "findAndModify" in command:
        return [("findAndModify", command["findAndModify"], command.get("query") or {},
                 command.get("sort"))]
    if "update" in command:
        return [("update", command["update"], u.get("q") or {}, None)
                for u in command.get("updates") or []]
    if "delete" in command:
        return [("delete", command["delete"], d.get("q") or {}, None)
                for d in command.get("deletes") or []]
    if "count" in command:
        return [("count", command["count"], command.get("query") or {}, None)]
    if "aggregate" in command and isinstance(command["aggregate"], str):
        first = (command.get("pipeline") or [{}])[0]
        return [("aggregate", command["aggregate"], first.get("$match") or {}, None)]
    return []


async def profile_queries(url: str, namespace: str, on: bool) -> None:
    """Turn the store's profiler (level 2: every command) on or off for the services'
    databases."""
    client = AsyncMongoClient(url)
    try:
        for name in await client.list_database_names():
            if name.startswith(namespace + "_"):
                await client[name].command("profile", 2 if on else 0)
    finally:
        await client.close()


async def scanning_queries(url: str, namespace: str, tickets: int) -> list[str]:
    """Every kind of query the services ran (from the profiler), run again on the store as
    the burst left it: those that take ≥ 2 ms and ≥ 3 × an `_id` lookup at the time (a
    scan), costliest per ticket first, with the store's plan. (The plan alone misleads:
    SecantusDB's explain says COLLSCAN for `_id` lookups with extra conditions, which it
    serves by `_id`.)"""
    client = AsyncMongoClient(url)
    seen: dict[tuple, list] = {}
    try:
        for name in await client.list_database_names():
            if not name.startswith(namespace + "_"):
                continue
            async for entry in client[name]["system.profile"].find({}):
                for op, coll, flt, sort in _queries_of(entry.get("command") or {}):
                    if coll.startswith("system."):
                        continue
                    key = (name, op, coll, repr(_shape(flt)), repr(sort and list(sort)))
                    if key in seen:
                        seen[key][0] += 1
                    else:
                        seen[key] = [1, flt, sort]
        # what an _id lookup takes right now (the machine's load shows in every timing)
        base = []
        for _ in range(5):
            started = time.perf_counter()
            await client[namespace + "_boards"]["cards"].find_one({"_id": "-"})
            base.append(time.perf_counter() - started)
        floor = max(0.002, 3 * min(base))
        rows = [(float("inf"), f"  (an _id lookup takes {1000 * min(base):.1f} ms now; "
                               f"listed: ≥ {1000 * floor:.1f} ms)")]
        for (name, op, coll, shape, _), (n, flt, sort) in seen.items():
            times = []
            for _ in range(3):
                started = time.perf_counter()
                await client[name][coll].find_one(flt, sort=list(sort.items()) if sort else None)
                times.append(time.perf_counter() - started)
            took = min(times)
            if took < floor:
                continue
            explain: dict = {"find": coll, "filter": flt, **({"sort": sort} if sort else {})}
            try:
                plan = (await client[name].command("explain", explain)).get(
                    "queryPlanner", {}).get("winningPlan", {}).get("stage", "?")
            except Exception:  # noqa: BLE001
                plan = "?"
            rows.append((n / tickets * took, f"  {1000 * took:7.1f} ms  {n / tickets:6.2f}/ticket  "
                         f"{plan:<8} {name[len(namespace) + 1:]}.{coll} {op} {shape}"
                         + (f" sort {sort}" if sort else "")))
        return [line for _, line in sorted(rows, reverse=True)]
    finally:
        await client.close()


# ---- driving the desk -----------------------------------------------------------------

def request_body(ticket: Ticket) -> dict:
    return {"service": "problem",
            "requester": {"email": ticket.email, "name": f"Bench {ticket.i}"},
            "subject": f"Pipeline bench request {ticket.i}",
            "text": "The mailbox does not sync since this morning.",
            "fields": {"system": "mail", "impact": 3}}


async def post(client: httpx.AsyncClient, url: str, ticket: Ticket) -> None:
    ticket.posted = time.time()
    for _ in range(20):
        try:
            r = await client.post(url, json=request_body(ticket))
        except httpx.HTTPError:
            ticket.status = 0
            break
        ticket.status = r.status_code
        if r.status_code not in (404, 429, 503):  # not yet ready / back off: try again
            break
        await asyncio.sleep(0.5)
    ticket.answered = time.time()
    if ticket.accepted:
        ticket.request_id = r.json()["request_id"]


async def burst(obs: Observer, client: httpx.AsyncClient, url: str, n: int, concurrency: int,
                run: str) -> list[Ticket]:
    tickets = [Ticket(i, f"pb-{run}-{i}@bench.example") for i in range(n)]
    for t in tickets:
        obs.add(t)
    todo = list(reversed(tickets))

    async def worker() -> None:
        while todo:
            await post(client, url, todo.pop())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tickets


async def soak(obs: Observer, client: httpx.AsyncClient, url: str, minutes: float, rate: float,
               run: str) -> list[Ticket]:
    n = int(minutes * 60 * rate)
    tickets = [Ticket(i, f"ps-{run}-{i}@bench.example") for i in range(n)]
    in_flight = asyncio.Semaphore(64)
    tasks = []
    begin = time.monotonic()

    async def one(t: Ticket) -> None:
        async with in_flight:
            await post(client, url, t)
    try:
        for t in tickets:
            await asyncio.sleep(max(0.0, begin + t.i / rate - time.monotonic()))
            obs.add(t)
            tasks.append(asyncio.create_task(one(t)))
            if t.i and t.i % int(60 * rate) == 0:
                obs.resolve()
                print(f"  soak: minute {t.i // int(60 * rate)} sent; "
                      f"{_progress(tickets[:t.i])}", flush=True)
    except asyncio.CancelledError:  # Ctrl-C: stop sending, still wait and summarise
        print("  soak: interrupted, no more requests (Ctrl-C again ends the wait)", flush=True)
        tickets = tickets[:len(tasks)]
    await asyncio.gather(*tasks, return_exceptions=True)
    return tickets


def _progress(tickets: list[Ticket]) -> str:
    accepted = [t for t in tickets if t.accepted]
    done = {s: sum(1 for t in accepted if s in t.at) for s in STAGES}
    return f"accepted {len(accepted)}/{len(tickets)}, " + ", ".join(
        f"{s} {done[s]}" for s in STAGES)


async def wait_done(obs: Observer, stack: Stack, tickets: list[Ticket], timeout: float,
                    label: str) -> float:
    """Until every accepted ticket completed every stage, or `timeout` s after the last
    answer; returns when it stopped waiting."""
    last_answer = max((t.answered for t in tickets), default=time.time())
    next_report = time.monotonic() + 15
    while True:
        obs.resolve()
        accepted = [t for t in tickets if t.accepted]
        if all(t.complete for t in accepted):
            break
        if time.time() > last_answer + timeout:
            print(f"  {label}: timed out {timeout:.0f} s after the last POST's answer", flush=True)
            break
        dead = [n for n, p in stack.services.items() if p.proc and p.proc.poll() is not None]
        if dead:
            print(f"  {label}: service process(es) exited: {', '.join(dead)}", flush=True)
            break
        if time.monotonic() >= next_report:
            print(f"  {label}: {_progress(tickets)}", flush=True)
            next_report += 15
        try:
            await asyncio.sleep(0.25)
        except asyncio.CancelledError:  # Ctrl-C: stop waiting, print what was seen
            print(f"  {label}: interrupted", flush=True)
            break
    obs.resolve()
    return time.time()


# ---- figures --------------------------------------------------------------------------

def stage_line(tickets: list[Ticket], stage: str) -> str:
    accepted = [t for t in tickets if t.accepted]
    values = [t.latency(stage) for t in accepted if stage in t.at]
    missing = len(accepted) - len(values)
    if not values:
        return f"{'none arrived':>35}   missing {missing}"
    return (f"p50 {pct(values, 50):7.2f} s  p99 {pct(values, 99):7.2f} s  "
            f"max {max(values):7.2f} s   missing {missing}")


def cpu_window(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's CPU over `seconds` (at least 1), as % of one core."""
    seconds = max(seconds, 1.0)
    before = {n: cpu_seconds(p) for n, p in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    return {n: 100 * (cpu_seconds(p) - before[n]) / wall for n, p in pids.items()}


def wait_quiet(pids: dict[str, int], limit: float) -> float:
    """Seconds until the stack has caught up with work queued behind the last stage (other
    consumers' backlog, statistics, outbox marks): every process under 10 % of one core
    over two seconds in a row; at most `limit`."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if all(v < 10.0 for v in cpu_window(pids, 2.0).values()):
            break
    return time.monotonic() - started


def print_cpu(label: str, cpu: dict[str, float]) -> None:
    services = "  ".join(f"{n} {cpu[n]:.1f}" for n in SERVICES if n in cpu)
    print(f"  {label:<38} store {cpu['store']:5.1f} %   ({services})")


def print_txns(label: str, counts: Counter, ops: Counter, tickets: int, seconds: float,
               idle_txn: Counter | None, idle_ops: Counter | None, idle_seconds: float) -> None:
    commits = sum(v for (k, _), v in counts.items() if k == "commit")
    aborts = sum(v for (k, _), v in counts.items() if k == "abort")
    per = max(tickets, 1)
    line = f"  {label:<38} {commits / per:6.1f} commits/ticket  ({commits} commits, {aborts} aborts"
    if idle_txn is not None and idle_seconds > 0:
        idle_rate = sum(v for (k, _), v in idle_txn.items() if k == "commit") / idle_seconds
        net = commits - idle_rate * seconds
        line += f"; net of the idle {idle_rate:.1f}/s: {net / per:.1f}/ticket"
    print(line + ")")
    for kind in ("commit", "abort"):
        by = Counter()
        for (k, who), v in counts.items():
            if k == kind:
                by[who] += v
        if by:
            print(f"      {kind}s/ticket by process:  ".ljust(34) + "  ".join(
                f"{n} {by[n] / per:.1f}" for n in (*SERVICES, "bench", "other") if by.get(n)))
    total_ops = sum(ops.values())
    line = f"      store operations/ticket:    {total_ops / per:.1f}  ("
    line += "  ".join(f"{n} {ops[n] / per:.1f}" for n in (*SERVICES, "other") if ops.get(n))
    if idle_ops is not None and idle_seconds > 0:
        line += f"; idle background {sum(idle_ops.values()) / idle_seconds:.1f} ops/s"
    print(line + "; the bench's own reads excluded)")


def soak_table(tickets: list[Ticket], start: float, window: float = 60.0) -> None:
    print(f"  {'minute':>6} {'sent':>5} {'ok':>5}" + "".join(
        f" {s + ' p50/p99 (s)':>19}" for s in STAGES) + "  incomplete")
    windows: dict[int, list[Ticket]] = {}
    for t in tickets:
        windows.setdefault(int((t.posted - start) // window), []).append(t)
    for w in sorted(windows):
        ts = windows[w]
        ok = [t for t in ts if t.accepted]
        cells = []
        for s in STAGES:
            values = [t.latency(s) for t in ok if s in t.at]
            cells.append(f"{pct(values, 50):8.2f}/{pct(values, 99):<8.2f}" if values
                         else f"{'—':>17}")
        print(f"  {w + 1:>6} {len(ts):>5} {len(ok):>5}" + "".join(f" {c:>19}" for c in cells)
              + f"  {sum(1 for t in ok if not t.complete):>10}")


def print_hops(obs: Observer, tickets: list[Ticket]) -> None:
    """Where a ticket's time goes, hop by hop (each from the bus's own timestamps)."""
    hops: dict[str, list[float]] = {}
    for t in tickets:
        rid = t.request_id
        if not rid or rid not in obs.received:
            continue
        occurred, seen = obs.received[rid]
        marks = [("intake commit", occurred), ("request.received on the bus", seen)]
        if rid in obs.card_commit:
            marks.append(("card commit", obs.card_commit[rid]))
        if "card" in t.at:
            marks.append(("card.created on the bus", t.at["card"]))
        if "mail" in t.at:
            marks.append(("mail at the sink", t.at["mail"]))
        prev_name, prev = "POST", t.posted
        for name, at in marks:
            hops.setdefault(f"{prev_name} → {name}", []).append(at - prev)
            prev_name, prev = name, at
    if hops:
        print("  hop by hop (the bench's clock and the events' occurred_at)")
        for name, values in hops.items():
            print(f"    {name:44s} p50 {pct(values, 50):7.2f} s  p99 {pct(values, 99):7.2f} s"
                  f"  max {max(values):7.2f} s")


def summarise_run(tickets: list[Ticket], label: str) -> int:
    accepted = [t for t in tickets if t.accepted]
    failed = Counter(t.status for t in tickets if not t.accepted)
    incomplete = sum(1 for t in accepted if not t.complete)
    answers = [t.answered - t.posted for t in accepted]
    print(f"  {label}: {len(tickets)} POSTs, {len(accepted)} accepted"
          + (f", refused/failed {dict(failed)}" if failed else "")
          + f", {incomplete} did not complete every stage")
    if answers:
        print(f"  POST answered                          p50 {pct(answers, 50):7.2f} s  "
              f"p99 {pct(answers, 99):7.2f} s  max {max(answers):7.2f} s")
    for s, what in zip(STAGES, ("card (card.created)", "SLA clock (sla.clock_changed)",
                                "acknowledgment mail at the sink", "portal row")):
        print(f"  POST → {what:<31} {stage_line(tickets, s)}")
    return incomplete + len(tickets) - len(accepted)


# ---- the run --------------------------------------------------------------------------

async def measure(args, store: Store, amqp_url: str, stack: PipelineStack, sink: Sink,
                  raw: dict) -> int:
    ns, run = stack.namespace, uuid.uuid4().hex[:6]
    pids = {"store": store.proc.pid} | {n: stack[n].proc.pid for n in SERVICES}
    obs = Observer(sink)
    await obs.subscribe(amqp_url, Topology(ns).exchange)
    background = [asyncio.create_task(obs.poll_portal(store.url, f"{ns}_portal",
                                                      args.portal_poll))]
    counter = None
    if not args.no_txn_count:
        counter = TxnCounter(store.url, {n: p for n, p in pids.items() if n != "store"})
        counter.pids["bench"] = os.getpid()
        await counter.start()
        background.append(asyncio.create_task(counter.run()))
    failures = 0
    try:
        await asyncio.sleep(args.settle)
        # ---- idle
        idle_start, idle_ops0 = time.time(), await top_ops(store.url, ns)
        idle_req0 = await store_requests(store.url)
        idle_cpu = await asyncio.to_thread(cpu_window, pids, args.idle_seconds)
        idle_req = await store_requests(store.url) - idle_req0
        idle_end, idle_ops1 = time.time(), await top_ops(store.url, ns)
        insert_before = await insert_rates(store.url, args.insert_seconds, args.insert_samples)
        if counter:
            await counter.poll()
        idle_txn = counter.between(idle_start, idle_end) if counter else None
        idle_ops = idle_ops1 - idle_ops0

        http = httpx.AsyncClient(timeout=args.http_timeout,
                                 limits=httpx.Limits(max_connections=max(args.concurrency, 64)))
        url = f"{stack['intake'].url}/v1/requests"
        burst_tickets: list[Ticket] = []
        soak_tickets: list[Ticket] = []
        after_burst: dict = {}
        # ---- burst
        if args.burst:
            print(f"burst: {args.burst} requests, {args.concurrency} concurrent …", flush=True)
            ops0 = await top_ops(store.url, ns)
            detail0 = await top_ops(store.url, ns, detail=True) if args.ops_detail else None
            req0 = await store_requests(store.url)
            if args.explain:
                await profile_queries(store.url, ns, True)
            cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
            brokers = broker_pids(urlsplit(amqp_url).port or 5672)
            broker0 = sum(cpu_seconds_or_zero(p) for p in brokers)
            machine0 = machine_cpu()
            b_start = time.time()
            if counter:
                counter.paused = False
            burst_tickets = await burst(obs, http, url, args.burst, args.concurrency, run)
            b_posted = time.time()
            b_end = await wait_done(obs, stack, burst_tickets, args.timeout, "burst")
            # CPU time each process spent on the burst: unlike wall-clock figures it does
            # not grow when other work shares the machine, so it says what a ticket costs
            after_burst["cpu_spent"] = {n: cpu_seconds(p) - cpu0[n] for n, p in pids.items()}
            after_burst["broker_cpu"] = sum(cpu_seconds_or_zero(p) for p in brokers) - broker0
            machine1 = machine_cpu()
            after_burst["probe"] = speed_probe()
            after_burst["machine_busy"] = ((machine1[0] - machine0[0])
                                           / max(machine1[1] - machine0[1], 1e-9))
            after_burst["requests"] = await store_requests(store.url) - req0
            ops1 = await top_ops(store.url, ns)
            ops1["portal"] -= sum(1 for t in obs.portal_reads if b_start <= t <= b_end)
            if args.explain:
                await profile_queries(store.url, ns, False)
                scans = await scanning_queries(store.url, ns, args.burst)
                print(f"kinds of query taking ≥ 3 × an _id lookup on the store after the burst: "
                      f"{len(scans) - 1}")
                for line in scans:
                    print(line)
            if detail0 is not None:
                await print_ops_detail(store.url, ns, detail0, args.burst, "burst")
            if counter:
                counter.paused = True
                await asyncio.sleep(2.5)  # the profile entry of the last commit
                await counter.poll()
            after_burst["quiet"] = await asyncio.to_thread(wait_quiet, pids, 180.0)
            # and with the work left after the last stage (statistics, SLA display, marks):
            # all a ticket costs, less the quiet check's own idle seconds
            after_burst["cpu_all"] = {n: cpu_seconds(p) - cpu0[n] for n, p in pids.items()}
            after_burst["insert"] = await insert_rates(store.url, args.insert_seconds,
                                                       args.insert_samples)
            if args.idle_seconds and not args.soak_minutes:
                after_burst["cpu"] = await asyncio.to_thread(cpu_window, pids,
                                                             args.idle_seconds)
            after_burst |= {"start": b_start, "posted": b_posted, "end": b_end,
                            "ops": ops1 - ops0,
                            "txn": counter.between(b_start, b_end) if counter else Counter()}
        # ---- soak
        if args.soak_minutes:
            print(f"soak: {args.soak_minutes:g} min at {args.rate:g} requests/s …", flush=True)
            ops0 = await top_ops(store.url, ns)
            detail0 = await top_ops(store.url, ns, detail=True) if args.ops_detail else None
            s_start = time.time()
            if counter:
                counter.paused = False
            soak_tickets = await soak(obs, http, url, args.soak_minutes, args.rate, run)
            s_end = await wait_done(obs, stack, soak_tickets, args.timeout, "soak")
            ops1 = await top_ops(store.url, ns)
            ops1["portal"] -= sum(1 for t in obs.portal_reads if s_start <= t <= s_end)
            if detail0 is not None:
                await print_ops_detail(store.url, ns, detail0, len(soak_tickets), "soak")
            if counter:
                counter.paused = True
                await asyncio.sleep(2.5)
                await counter.poll()
            soak_txn = counter.between(s_start, s_end) if counter else Counter()
            await asyncio.to_thread(wait_quiet, pids, 180.0)
            insert_after_soak = await insert_rates(store.url, args.insert_seconds,
                                                   args.insert_samples)
            soak_cpu = (await asyncio.to_thread(cpu_window, pids, args.idle_seconds)
                        if args.idle_seconds else None)
        # ---- a long idle stretch after the load: does the store stay as fast as it was?
        long_idle: dict = {}
        if args.idle_after_minutes:
            print(f"idle: {args.idle_after_minutes:g} min with no traffic …", flush=True)
            cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
            i_start = time.time()
            await asyncio.sleep(60 * args.idle_after_minutes)
            long_idle["cpu_avg"] = {n: 100 * (cpu_seconds(p) - cpu0[n]) / (time.time() - i_start)
                                    for n, p in pids.items()}
            long_idle["insert"] = await insert_rates(store.url, args.insert_seconds,
                                                     args.insert_samples)
        await http.aclose()
        rss = {n: peak_rss_mb(p) for n, p in pids.items()}
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if counter:
            await counter.close()
        if obs.conn:
            await obs.conn.close()

    # ---- the figures
    print()
    print(f"pipeline — fresh SecantusDB, five services as processes, RabbitMQ namespace {ns}")
    print(f"  store URL {store.url}; services' "
          f"{'test-suite' if args.test_timings else 'own default'} poll intervals; "
          f"logs in {stack.workdir}")
    print("raw, same run (before the services start)")
    print(f"  store insert_one, serial               {raw['insert']:8.1f} /s")
    print(f"  store transaction of 2 insert_one's     {raw['txn']:8.1f} /s (serial)")
    print(f"  broker publish (confirms) + consume     {raw['bus']:8.1f} msg/s")
    print(f"  machine speed probe                     {raw['probe']:8.1f} ms  (fixed pure-Python "
          "work, CPU time; lower is faster; a rough reading: repeat a run where it is high)")
    print("idle stack")
    print_cpu(f"CPU over {args.idle_seconds:g} s, % of one core", idle_cpu)
    print(f"  store insert_one, serial, stack idle    {rates_line(insert_before)}")
    if burst_tickets:
        b = after_burst
        print(f"burst of {args.burst} at {args.concurrency} concurrent")
        failures += summarise_run(burst_tickets, "requests")
        cards = [t.at["card"] for t in burst_tickets if "card" in t.at]
        if cards:
            rate = len(cards) / max(max(cards) - b["start"], 1e-9)
            print(f"  cards/s (first POST → last card)        {rate:8.2f}   "
                  f"= {rate / raw['txn']:.4f} × the raw two-insert transaction rate")
        lags = [obs.cards[t.request_id][0] - obs.card_commit[t.request_id]
                for t in burst_tickets if t.request_id in obs.card_commit]
        if lags:
            print(f"  of which card commit → on the bus      p50 {pct(lags, 50):7.2f} s  "
                  f"p99 {pct(lags, 99):7.2f} s  (card.created occurred_at → seen)")
        print_hops(obs, burst_tickets)
        print(f"  POSTs took {b['posted'] - b['start']:.1f} s; stopped waiting "
              f"{b['end'] - b['start']:.1f} s after the first")
        done = max(sum(1 for t in burst_tickets if t.complete), 1)
        spent = b["cpu_spent"]
        total = sum(spent.values())
        print(f"  CPU per ticket (process CPU time)      {1000 * total / done:6.1f} ms  (store "
              f"{1000 * spent['store'] / done:.1f}; "
              + "  ".join(f"{n} {1000 * spent[n] / done:.1f}" for n in SERVICES if n in spent)
              + f") — {os.cpu_count()} cores give at most "
              f"{os.cpu_count() / max(total / done, 1e-9):.1f} tickets/s")
        every = b["cpu_all"]
        print(f"  … and with the work left after it      {1000 * sum(every.values()) / done:6.1f} "
              f"ms  (store {1000 * every['store'] / done:.1f}; "
              + "  ".join(f"{n} {1000 * every[n] / done:.1f}" for n in SERVICES if n in every)
              + "; until quiet)")
        print(f"  the broker's CPU per ticket            {1000 * b['broker_cpu'] / done:6.1f} ms  "
              "(RabbitMQ's whole VM: whatever else uses it counts too)")
        print(f"  the machine's cores busy               {100 * b['machine_busy']:6.1f} %   "
              "(all processes, first POST → last stage)")
        print(f"  machine speed probe after the burst    {b['probe']:6.1f} ms  (before: "
              f"{raw['probe']:.1f} ms)")
        print_txns("store per ticket (burst window)", b["txn"], b["ops"],
                   sum(1 for t in burst_tickets if t.accepted), b["end"] - b["start"],
                   idle_txn, idle_ops, idle_end - idle_start)
        print_requests(b["requests"], idle_req, idle_end - idle_start, b["end"] - b["start"],
                       sum(1 for t in burst_tickets if t.accepted))
        print(f"  work left after the last stage          {b['quiet']:8.1f} s    "
              "(until every process is under 10 % of a core)")
        print(f"  store insert_one after the burst        "
              f"{rates_line(b['insert'], insert_before)}  (once quiet)")
        if "cpu" in b:
            print_cpu("idle CPU after the burst" + (" (NOT idle: work left)" if any(
                not t.complete for t in burst_tickets if t.accepted) else ""), b["cpu"])
    if soak_tickets:
        print(f"soak: {args.soak_minutes:g} min at {args.rate:g} requests/s "
              "(latency by the minute the request was sent)")
        failures += summarise_run(soak_tickets, "requests")
        soak_table(soak_tickets, s_start)
        minute = int(60 * args.rate)
        first = [t.latency("mail") for t in soak_tickets[:minute] if "mail" in t.at]
        last = [t.latency("mail") for t in soak_tickets[-minute:] if "mail" in t.at]
        if first and last:
            lost = (min(minute, len(soak_tickets)) - len(first),
                    min(minute, len(soak_tickets)) - len(last))
            print(f"  mail p99, last minute vs first: {pct(last, 99):.2f} s vs "
                  f"{pct(first, 99):.2f} s ({pct(last, 99) / max(pct(first, 99), 1e-9):.2f}×)"
                  + (f" — but {lost[1]} (last) and {lost[0]} (first) mails never came, "
                     "so the real ratio is higher" if any(lost) else ""))
        print_txns("store per ticket (soak window)", soak_txn, ops1 - ops0,
                   sum(1 for t in soak_tickets if t.accepted), s_end - s_start,
                   idle_txn, idle_ops, idle_end - idle_start)
        print(f"  store insert_one after the soak         "
              f"{rates_line(insert_after_soak, insert_before)}")
        if soak_cpu:
            print_cpu("idle CPU after the soak" + (" (NOT idle: work left)" if any(
                not t.complete for t in soak_tickets if t.accepted) else ""), soak_cpu)
    if long_idle:
        print(f"after {args.idle_after_minutes:g} min idle")
        print_cpu(f"CPU averaged over the {args.idle_after_minutes:g} min, % of one core",
                  long_idle["cpu_avg"])
        print(f"  store insert_one after the idle stretch "
              f"{rates_line(long_idle['insert'], insert_before)}")
    print("peak RSS (VmHWM)")
    print("  " + "  ".join(f"{n} {rss[n]:.0f} MiB" for n in ("store", *SERVICES)))
    if failures:
        print(f"NOT COMPLETE: {failures} request(s) refused or not through every stage")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=300, help="requests in the burst (0: none)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--soak-minutes", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=5.0, help="soak requests/s")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds to wait after the last POST for every stage")
    parser.add_argument("--idle-seconds", type=float, default=20.0,
                        help="idle CPU window (before the load and after it)")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds between ready and the idle window")
    parser.add_argument("--insert-seconds", type=float, default=3.0)
    parser.add_argument("--insert-samples", type=int, default=3,
                        help="insert-rate readings of the stack's store (the median counts)")
    parser.add_argument("--txn-seconds", type=float, default=5.0)
    parser.add_argument("--broker-messages", type=int, default=2000)
    parser.add_argument("--portal-poll", type=float, default=0.5)
    parser.add_argument("--http-timeout", type=float, default=60.0)
    parser.add_argument("--retry-writes", "--default-url", action="store_true",
                        help="reach the store with the driver's default URL "
                             "(`?directConnection=true`: retryable writes on) instead of "
                             "`retryWrites=false` (what make run and the tests use)")
    parser.add_argument("--test-timings", action="store_true",
                        help="the test suite's short poll intervals instead of the services' own")
    parser.add_argument("--idle-after-minutes", type=float, default=0.0,
                        help="leave the stack idle this long after the load, then measure the "
                             "store's insert rate and the average idle CPU again")
    parser.add_argument("--explain", action="store_true",
                        help="profile every store command during the burst and list the kinds "
                             "of query the store answers by scanning a whole collection")
    parser.add_argument("--ops-detail", action="store_true",
                        help="print the burst's and the soak's store operations per "
                             "collection and kind")
    parser.add_argument("--no-txn-count", action="store_true",
                        help="do not profile commits (one extra store write per transaction)")
    parser.add_argument("--store-log", metavar="PATH",
                        help="append the store's own log (at INFO) to PATH")
    parser.add_argument("--store-module", default="desk_runtime.embedded_store",
                        help="the module run as the store (e.g. secantus, as released)")
    args = parser.parse_args()

    with rabbitmq_server() as amqp_url:
        store = Store(retry_writes=args.retry_writes, module=args.store_module,
                      log=args.store_log)
        print(f"store pid {store.proc.pid} on port {store.port}", flush=True)
        sink = Sink()
        stack = None
        try:
            raw = {"probe": speed_probe(),
                   "insert": asyncio.run(insert_rate(store.url, args.insert_seconds)),
                   "txn": asyncio.run(txn_rate(store.url, args.txn_seconds)),
                   "bus": asyncio.run(raw_broker(amqp_url, [
                       json.dumps({"n": i, "pad": "x" * 1000}).encode()
                       for i in range(args.broker_messages)]))}
            sink.controller.start()
            stack = PipelineStack(store.url, amqp_url,
                                  Path(tempfile.mkdtemp(prefix="bench-pipeline-")),
                                  smtp_port=sink.port, namespace=f"bp{uuid.uuid4().hex[:10]}")
            stack.keep_test_timings = args.test_timings
            started = time.monotonic()
            stack.start()
            wait_catalogs(store.url, stack.namespace)
            print(f"stack ready (and catalogs copied) in {time.monotonic() - started:.1f} s",
                  flush=True)
            failures = asyncio.run(measure(args, store, amqp_url, stack, sink, raw))
        finally:
            if stack is not None:
                stack.stop()
            sink.controller.stop()
            if stack is not None:
                cleanup(store.url, amqp_url, stack.namespace)
            store.stop()
    return 1 if failures else 0


def wait_catalogs(url: str, namespace: str, timeout: float = 120.0) -> None:
    """Every service that validates or shows a request holds the demo catalog's `problem`
    (readiness does not cover it yet: the first POSTs would get 404)."""
    from pymongo import MongoClient

    deadline = time.monotonic() + timeout
    with MongoClient(url) as client:
        for name in ("intake", "sla", "notify", "portal"):
            coll = client[f"{namespace}_{name}"]["catalog"]
            while coll.find_one({"_id": "problem"}, {"_id": 1}) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} has no catalog after {timeout:.0f} s")
                time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
