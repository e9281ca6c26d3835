"""Boards list-with-filters under 10,000 cards: API latency vs the raw store query, and plans.

    python bench/boards_list.py [--cards 10000] [--requests 150] [--concurrency 8]

Starts a fresh SecantusDB (as tests/support/infra.py does), loads N cards shaped exactly
as boards writes them, runs the boards app in-process (its real lifespan: store, broker,
indexes) behind httpx's ASGI transport with an agent's token, then for several filter
combinations prints p50/p99 and throughput of `GET /v1/cards` next to the same query
sent straight to the store with PyMongo, plus what `explain` says about index use.
Needs the local RabbitMQ (the app connects to it; a unique namespace is removed after).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx
from pymongo import AsyncMongoClient

from bench.common import pct, timed  # noqa: E402
from tests.support.infra import mongo_server

BOARDS = {"support": ["queue", "in-progress", "clarification", "pause", "done"],
          "dev": ["backlog", "doing", "shipped"]}
LANES = {"support": ["l1", "l2", "legal"], "dev": ["core", "web"]}
CATEGORY = {"queue": "queued", "in-progress": "in_progress",
            "clarification": "waiting_for_customer", "pause": "paused", "done": "done",
            "backlog": "queued", "doing": "in_progress", "shipped": "done"}
SERVICES = ["problem", "access", "question", "legal-document"]
PRIORITIES = ["low", "medium", "high", "critical"]
WORDS = ["printer", "vpn", "mail", "crm", "invoice", "laptop", "password", "contract",
         "badge", "wifi", "monitor", "license", "backup", "phone", "calendar", "report"]
AGENTS = [f"agent-{i}" for i in range(20)]
ME = "agent-7"


def make_cards(n: int, seed: int = 42) -> list[dict]:
    """Cards as boards stores them (same derived fields: sort_key, search_terms, sla_state)."""
    from boards.domain.cards import search_terms, sort_key

    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cards = []
    for i in range(n):
        board = "support" if rnd.random() < 0.8 else "dev"
        column = rnd.choice(BOARDS[board])
        created = start + timedelta(minutes=7 * i)
        card_id = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        sla_roll = rnd.random()
        sla_state = "breached" if sla_roll < 0.03 else "warning" if sla_roll < 0.08 else None
        card = {
            "_id": card_id, "number": f"SD-{i + 1}", "version": 1,
            "title": f"{rnd.choice(WORDS).title()} {rnd.choice(WORDS)} issue {i}",
            "type": "request", "service_id": rnd.choice(SERVICES), "board_id": board,
            "column_id": column, "lane_id": rnd.choice(LANES[board]),
            "status_category": CATEGORY[column], "priority": rnd.choice(PRIORITIES),
            "requester": {"email": f"user{rnd.randrange(2000)}@acme.example",
                          "name": f"User {rnd.randrange(2000)}"},
            "channel": rnd.choice(["email", "portal", "telegram"]), "request_id": f"b-{i}",
            "fields": {"system": "mail"}, "attachments": [], "due_date": None,
            "assignee_id": rnd.choice(AGENTS + [None]), "members": [], "tags": [],
            "checklist": [], "parent_id": None, "links": [], "unread_customer_reply": False,
            "sla": {}, "sla_state": sla_state, "rating": None, "created_by": "system",
            "created_at": created, "updated_at": created, "column_entered_at": created,
            "sort_key": sort_key(created, card_id), "language": "en",
            "history": [{"at": created, "by": "system", "field": "created", "from": None,
                         "to": f"{board}/{column}"}],
        }
        card["search_terms"] = search_terms(card)
        cards.append(card)
    return cards


COMBOS: list[tuple[str, dict]] = [
    ("board", {"board": "support"}),
    ("board+lane", {"board": "support", "lane": "l2"}),
    ("board+column+priority", {"board": "support", "column": "in-progress",
                               "priority": "high"}),
    ("my cards (assignee=me)", {"assignee": "me"}),
    ("board+sla=breached", {"board": "support", "sla": "breached"}),
    ("board+service", {"board": "support", "service": "access"}),
    ("board+q (word search)", {"board": "support", "q": "printer"}),
]


def spec_for(params: dict, after: str | None = None):
    """The list spec the API builds for `params` as agent ME (same code path)."""
    from boards.domain.cards import query_terms
    from boards.repository import CardListSpec

    return CardListSpec.build(
        boards=params.get("board") or ["support"], after=after,
        terms=query_terms(params["q"]) if params.get("q") else None,
        lane_id=params.get("lane"), column_id=params.get("column"),
        assignee_id=ME if params.get("assignee") == "me" else params.get("assignee"),
        service_id=params.get("service"), priority=params.get("priority"),
        sla_state=params.get("sla"))


def naive_query(params: dict) -> dict:
    """The same filter as one plain store query (what a client without windows sends)."""
    from boards.domain.cards import query_terms
    from boards.repository import card_list_query

    return card_list_query(
        boards=params.get("board") or ["support"],
        terms=query_terms(params["q"]) if params.get("q") else None,
        lane_id=params.get("lane"), column_id=params.get("column"),
        assignee_id=ME if params.get("assignee") == "me" else params.get("assignee"),
        service_id=params.get("service"), priority=params.get("priority"),
        sla_state=params.get("sla"))


async def explain(db, query: dict, limit: int) -> dict:
    return await db.command("explain", {"find": "cards", "filter": query,
                                        "sort": {"sort_key": -1}, "limit": limit + 1},
                            verbosity="executionStats")


def plan_summary(explain: dict) -> tuple[str, int, int, int]:
    stage = explain["queryPlanner"]["winningPlan"]
    stages, index = [], "-"
    while stage:
        stages.append(stage.get("stage", "?"))
        index = stage.get("indexName", index)
        stage = stage.get("inputStage") or (stage.get("inputStages") or [None])[0]
    stats = explain.get("executionStats", {})
    return ("<".join(stages) + f" [{index}]", stats.get("totalKeysExamined", -1),
            stats.get("totalDocsExamined", -1), stats.get("nReturned", -1))


async def run(args: argparse.Namespace) -> None:
    with mongo_server() as mongo_url:
        namespace = f"bench{uuid.uuid4().hex[:8]}"
        os.environ.update({
            "BOARDS_MONGO_URL": mongo_url, "BOARDS_MONGO_DB": f"{namespace}_boards",
            "BOARDS_BUS_NAMESPACE": namespace, "BOARDS_DEMO_CATALOG": "true",
            "BOARDS_BOOTSTRAP_ADMIN_TOKEN": "bench-admin", "BOARDS_LOG_LEVEL": "WARNING",
        })
        from boards.auth import hash_token
        from boards.main import create_app
        from boards.settings import BoardsSettings

        app = create_app(BoardsSettings())
        client = AsyncMongoClient(mongo_url, tz_aware=True)
        db = client[f"{namespace}_boards"]
        try:
            async with app.router.lifespan_context(app):
                await db["boards"].insert_one({
                    "_id": "dev", "name": "Dev", "lanes": [{"id": x, "name": x}
                                                           for x in LANES["dev"]],
                    "columns": [{"id": c, "name": c, "category": CATEGORY[c]}
                                for c in BOARDS["dev"]]})
                await db["agents"].insert_one({"_id": ME, "name": "Me", "role": "agent",
                                               "boards": ["support"], "active": True,
                                               "token_hashes": [hash_token("bench-agent")]})
                cards = make_cards(args.cards)
                t = time.perf_counter()
                for i in range(0, len(cards), 1000):
                    await db["cards"].insert_many(cards[i:i + 1000])
                load_s = time.perf_counter() - t
                from boards.repository import CardRepository
                for key in (min(c["sort_key"] for c in cards), max(c["sort_key"] for c in cards)):
                    await CardRepository(db).note_card_time(key)
                print(f"loaded {len(cards):,} cards in {load_s:.1f}s "
                      f"({len(cards) / load_s:,.0f}/s); indexes: "
                      f"{len(await db['cards'].index_information())}")
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                        transport=transport, base_url="http://boards",
                        headers={"Authorization": "Bearer bench-agent"}) as http:
                    await report(http, db, args)
        finally:
            await cleanup(client, namespace)
            await client.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process (app + client): {peak:.0f} MiB")


async def report(http: httpx.AsyncClient, db, args: argparse.Namespace) -> None:
    from boards.repository import CardRepository

    repo = CardRepository(db)
    limit = args.limit
    print(f"\nGET /v1/cards?...&limit={limit} as an agent of board 'support': API "
          f"({args.requests} sequential, then {args.requests} over {args.concurrency} "
          f"clients) vs the same windowed store reads without HTTP (repository) vs one "
          f"plain store query ({args.naive} sequential)\n")
    head = (f"{'filters':24} {'rows':>4} | {'API p50':>8} {'p99':>7} {'req/s':>6} | "
            f"{'store p50':>9} {'p99':>7} | {'plain p50':>9} {'p99':>7}")
    print(head)
    print("-" * len(head))
    plans = []
    for name, params in COMBOS:
        full = params | {"limit": limit}
        first = await http.get("/v1/cards", params=full)
        first.raise_for_status()
        rows = len(first.json()["items"])
        spec, naive = spec_for(params), naive_query(params)
        expected = [c["_id"] for c in await db["cards"].find(naive, {"_id": 1}).sort(
            "sort_key", -1).limit(limit).to_list()]
        assert [c["id"] for c in first.json()["items"]] == expected, name  # same answer

        async def api_call(full=full):
            r = await http.get("/v1/cards", params=full)
            assert r.status_code == 200

        async def store_call(spec=spec):
            await repo.list_cards(spec, limit + 1)

        async def naive_call(naive=naive):
            await db["cards"].find(naive, {"history": 0}).sort("sort_key", -1).limit(
                limit + 1).to_list()

        api_lat, api_tp = await timed(api_call, args.requests, args.concurrency)
        raw_lat, _ = await timed(store_call, args.requests, 0)
        naive_lat, _ = await timed(naive_call, args.naive, 0)
        print(f"{name:24} {rows:>4} | {pct(api_lat, 50):6.1f}ms {pct(api_lat, 99):5.1f}ms "
              f"{api_tp:6.0f} | {pct(raw_lat, 50):7.1f}ms {pct(raw_lat, 99):5.1f}ms | "
              f"{pct(naive_lat, 50):7.1f}ms {pct(naive_lat, 99):5.1f}ms")
        trace: list[dict] = []
        await repo.list_cards(spec, limit + 1, trace=trace)
        keys = docs = 0
        used: set[str] = set()
        for query in trace:
            plan, k, d, _ = plan_summary(await explain(db, query, limit))
            keys, docs = keys + k, docs + d
            used.add(plan)
        plans.append((name, f"windowed x{len(trace)}", " / ".join(sorted(used)), keys, docs))
        plans.append((name, "plain", *plan_summary(await explain(db, naive, limit))[:3]))

    print("\nexplain (executionStats) for page 1: every window query the repository ran "
          "(summed) vs the plain single query:\n")
    print(f"{'filters':24} {'query':12} {'plan':50} {'keys':>6} {'docs':>6}")
    for name, label, plan, keys, docs in plans:
        print(f"{name:24} {label:12} {plan:50} {keys:>6} {docs:>6}")
    collscans = [f"{p[0]} ({p[1]})" for p in plans if "COLLSCAN" in p[2]]
    windowed_scans = [p[0] for p in plans if p[1] != "plain" and "COLLSCAN" in p[2]]
    print("\nevery windowed list query uses an index" if not windowed_scans
          else f"\nCOLLSCAN in windowed queries: {', '.join(windowed_scans)}")
    if collscans:
        print(f"plain single queries SecantusDB cannot index: {', '.join(collscans)}")

    # Cursor pagination: the cost of page k should not grow with k (no skip).
    params = {"board": "support", "limit": 100}
    cursor, page_ms, seen = None, [], 0
    while True:
        t = time.perf_counter()
        r = await http.get("/v1/cards", params=params | ({"cursor": cursor} if cursor else {}))
        page_ms.append((time.perf_counter() - t) * 1000)
        body = r.json()
        seen += len(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    third = max(1, len(page_ms) // 3)
    print(f"\ncursor walk over board 'support' (limit 100): {len(page_ms)} pages, {seen:,} "
          f"cards; first third p50 {statistics.median(page_ms[:third]):.1f}ms, last third "
          f"p50 {statistics.median(page_ms[-third:]):.1f}ms")


async def cleanup(client: AsyncMongoClient, namespace: str) -> None:
    import aio_pika
    from desk_contracts.topology import Topology
    from desk_runtime.bus import delete_topology

    for name in await client.list_database_names():
        if name.startswith(namespace):
            await client.drop_database(name)
    try:
        conn = await aio_pika.connect(os.environ.get("BOARDS_AMQP_URL",
                                                     "amqp://guest:guest@127.0.0.1:5672/"))
        async with conn:
            await delete_topology(await conn.channel(), Topology(namespace))
    except (OSError, aio_pika.exceptions.AMQPError) as exc:  # figures are printed already
        print(f"(could not remove bench queues: {exc})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--naive", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--limit", type=int, default=50)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
