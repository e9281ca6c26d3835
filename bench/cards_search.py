"""Card search and the card table over 10,000 cards: latency next to the raw store queries.

    python bench/cards_search.py [--cards 10000] [--requests 30] [--concurrency 4]

Starts a fresh SecantusDB, loads N cards shaped as boards writes them (bench/boards_list's
cards, each with its description and every fifth with an internal note, their stems kept
on the card as boards keeps them), runs the boards app in-process (its real lifespan)
behind httpx's ASGI transport, signs an agent in, and prints p50/p99 and throughput of
`GET /v1/search/cards` and of the `/table` page (a common word, a rare word, a filter
with a sort, plain newest-first pages) next to the store queries each one needs, sent
straight with PyMongo: the full-text key lookup with its filters (the candidates), the
comments of a page (where each card matched), a newest-first page.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402

from bench.boards_list import (  # noqa: E402
    BOARDS,
    CATEGORY,
    LANES,
    ME,
    WORDS,
    cleanup,
    make_cards,
)
from bench.common import pct, timed  # noqa: E402
from tests.support.infra import mongo_server  # noqa: E402

PHRASES = ["не печатает принтер", "VPN disconnects every hour", "пароль истёк, нужен сброс",
           "the invoice total is wrong", "ноутбук не включается", "calendar invites vanish"]
RARE = "zeppelin"  # in about one card in 500


def with_texts(cards: list[dict], seed: int = 7) -> list[dict]:
    """Each card's description (and some internal notes) as comments, stems on the card."""
    from boards.domain.search import card_keys, comment_stems

    rnd = random.Random(seed)
    comments = []
    for i, card in enumerate(cards):
        texts = [(f"{rnd.choice(PHRASES)}; {rnd.choice(WORDS)} since {rnd.choice(WORDS)}"
                  + (f" near the {RARE}" if i % 500 == 0 else ""), "public", True)]
        if i % 5 == 0:
            texts.append((f"checked {rnd.choice(WORDS)} with the vendor", "internal", False))
        stems: list[str] = []
        for n, (text, visibility, first) in enumerate(texts):
            comments.append({"_id": f"{card['_id']}-{n}", "card_id": card["_id"],
                             "visibility": visibility, "text": text,
                             "author": {"kind": "agent", "id": ME, "name": "Me"},
                             "created_at": card["created_at"], "attachments": [],
                             **({"request_id": card["request_id"]} if first else {})})
            stems += comment_stems(text)
        card["search_comments"] = stems
        card["text_keys"] = card_keys(card)
    return comments


async def sign_in(http: httpx.AsyncClient) -> None:
    page = await http.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = await http.post("/login", data={"token": "bench-agent", "csrf": token,
                                        "next": "/table"})
    assert r.status_code == 303 and "desk_agent_session" in http.cookies, r.text


async def run(args: argparse.Namespace) -> None:
    with mongo_server() as mongo_url:
        namespace = f"bench{uuid.uuid4().hex[:8]}"
        os.environ.update({
            "BOARDS_MONGO_URL": mongo_url, "BOARDS_MONGO_DB": f"{namespace}_boards",
            "BOARDS_BUS_NAMESPACE": namespace, "BOARDS_DEMO_CATALOG": "true",
            "BOARDS_BOOTSTRAP_ADMIN_TOKEN": "bench-admin", "BOARDS_LOG_LEVEL": "WARNING",
            "BOARDS_COOKIE_SECURE": "false",
        })
        from boards.auth import hash_token
        from boards.main import create_app
        from boards.repository import CardRepository
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
                                               "boards": ["support", "dev"], "active": True,
                                               "token_hashes": [hash_token("bench-agent")]})
                cards = make_cards(args.cards)
                comments = with_texts(cards)
                t = time.perf_counter()
                for i in range(0, len(cards), 1000):
                    await db["cards"].insert_many(cards[i:i + 1000])
                for i in range(0, len(comments), 1000):
                    await db["comments"].insert_many(comments[i:i + 1000])
                for key in (cards[0]["sort_key"], cards[-1]["sort_key"]):
                    await CardRepository(db).note_card_time(key)
                print(f"loaded {len(cards):,} cards and {len(comments):,} comments in "
                      f"{time.perf_counter() - t:.1f}s")
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                             base_url="http://boards", timeout=60) as http:
                    await sign_in(http)
                    await report(http, db, args)
        finally:
            await cleanup(client, namespace)
            await client.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process (app + client): {peak:.0f} MiB")


