"""The read model's row loading gives the same rows whichever way it reads them."""

from __future__ import annotations

import uuid

from boards.stats import repository
from boards.stats.repository import RATINGS, StatsRepository
from pymongo import AsyncMongoClient


async def test_rows_by_card_are_the_same_by_index_batches_or_one_pass(mongo_url, monkeypatch):
    client = AsyncMongoClient(mongo_url, tz_aware=True)
    db = client[f"t{uuid.uuid4().hex[:10]}_stats"]
    try:
        cards = [f"card-{i:03}" for i in range(120)]
        await db[RATINGS].insert_many([{"_id": f"{c}:{n}", "card_id": c, "rating": n}
                                       for c in cards for n in (1, 2)])
        repo = StatsRepository(db)
        await repo.ensure_indexes()
        monkeypatch.setattr(repository, "IN_BATCH", 7)  # several batches, one partial
        few = cards[3:20]  # 17 cards of 120: index lookups in batches
        rows = await repo.ratings(few)
        assert sorted(r["_id"] for r in rows) == sorted(f"{c}:{n}" for c in few for n in (1, 2))
        most = cards[:100]  # most of the collection: one pass
        rows = await repo.ratings(most)
        assert sorted(r["_id"] for r in rows) == sorted(f"{c}:{n}" for c in most for n in (1, 2))
        assert await repo.ratings([]) == []
    finally:
        await client.drop_database(db.name)
        await client.close()
