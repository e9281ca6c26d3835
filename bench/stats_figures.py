"""Statistics at size: how long the team lead waits for a month's figures.

    python bench/stats_figures.py               # 3,000 cards in one month
    python bench/stats_figures.py --cards 10000

Fills the statistics read model of a fresh store through its own repository (the same
writes the `boards.stats` consumers make: three card versions, both SLA completions and
most ratings per card), starts the real boards process on it, and times the summary and
flow API for the month, next to the raw store read of the same cards on the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from boards.stats.repository import CARDS, StatsRepository  # noqa: E402
from desk_contracts.events import CardSnapshot  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402

from bench.common import pct, peak_rss_mb  # noqa: E402
from tests.support.infra import mongo_server, rabbitmq_server  # noqa: E402
from tests.support.stack import Stack, auth, cleanup  # noqa: E402

MONTH = datetime(2026, 11, 1, tzinfo=UTC)
STEPS = (("queue", "queued"), ("in-progress", "in_progress"), ("done", "done"))


def snapshot(card_id: str, n: int, version: int, at: datetime, rnd: random.Random) -> CardSnapshot:
    column, category = STEPS[version - 1]
    return CardSnapshot(
        card_id=card_id, number=f"SD-{n}", version=version, title=f"Request {n}",
        service_id=rnd.choice(["problem", "access", "question"]), board_id="support",
        column_id=column, lane_id=rnd.choice(["l1", "l2"]), status_category=category,
        customer_status=category, priority=rnd.choice(["low", "medium", "high"]),
        requester={"email": f"c{n % 500}@acme.example"}, channel="email",
        assignee_id=rnd.choice(["ann", "bob", None]), created_at=at, updated_at=at)


async def fill(db, cards: int) -> float:
    rnd = random.Random(7)
    repo = StatsRepository(db)
    await repo.ensure_indexes()
    began = time.perf_counter()
    for n in range(cards):
        card_id = str(uuid.uuid4())
        created = MONTH + timedelta(minutes=rnd.randrange(0, 29 * 24 * 60))
        taken = created + timedelta(minutes=rnd.randrange(5, 600))
        done = taken + timedelta(minutes=rnd.randrange(30, 5000))
        for version, at in enumerate((created, taken, done), start=1):
            await repo.apply_snapshot(snapshot(card_id, n, version, at, rnd), "default", at=at)
        for target, end in (("first_response", taken), ("resolution", done)):
            await repo.put_target({
                "_id": f"{card_id}:{target}:1", "card_id": card_id, "number": f"SD-{n}",
                "target": target, "met": rnd.random() < 0.85, "started_at": created,
                "completed_at": end, "spent_seconds": (end - created).total_seconds() * 0.4,
                "elapsed_seconds": (end - created).total_seconds(), "paused_seconds": 0.0,
                "cycle": 1, "policy": "standard", "calendar": "24x7", "service_id": "problem"})
        if rnd.random() < 0.6:
            rated = done + timedelta(hours=2)
            await repo.add_rating({"_id": f"{card_id}:{rated.isoformat()}", "card_id": card_id,
                                   "rating": rnd.randint(1, 5), "comment": None,
                                   "rated_at": rated, "rated_by": None, "observed": True})
        if (n + 1) % 1000 == 0:
            print(f"  … {n + 1:,} cards", flush=True)
    return cards / (time.perf_counter() - began)


async def main(args) -> None:
    with mongo_server() as mongo_url, rabbitmq_server() as amqp_url:
        stack = Stack(mongo_url, amqp_url, Path(tempfile.mkdtemp(prefix="bench-stats-")))
        client = AsyncMongoClient(mongo_url, tz_aware=True)
        db = client[f"{stack.namespace}_boards"]
        try:
            print(f"filling the statistics read model with {args.cards:,} cards", flush=True)
            rate = await fill(db, args.cards)
            stack.start(("boards",))
            pid = stack["boards"].proc.pid
            params = {"from": "2026-11-01", "to": "2026-11-30"}
            rows = {}
            async with httpx.AsyncClient(base_url=stack["boards"].url, headers=auth(stack),
                                         timeout=120) as http:
                for path in ("/v1/stats/summary", "/v1/stats/flow"):
                    r = await http.get(path, params=params)
                    r.raise_for_status()  # warm-up, and proof it answers
                    times = []
                    for _ in range(args.runs):
                        t = time.perf_counter()
                        (await http.get(path, params=params)).raise_for_status()
                        times.append((time.perf_counter() - t) * 1000)
                    rows[path] = times
            raw = []
            for _ in range(args.runs):
                t = time.perf_counter()
                found = await db[CARDS].find({"created_at": {"$lt": MONTH + timedelta(days=30)}}
                                             ).to_list(None)
                raw.append((time.perf_counter() - t) * 1000)
            rss = peak_rss_mb(pid)
        finally:
            stack.stop()
            await client.close()
            await asyncio.to_thread(cleanup, mongo_url, amqp_url, stack.namespace)

    print(f"\nread model filled at {rate:,.0f} cards/s (3 versions, 2 SLA targets, ratings)")
    print(f"{'request':<22} {'p50':>9} {'p99':>9}   ({args.cards:,} cards, one month)")
    for path, times in rows.items():
        print(f"{path:<22} {pct(times, 50):>7.0f}ms {pct(times, 99):>7.0f}ms")
    print(f"{'raw store: the cards':<22} {pct(raw, 50):>7.0f}ms {pct(raw, 99):>7.0f}ms"
          f"   ({len(found):,} documents)")
    print(f"boards peak RSS {rss:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
