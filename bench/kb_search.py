"""Knowledge-base search over 10,000 articles: the search next to the raw store query.

    python bench/kb_search.py [--articles 10000] [--requests 50]

Starts a fresh SecantusDB (as tests/support/infra.py does), stores N articles (ru and en,
shaped exactly as boards writes them: `Article.document()`, through the knowledge base's
repository and its indexes), then for several queries prints p50/p99 of the whole search
a reader gets (`boards.kb.application.search_articles`: the lookup, ranking, the page of
hits read by id, highlights) next to the one store query it is built on (the same
`keys $in [...]` lookup with the reader's audiences, sent straight with PyMongo), with
how many candidates the lookup returned and whether `explain` used the index.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import AsyncMongoClient  # noqa: E402

from bench.common import pct  # noqa: E402
from tests.support.infra import mongo_server  # noqa: E402

EN = ("printer paper jam tray toner cartridge laptop battery charger vpn gateway client "
      "password reset account mailbox quota calendar invite meeting room badge office wifi "
      "network cable monitor display flicker license renewal invoice payment contract "
      "template backup restore phone headset keyboard mouse update install driver").split()
RU = ("принтер бумага лоток картридж ноутбук батарея зарядка шлюз клиент пароль сброс "
      "учётная запись почта ящик календарь встреча переговорная пропуск офис сеть кабель "
      "монитор экран лицензия продление счёт оплата договор шаблон копия восстановление "
      "телефон гарнитура клавиатура мышь обновление установка драйвер отпуск заявление").split()
QUERIES = ["printer jam", "reset password", "vpn", "monitor flicker display", "lap",
           "принтер", "сбросить пароль", "ноутбуки", "прин", "договор шаблон"]
GROUPS = ["legal", "finance", "it"]


def make_articles(n: int, seed: int = 7) -> list[tuple[dict, dict]]:
    from boards.kb.domain import Article, Draft

    rnd = random.Random(seed)
    out = []
    at = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(n):
        words = RU if i % 2 else EN
        title = " ".join(rnd.sample(words, 4)).capitalize()
        body = "\n\n".join(" ".join(rnd.choices(words, k=30)) + "." for _ in range(3))
        vis = rnd.choices(["public", "groups", "agents"], weights=[70, 20, 10])[0]
        draft = Draft(title=title, body=body, language="ru" if i % 2 else "en",
                      categories=(rnd.choice(["problem", "access", "question"]),),
                      visibility=vis, groups=(rnd.choice(GROUPS),) if vis == "groups" else (),
                      status="published" if rnd.random() < 0.9 else "draft")
        article = Article.new(draft, by="bench", at=at)
        out.append((article.document(), article.version_document()))
    return out


async def run(args: argparse.Namespace) -> None:
    from boards.kb import application, search
    from boards.kb.domain import reader_audiences
    from boards.kb.repository import RANKING_FIELDS, KnowledgeBaseRepository

    with mongo_server() as url:
        client = AsyncMongoClient(url, tz_aware=True)
        db = client[f"bench_kb_{int(time.time())}"]
        repo = KnowledgeBaseRepository(db)
        await repo.ensure_indexes()
        started = time.monotonic()
        docs = make_articles(args.articles)
        for i in range(0, len(docs), 500):
            chunk = docs[i:i + 500]
            await db.kb_articles.insert_many([d for d, _ in chunk])
            await db.kb_versions.insert_many([v for _, v in chunk])
        keys = sum(len(d["keys"]) for d, _ in docs) / len(docs)
        print(f"stored {len(docs)} articles in {time.monotonic() - started:.1f} s "
              f"({keys:.0f} lookup keys per article on average)")
        audiences = reader_audiences(signed_in=True, groups=["legal"])
        print(f"reader: a signed-in customer of group 'legal' (audiences {audiences}); "
              f"{args.requests} requests per query, one at a time")
        print(f"{'query':28} {'cands':>6} {'hits':>5} {'search p50':>11} {'p99':>8} "
              f"{'raw p50':>9} {'p99':>8}  index")
        for text in QUERIES:
            query = search.Query.parse(text)
            flt = {"keys": {"$in": query.keys()}, "audience": {"$in": audiences}}
            full, raw = [], []
            hits = 0
            cands = 0
            for _ in range(args.requests):
                t = time.perf_counter()
                found = await application.search_articles(repo, text, audiences=audiences,
                                                          limit=10)
                full.append(time.perf_counter() - t)
                hits = len(found)
                t = time.perf_counter()
                cands = len([d async for d in db.kb_articles.find(flt, RANKING_FIELDS)])
                raw.append(time.perf_counter() - t)
            plan = await db.kb_articles.find(flt).explain()
            stage = str(plan.get("queryPlanner", {}).get("winningPlan", {}))
            used = "IXSCAN" if "IXSCAN" in stage else "COLLSCAN"
            print(f"{text:28} {cands:>6} {hits:>5} {pct(full, 50) * 1000:>9.1f}ms "
                  f"{pct(full, 99) * 1000:>6.1f}ms {pct(raw, 50) * 1000:>7.1f}ms "
                  f"{pct(raw, 99) * 1000:>6.1f}ms  {used}")
        await client.drop_database(db.name)
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