CASES = [
    # (name, path, params, the store queries it needs)
    ("search: common word", "/v1/search/cards", {"q": "printer", "board": "support"}),
    ("search: two ru words", "/v1/search/cards", {"q": "принтеры печатают"}),
    ("search: rare word", "/v1/search/cards", {"q": RARE}),
    ("search+filters", "/v1/search/cards", {"q": "vpn", "board": "support",
                                            "priority": "high"}),
    ("table: newest page", "/table", {"board": "support"}),
    ("table: search page", "/table", {"q": "invoice wrong"}),
    ("table: mine by priority", "/table", {"assignee": "me", "sort": "-priority"}),
]


async def report(http: httpx.AsyncClient, db, args: argparse.Namespace) -> None:
    from boards.api.search import SEARCH_CANDIDATES, CardQuery
    from boards.domain.agent import Agent
    from boards.repository import CardRepository, card_list_query

    repo = CardRepository(db)
    me = Agent(ME, "Me", "agent", frozenset(("support", "dev")))
    print(f"\n{args.requests} sequential requests each, then {args.requests} over "
          f"{args.concurrency} clients; the store reads the same request needs without "
          f"HTTP: the repository's windowed candidate walk (repo), the same filter as one "
          f"plain store query (plain, n rows), the comments of the page (where each card "
          f"matched); {args.requests} sequential each\n")
    head = (f"{'case':26} {'rows':>4} | {'HTTP p50':>8} {'p99':>7} {'req/s':>6} | "
            f"{'repo p50':>8} {'p99':>7} | {'plain p50':>9} {'p99':>7} {'n':>4} | "
            f"{'comments p50':>12} {'p99':>6}")
    print(head)
    print("-" * len(head))
    for name, path, params in CASES:
        first = await http.get(path, params=params)
        assert first.status_code == 200, first.text[:300]
        rows = (len(first.json()["items"]) if path.startswith("/v1")
                else first.text.count("<tr tabindex"))
        query = CardQuery.parse(params)
        scope = [query.board] if query.board else ["dev", "support"]
        spec = query.spec(me, scope)
        plain = card_list_query(boards=scope, text=list(spec.text) or None,
                                **{k: v for k, v in spec.equal.items()})
        cap = SEARCH_CANDIDATES + 1 if query.q or query.sort != "-created" else 51

        async def call(path=path, params=params):
            r = await http.get(path, params=params)
            assert r.status_code == 200

        async def candidates(plain=plain, cap=cap):
            return await db["cards"].find(plain, {"history": 0}).sort("sort_key", -1).limit(
                cap).to_list()

        got = await candidates()
        ids = [c["_id"] for c in got[:50]]

        async def page_comments(ids=ids):
            await db["comments"].find({"card_id": {"$in": ids}}).to_list()

        async def windowed(spec=spec, cap=cap):
            await repo.list_cards(spec, cap)

        lat, tput = await timed(call, args.requests, args.concurrency)
        win, _ = await timed(windowed, args.requests, 0)
        raw, _ = await timed(candidates, args.requests, 0)
        com, _ = await timed(page_comments, args.requests, 0) if query.q else ([], 0)
        print(f"{name:26} {rows:>4} | {pct(lat, 50):6.1f}ms {pct(lat, 99):5.1f}ms "
              f"{tput:6.1f} | {pct(win, 50):6.1f}ms {pct(win, 99):5.1f}ms | "
              f"{pct(raw, 50):7.1f}ms {pct(raw, 99):5.1f}ms {len(got):>4} | "
              + (f"{pct(com, 50):10.1f}ms {pct(com, 99):4.1f}ms" if com else f"{'-':>12} {'-':>6}"))

    # paging the table through every card: page k costs what page 1 does (keyset, no skip)
    cursor, page_ms, seen = None, [], 0
    while True:
        t = time.perf_counter()
        r = await http.get("/v1/cards", params={"limit": 200, **({"cursor": cursor}
                                                                   if cursor else {})})
        page_ms.append((time.perf_counter() - t) * 1000)
        seen += len(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    third = max(1, len(page_ms) // 3)
    print(f"\nkeyset walk over all {seen:,} cards (200 a page, the table's newest-first "
          f"order): {len(page_ms)} pages, first third p50 {pct(page_ms[:third], 50):.1f}ms, "
          f"last third p50 {pct(page_ms[-third:], 50):.1f}ms")
    t = time.perf_counter()
    r = await http.get("/table.csv", params={"cols": "number,title,status,assignee"})
    lines = r.text.count("\r\n") - 1
    print(f"CSV export of the whole table: {lines:,} rows in "
          f"{(time.perf_counter() - t) * 1000:.0f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=4)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
