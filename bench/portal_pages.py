"""Portal pages under a big store: home and request page of a customer with 200 requests.

    python bench/portal_pages.py [--requests 100000] [--mine 200] [--n 200] [--concurrency 8]

Starts a fresh SecantusDB (as tests/support/infra.py does), loads N requests into the
portal's read model shaped exactly as the portal's consumer writes them (one customer
owning `--mine` of them, with a public conversation each), runs the portal app in-process
(its real lifespan: store, broker, indexes) behind httpx's ASGI transport with a signed-in
customer's session cookie, and prints requests/s and p50/p99 of the full server-rendered
`GET /` and `GET /requests/{id}` next to the same store queries sent straight to the store
with PyMongo on the same run. Needs the local RabbitMQ (a unique namespace, removed after).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402

from bench.common import pct, timed  # noqa: E402
from tests.support.infra import mongo_server  # noqa: E402

ME = "me@acme.example"
SERVICES = ["problem", "access", "question", "legal-document"]
CATEGORIES = ["queued", "in_progress", "waiting_for_customer", "paused", "done", "done"]
WORDS = ["printer", "vpn", "mail", "crm", "invoice", "laptop", "password", "contract",
         "badge", "wifi", "monitor", "license", "backup", "phone", "calendar", "report"]


def make_requests(n: int, mine: int, seed: int = 7) -> tuple[list[dict], list[dict]]:
    """Read-model rows as `PortalRepository.apply_card` writes them, plus my conversation."""
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    mine_at = set(rnd.sample(range(n), mine))
    rows, messages = [], []
    for i in range(n):
        domain = rnd.choice(["acme.example", "globex.example", "initech.example"])
        email = ME if i in mine_at else f"user{rnd.randrange(5000)}@{domain}"
        created = start + timedelta(minutes=3 * i)
        card_id = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        category = rnd.choice(CATEGORIES)
        rows.append({
            "_id": card_id, "number": f"SD-{i + 1}", "version": 3,
            "title": f"{rnd.choice(WORDS).title()} {rnd.choice(WORDS)} issue {i}",
            "service_id": rnd.choice(SERVICES), "status_category": category,
            "customer_status": category, "requester_email": email,
            "requester_domain": email.split("@")[1], "request_id": f"portal-{card_id}",
            "telegram_user_id": None, "organisation": None, "channel": "portal",
            "fields": {"system": "mail", "impact": rnd.randrange(1, 50)}, "parent_id": None,
            "created_at": created, "updated_at": created,
            "last_activity_at": created + timedelta(minutes=rnd.randrange(0, 5000)),
        })
        if email == ME:
            for k in range(4):
                agent = k % 2 == 1
                messages.append({
                    "_id": str(uuid.uuid4()), "card_id": card_id, "number": f"SD-{i + 1}",
                    "author": {"kind": "agent" if agent else "customer",
                               "id": "agent-1" if agent else ME,
                               "name": "Olga" if agent else None},
                    "text": " ".join(rnd.choice(WORDS) for _ in range(40)),
                    "attachments": [], "created_at": created + timedelta(minutes=10 * k),
                    "reply_id": None,
                })
    return rows, messages


async def run(args: argparse.Namespace) -> None:
    with mongo_server() as mongo_url:
        namespace = f"bench{uuid.uuid4().hex[:8]}"
        os.environ.update({
            "PORTAL_MONGO_URL": mongo_url, "PORTAL_MONGO_DB": f"{namespace}_portal",
            "PORTAL_BUS_NAMESPACE": namespace, "PORTAL_LOG_LEVEL": "WARNING",
            "PORTAL_COOKIE_SECURE": "false", "PORTAL_ENV": "development",
        })
        from boards.demo import demo_services
        from desk_runtime.sessions import token_hash
        from portal.main import create_app
        from portal.settings import PortalSettings

        app = create_app(PortalSettings())
        client = AsyncMongoClient(mongo_url, tz_aware=True)
        db = client[f"{namespace}_portal"]
        try:
            # start the app first so its indexes exist while loading: SecantusDB builds an
            # index over existing data far slower than it maintains one during inserts
            async with app.router.lifespan_context(app):
                rows, messages = make_requests(args.requests, args.mine)
                t = time.perf_counter()
                for i in range(0, len(rows), 2000):
                    await db["requests"].insert_many(rows[i:i + 2000])
                await db["messages"].insert_many(messages)
                load_s = time.perf_counter() - t
                print(f"loaded {len(rows):,} requests ({args.mine} of them {ME}'s, with "
                      f"{len(messages)} messages) into the indexed read model in {load_s:.1f}s")
                for rev, s in enumerate(demo_services(), start=1):
                    await db["catalog"].insert_one({
                        "_id": s.id, "revision": rev,
                        "definition": s.model_dump(mode="json", by_alias=True)})
                await db["sessions"].insert_one({
                    "_id": token_hash("bench-session"), "email": ME, "csrf": "x",
                    "created_at": datetime.now(UTC),
                    "expires_at": datetime.now(UTC) + timedelta(hours=2)})
                mine = [r for r in rows if r["requester_email"] == ME]
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://portal",
                                             cookies={"desk_portal_session": "bench-session"}) as http:
                    await report(http, db, mine, args)
        finally:
            for name in await client.list_database_names():
                if name.startswith(namespace):
                    await client.drop_database(name)
            await client.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process (app + client + generated data): {peak:.0f} MiB")


async def report(http: httpx.AsyncClient, db, mine: list[dict], args: argparse.Namespace
                 ) -> None:
    from desk_runtime.sessions import token_hash

    rnd = random.Random(1)
    session_id = token_hash("bench-session")
    page_size = 50
    listed = {"number": 1, "title": 1, "service_id": 1, "status_category": 1,
              "customer_status": 1, "last_activity_at": 1, "requester_email": 1}

    async def home_page():
        r = await http.get("/")
        assert r.status_code == 200 and "SD-" in r.text, r.status_code

    async def home_raw():
        # what the page reads: session, catalog, open and closed page, pending submissions
        await db["sessions"].find_one({"_id": session_id})
        [d async for d in db["catalog"].find({})]
        for closed in (False, True):
            q = {"requester_email": ME, "status_category": "done" if closed else {
                "$in": ["queued", "in_progress", "waiting_for_customer", "paused"]}}
            [d async for d in db["requests"].find(q, listed).sort("last_activity_at", -1)
             .limit(page_size + 1)]
        [d async for d in db["submissions"].find({"email": ME}).limit(50)]

    async def request_page():
        card = rnd.choice(mine)
        r = await http.get(f"/requests/{card['_id']}")
        assert r.status_code == 200 and card["number"] in r.text, r.status_code

    async def request_raw():
        card = rnd.choice(mine)
        await db["sessions"].find_one({"_id": session_id})
        await db["requests"].find_one({"_id": card["_id"]})
        [d async for d in db["messages"].find({"card_id": card["_id"]}).sort("created_at", 1)]
        [d async for d in db["submissions"].find({"card_id": card["_id"], "kind": "reply"})]
        [d async for d in db["requests"].find({"requester_email": ME,
                                               "parent_id": card["_id"]})]
        await db["ratings"].find_one({"_id": card["_id"]})

    r = await http.get("/")
    print(f"home page: {len(r.content) / 1024:.0f} KiB of HTML, "
          f"{r.text.count('<tr>') - 2} request rows shown (50 open + 50 closed per page)")
    print(f"\n{args.n} sequential requests each, then {args.n} over {args.concurrency} "
          f"concurrent clients\n")
    head = (f"{'page':22} | {'portal p50':>10} {'p99':>8} {'req/s':>7} | "
            f"{'store p50':>9} {'p99':>8} {'q/s':>7} | overhead p50")
    print(head)
    print("-" * len(head))
    for name, page, raw in (("GET / (home)", home_page, home_raw),
                            ("GET /requests/{id}", request_page, request_raw)):
        for _ in range(10):  # warm up caches and connections
            await page()
            await raw()
        lat, rps = await timed(page, args.n, args.concurrency)
        raw_lat, raw_rps = await timed(raw, args.n, args.concurrency)
        print(f"{name:22} | {pct(lat, 50):8.1f}ms {pct(lat, 99):6.1f}ms {rps:7.0f} | "
              f"{pct(raw_lat, 50):7.1f}ms {pct(raw_lat, 99):6.1f}ms {raw_rps:7.0f} | "
              f"{pct(lat, 50) - pct(raw_lat, 50):+.1f}ms")
    plan = await db["requests"].find(
        {"requester_email": ME, "status_category": {
            "$in": ["queued", "in_progress", "waiting_for_customer", "paused"]}}
    ).sort("last_activity_at", -1).limit(51).explain()
    stats = plan.get("executionStats", {})
    stage = plan.get("queryPlanner", {}).get("winningPlan", {})
    index = "-"
    while stage:
        index = stage.get("indexName", index)
        stage = stage.get("inputStage")
    print(f"\nhome list query plan: index {index}, keys examined "
          f"{stats.get('totalKeysExamined', '?')}, docs examined "
          f"{stats.get('totalDocsExamined', '?')}, returned {stats.get('nReturned', '?')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--mine", type=int, default=200)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
