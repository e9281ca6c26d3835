"""The read model's row loading gives the same rows whichever way it reads them; a card's
creation written unread keeps one row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from boards.stats import repository
from boards.stats.repository import CARDS, RATINGS, VERSIONS, StatsRepository
from desk_contracts.events import CardSnapshot, Person
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError


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


async def test_a_cards_creation_written_unread_fails_on_a_copy_and_the_careful_path_keeps_one(
        mongo_url):
    # card.created's first delivery inserts the rows without reading; a copy of the event
    # under another id fails on the duplicate key (its transaction aborts, the runtime
    # redelivers it) and the redelivery's careful path leaves the rows as they are
    client = AsyncMongoClient(mongo_url, tz_aware=True)
    db = client[f"t{uuid.uuid4().hex[:10]}_stats"]
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    card = CardSnapshot(card_id="c1", number="SD-1", version=1, title="Printer",
                        service_id="problem", board_id="support", column_id="new",
                        lane_id="problem", status_category="queued", customer_status="Open",
                        priority="medium", requester=Person(email="c@acme.example"),
                        channel="portal", created_at=at, updated_at=at)
    try:
        repo = StatsRepository(db)
        await repo.ensure_indexes()
        change = await repo.apply_snapshot(card, "default", at=at, new=True, follow_up_of="c0")
        assert change is not None and change.previous is None
        with pytest.raises(DuplicateKeyError):
            await repo.apply_snapshot(card, "default", at=at, new=True, follow_up_of="c0")
        assert await repo.apply_snapshot(card, "default", at=at, follow_up_of="c0") is None
        rows = await db[CARDS].find().to_list(None)
        assert [(r["_id"], r["version"], r["follow_up_of"]) for r in rows] == [("c1", 1, "c0")]
        assert await db[VERSIONS].count_documents({}) == 1
    finally:
        await client.drop_database(db.name)
        await client.close()
