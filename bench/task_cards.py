"""Child-card progress and the closing rule among many cards, next to the raw store query.

    python bench/task_cards.py [--cards 20000] [--children 5] [--requests 200]

Starts a fresh SecantusDB (as tests/support/infra.py does), stores N task cards shaped as
boards writes them (`Card.new_task(...).to_document()`, through `CardRepository` and its
indexes): every (children+1)-th card a parent, the following ones its children on other
boards. Then prints p50/p99 of what a card page and a move into `done` add (the parent's
`children_progress`, the rule's `children_of`) next to the one store query they are built
on (`find({parent_id})` straight with PyMongo), whether `explain` used the index, and the
statistics' blocked time over the same number of cards' versions (pure arithmetic).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import AsyncMongoClient  # noqa: E402

from bench.common import pct  # noqa: E402
from tests.support.infra import mongo_server  # noqa: E402

BOARDS = [{"_id": b, "lanes": [{"id": "main"}],
           "columns": [{"id": "todo", "name": "To do", "category": "queued"},
                       {"id": "done", "name": "Done", "category": "done"}]}
          for b in ("hiring", "payroll", "accounting", "admins", "it")]


def make_cards(n: int, children: int, seed: int = 5) -> tuple[list[dict], list[str]]:
    from boards.domain.board import BoardRules
    from boards.domain.card import Card

    rnd = random.Random(seed)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    docs, parents = [], []
    parent = None
    for i in range(n):
        board = BOARDS[0] if i % (children + 1) == 0 else rnd.choice(BOARDS[1:])
        rules = BoardRules(board)
        card = Card.new_task(
            card_id=f"c{i:07d}", number=f"SD-{i + 1}", title=f"Task {i}", board=board,
            column_id=rnd.choice(["todo", "done"]), lane_id="main",
            card_type=rules.task_type(), priority=rules.priorities[1], fields={},
            due_date=None, assignee=None, parent=parent if board is not BOARDS[0] else None,
            by="bench", now=at + timedelta(seconds=i))
        if board is BOARDS[0]:
            parent = card
            parents.append(card.id)
            card.links = [{"kind": "child", "card_id": f"c{i + k:07d}", "number": "",
                           "board_id": "", "title": ""} for k in range(1, children + 1)]
        docs.append(card.to_document())
    # the last parent may have fewer children than the others: leave it out of the sample
    return docs, parents[: n // (children + 1)]


async def run(args: argparse.Namespace) -> None:
    from boards.application.cards import children_progress
    from boards.repository import Repositories
    from boards.stats.domain import Period, blocked_spans, blocked_time

    with mongo_server() as url:
        client = AsyncMongoClient(url, tz_aware=True)
        db = client[f"bench_tasks_{int(time.time())}"]
        repos = Repositories.of(db)
        await repos.ensure_indexes()
        started = time.monotonic()
        docs, parents = make_cards(args.cards, args.children)
        for i in range(0, len(docs), 1000):
            await db.cards.insert_many(docs[i:i + 1000])
        print(f"stored {len(docs)} cards ({len(parents)} parents with {args.children} "
              f"children each) in {time.monotonic() - started:.1f} s; "
              f"{args.requests} requests, one at a time")
        rnd = random.Random(9)
        progress, rule, raw = [], [], []
        for _ in range(args.requests):
            parent_id = rnd.choice(parents)
            card = await repos.cards.card(parent_id)
            t = time.perf_counter()
            shown = await children_progress(repos, card)
            progress.append(time.perf_counter() - t)
            t = time.perf_counter()
            await repos.cards.children_of(parent_id)
            rule.append(time.perf_counter() - t)
            t = time.perf_counter()
            found = [d async for d in db.cards.find({"parent_id": parent_id},
                                                    {"number": 1, "status_category": 1})]
            raw.append(time.perf_counter() - t)
            assert shown["total"] == len(found) == args.children
        plan = await db.cards.find({"parent_id": parents[0]}).explain()
        used = "IXSCAN" if "IXSCAN" in str(plan.get("queryPlanner", {})) else "COLLSCAN"
        print(f"{'what':34} {'p50':>8} {'p99':>8}")
        for name, values in (("card page: children_progress", progress),
                             ("closing rule: children_of", rule),
                             ("raw find({parent_id})", raw)):
            print(f"{name:34} {pct(values, 50) * 1000:>6.2f}ms {pct(values, 99) * 1000:>6.2f}ms")
        print(f"index on parent_id used: {used}")

        # blocked time: each card's versions, every third blocked for a while
        t0 = datetime(2026, 11, 2, tzinfo=UTC)
        versions = {f"c{i}": [{"version": v, "at": t0 + timedelta(hours=i % 24 + v),
                               "blocked": i % 3 == 0 and v == 2} for v in range(1, 5)]
                    for i in range(args.cards)}
        t = time.perf_counter()
        spans = {k: s for k, rows in versions.items() if (s := blocked_spans(rows))}
        figures = blocked_time(spans, Period(t0, t0 + timedelta(days=30)))
        print(f"blocked time over {args.cards} cards' versions: "
              f"{(time.perf_counter() - t) * 1000:.0f} ms ({figures['count']} blocked, "
              f"median {figures['median'] / 3600:.1f} h)")
        await client.drop_database(db.name)
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--children", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
