"""Card numbers: every caller gets its own, also when many take one at the same moment."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from boards.repository import CardRepository
from pymongo import AsyncMongoClient


@pytest.fixture
async def repo(mongo_url):
    clients = [AsyncMongoClient(mongo_url, tz_aware=True) for _ in range(8)]
    name = f"boardsnum{uuid.uuid4().hex[:8]}"
    yield [CardRepository(c[name]) for c in clients]
    await clients[0].drop_database(name)
    for c in clients:
        await c.close()


async def test_concurrent_callers_each_get_their_own_number(repo):
    """Eight connections take 1,600 numbers of one counter at once. The embedded store now
    and then answers one of such racing findAndModify with no document (though it counted
    it); each caller must still get a number, none twice."""
    async def take(r: CardRepository) -> list[int]:
        return [await r.next_counter("card-number:SD") for _ in range(200)]

    got = [n for numbers in await asyncio.gather(*(take(r) for r in repo)) for n in numbers]
    assert len(got) == 1600
    assert len(set(got)) == len(got)
    assert all(isinstance(n, int) and n >= 1 for n in got)
