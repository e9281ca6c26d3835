"""Keyset pagination over time windows returns exactly what one plain query would, in order."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from boards.domain.cards import search_terms, sort_key
from boards.repository import UNASSIGNED, CardListSpec, CardRepository
from pymongo import AsyncMongoClient


@pytest.fixture
async def db(mongo_url):
    client = AsyncMongoClient(mongo_url, tz_aware=True)
    name = f"boardslist{uuid.uuid4().hex[:8]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest.fixture
async def repo(db):
    repo = CardRepository(db)
    await repo.ensure_indexes()
    return repo


def cards(n: int) -> list[dict]:
    """Cards in bursts and long gaps (minutes to weeks apart), some at the same instant."""
    rnd = random.Random(7)
    at = datetime(2025, 6, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        at += rnd.choice([timedelta(0), timedelta(seconds=5), timedelta(minutes=3),
                          timedelta(hours=5), timedelta(days=9)])
        card_id = str(uuid.uuid4())
        card = {"_id": card_id, "number": f"SD-{i}", "title": rnd.choice(
                    ["vpn down", "printer jam", "mail sync", "vpn slow"]),
                "board_id": rnd.choice(["a", "b"]), "lane_id": rnd.choice(["l1", "l2"]),
                "priority": rnd.choice(["low", "high"]),
                "assignee_id": rnd.choice(["ann", "bob", None]),
                "created_at": at, "sort_key": sort_key(at, card_id),
                # what every stored card has besides (the list reads whole cards)
                "version": 1, "column_id": "queue", "status_category": "queued",
                "channel": "email", "updated_at": at}
        card["search_terms"] = search_terms(card)
        out.append(card)
    return out


async def walk(repo: CardRepository, limit: int, **kw) -> list[str]:
    seen, after = [], None
    while True:
        page = await repo.list_cards(CardListSpec.build(after=after, **kw), limit + 1)
        seen += [c.id for c in page[:limit]]
        if len(page) <= limit:
            return seen
        after = page[limit - 1].sort_key


async def test_window_walk_equals_plain_query(repo, db):
    made = cards(300)
    await db.cards.insert_many(made)
    for c in made:
        await repo.note_card_time(c["sort_key"])
    newest_first = sorted(made, key=lambda c: c["sort_key"], reverse=True)
    cases = [
        ({"boards": "a"}, lambda c: c["board_id"] == "a"),
        ({"boards": ["a", "b"], "lane_id": "l2", "priority": "high"},
         lambda c: c["lane_id"] == "l2" and c["priority"] == "high"),
        ({"boards": ["a", "b"], "assignee_id": UNASSIGNED}, lambda c: c["assignee_id"] is None),
        ({"boards": "b", "terms": ["vpn", "slow"]},
         lambda c: c["board_id"] == "b" and c["title"] == "vpn slow"),
    ]
    for kw, keep in cases:
        expected = [c["_id"] for c in newest_first if keep(c)]
        assert expected, kw
        for limit in (6, 50):
            assert await walk(repo, limit, **kw) == expected, (kw, limit)
    assert await walk(repo, 10, boards="a", lane_id="nowhere") == []
