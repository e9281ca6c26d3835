"""What automation costs per card event: 10,000 cards, 50 active rules.

    python bench/automation.py [--cards 10000] [--rules 50] [--events 200] [--phase-seconds 30]

On a fresh SecantusDB (or DESK_TEST_MONGO_URL), no broker needed: boards' automation runs
in-process on the real store, as its consumer runs it. Prints p50/p99 per event of
- deciding which rules run (the pure evaluation over the process's cached rules);
- the whole automation handling of one event in one transaction (card read, depth look-up,
  evaluation, run records, the run log on the card's history, and the actions of the rules
  that ran: a label, a priority, an internal note);
- the raw store write the event caused anyway: a move, one card version with a history
  entry (what boards' own write path does), in its own transaction — measured in turn with
  the automation handling, so both see the same load on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import AsyncMongoClient  # noqa: E402

from bench.common import pct  # noqa: E402
from tests.support.infra import mongo_server  # noqa: E402

BOARDS = [f"b{i}" for i in range(5)]
COLUMNS = [{"id": "new", "name": "New", "category": "queued"},
           {"id": "doing", "name": "Doing", "category": "in_progress"},
           {"id": "done", "name": "Done", "category": "done"}]
SERVICES = [f"s{i}" for i in range(10)]
CATEGORIES = [f"c{i}" for i in range(20)]
PRIORITIES = ["low", "medium", "high", "critical"]
TRIGGERS = ["card_created", "card_moved", "field_changed", "assigned", "customer_replied"]


def rules(n: int, rng: random.Random) -> list[dict]:
    """`n` rules over five boards: a trigger each, one to three conditions (most events
    fail one: a skip is logged), cheap actions (a label, a priority, a note)."""
    out = []
    for i in range(n):
        trigger = {"type": rng.choice(TRIGGERS)}
        if trigger["type"] == "card_moved":
            trigger["to_column"] = rng.choice(["doing", "done"])
        conditions = [{"attribute": "service", "values": rng.sample(SERVICES, 3)}]
        if rng.random() < 0.5:
            conditions.append({"attribute": "priority", "values": rng.sample(PRIORITIES, 2)})
        if rng.random() < 0.3:
            conditions.append({"attribute": "category", "values": rng.sample(CATEGORIES, 5)})
        action = rng.choice([{"type": "add_labels", "labels": [f"auto-{i % 7}"]},
                             {"type": "set_priority", "value": rng.choice(PRIORITIES)},
                             {"type": "note", "text": f"Rule {i} looked at this."}])
        out.append({"id": f"rule-{i:02d}", "name": f"Rule {i}", "board_id": BOARDS[i % 5],
                    "trigger": trigger, "conditions": conditions, "actions": [action]})
    return out


def card(i: int, rng: random.Random, now: datetime) -> dict:
    card_id = str(uuid.uuid4())
    column = rng.choice(COLUMNS)
    return {"_id": card_id, "number": f"SD-{i + 1}", "version": 1, "title": f"Card {i}",
            "board_id": rng.choice(BOARDS), "column_id": column["id"], "lane_id": "main",
            "status_category": column["category"], "priority": rng.choice(PRIORITIES),
            "channel": "email", "created_at": now, "updated_at": now, "type": "request",
            "service_id": rng.choice(SERVICES), "category_path": [rng.choice(CATEGORIES)],
            "requester": {"email": f"c{i}@acme.example", "name": "C"}, "fields": {},
            "labels": [], "history": [], "kind": "request", "sort_key": f"{i:08d}"}


async def run(url: str, n_cards: int, n_rules: int, n_events: int, budget: float
              ) -> None:
    from boards.automation import domain
    from boards.automation.application import on_happening
    from boards.automation.repository import AutomationRepository
    from boards.domain.card import CardChange
    from boards.repository import Repositories
    from boards.settings import BoardsSettings
    from desk_runtime.unit_of_work import UnitOfWork

    rng = random.Random(16)
    client = AsyncMongoClient(url, tz_aware=True)
    db = client[f"bench_automation_{uuid.uuid4().hex[:6]}"]
    settings = BoardsSettings()
    now = datetime.now(UTC)
    repos, auto = Repositories.of(db), AutomationRepository(db)
    await repos.ensure_indexes()
    await auto.ensure_indexes()
    for board in BOARDS:
        await repos.catalog.save_board({"_id": board, "name": board, "columns": COLUMNS,
                                        "lanes": [{"id": "main", "name": "Main"}]})
    boards = {b["_id"]: b for b in await repos.catalog.list_boards()}
    started = time.perf_counter()
    docs = [card(i, rng, now) for i in range(n_cards)]
    for at in range(0, n_cards, 1000):
        await db.cards.insert_many(docs[at:at + 1000])
    print(f"{n_cards} cards stored in {time.perf_counter() - started:.1f} s")
    for rule in rules(n_rules, rng):
        kept = domain.validate_rule(rule, boards=boards, services=set(SERVICES),
                                    categories=set(CATEGORIES), checklists=set(),
                                    agents=set(), canned=set())
        await auto.save_rule(kept, by="bench", at=now)
    active = await auto.all("rule")
    print(f"{len(active)} active rules")

    def happening(doc: dict) -> domain.Happening:
        trigger = rng.choice(TRIGGERS)
        if trigger == "card_moved":
            return domain.Happening(trigger, doc["_id"], from_column="new",
                                    to_column=rng.choice(["doing", "done"]),
                                    to_category="in_progress")
        if trigger == "field_changed":
            return domain.Happening(trigger, doc["_id"], changed=("priority",))
        return domain.Happening(trigger, doc["_id"])

    # 1. the decision alone, over the cached rules
    evaluation, matched = [], []
    for _ in range(n_events * 10):
        doc = rng.choice(docs)
        h = happening(doc)
        t = time.perf_counter()
        decisions = domain.evaluate(await auto.all("rule"), h, doc)
        evaluation.append((time.perf_counter() - t) * 1000)
        matched.append(len(decisions))

    async def in_transaction(work) -> None:
        async with client.start_session() as session:
            async def body(s):
                uow = UnitOfWork(db, s, "bench")
                await work(uow)
            await session.with_transaction(body)

    # 2. and 3., one event after the other so both see the same load on the machine: the
    # raw write the event causes anyway (a move: one card version with a history entry),
    # then the whole automation handling of an event, each in its own transaction
    raw, whole = [], []
    phase_ends = time.monotonic() + 2 * budget
    for _ in range(n_events):
        if time.monotonic() > phase_ends:
            break
        doc = rng.choice(docs)

        async def write(uow, card_id=doc["_id"]):
            current = await Repositories.of(uow.db).cards.card(card_id, uow.session)
            column = rng.choice(COLUMNS)
            change = CardChange(sets={"column_id": column["id"],
                                      "status_category": column["category"],
                                      "column_entered_at": datetime.now(UTC)})
            change.note(datetime.now(UTC), "bench", "column_id", current.column_id,
                        column["id"])
            await Repositories.of(uow.db).cards.save_change(current, change,
                                                             datetime.now(UTC), uow.session)
        t = time.perf_counter()
        await in_transaction(write)
        raw.append((time.perf_counter() - t) * 1000)

        async def handle(uow, h=happening(rng.choice(docs))):
            await on_happening(uow, h, settings)
        t = time.perf_counter()
        await in_transaction(handle)
        whole.append((time.perf_counter() - t) * 1000)
    runs = await db.automation_runs.count_documents({})
    acted = await db.automation_runs.count_documents({"outcome": "ran"})

    def line(name: str, ms: list[float]) -> None:
        print(f"{name:<64} p50 {pct(ms, 50):8.3f} ms   p99 {pct(ms, 99):8.3f} ms")

    print(f"rules whose trigger an event matched: mean {sum(matched) / len(matched):.2f}")
    line(f"rule evaluation per event (pure, {len(evaluation)} events)", evaluation)
    line(f"raw store write per event (a move: card version + history, {len(raw)})", raw)
    line(f"automation per event, whole transaction ({len(whole)}; {runs} runs logged, "
         f"{acted} acted)", whole)
    await client.drop_database(db.name)
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--phase-seconds", type=float, default=30.0,
                        help="the store measurements stop after twice this long (the run "
                             "stays short on a busy machine; the count measured is printed)")
    args = parser.parse_args()
    started = time.perf_counter()
    with mongo_server() as url:
        asyncio.run(run(url, args.cards, args.rules, args.events, args.phase_seconds))
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
