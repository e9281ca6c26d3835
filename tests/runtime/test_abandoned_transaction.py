"""A transaction that runs out of time does not stay open in the store.

When the store is slow, a transaction's time limit can run out after its writes and before
its commit. The driver's own abort is sent within the same limit, so it never leaves, and
the store keeps the transaction — and the documents it wrote, locked against every other
writer — until its reaper ends it (60 s idle on MongoDB and SecantusDB; the tests' store
10 s). `desk_runtime.mongo.in_transaction` ends it at once; these tests write the same
document right after and must not wait.
"""

from __future__ import annotations

import asyncio
import uuid

import pymongo
import pytest
from pymongo import AsyncMongoClient

from desk_runtime.mongo import in_transaction

LIMIT = 0.5  # the transaction's time limit
PROMPT = 3.0  # far below the store's 10 s reaper: a write blocked by the old one fails


@pytest.fixture
async def client(mongo_url):
    client = AsyncMongoClient(mongo_url, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture
async def db(client):
    name = f"t{uuid.uuid4().hex[:10]}_abandon"
    yield client[name]
    await client.drop_database(name)


async def test_a_transaction_out_of_time_does_not_keep_its_writes_locked(client, db):
    await db.docs.insert_one({"_id": "x", "n": 0})

    async def slow(session) -> None:
        await db.docs.update_one({"_id": "x"}, {"$inc": {"n": 1}}, session=session)
        await asyncio.sleep(LIMIT * 2)  # the store is slow: the limit runs out here

    with pytest.raises(pymongo.errors.PyMongoError):
        await in_transaction(client, slow, seconds=LIMIT)

    # another writer (and the retry of the same work) goes through at once
    with pymongo.timeout(PROMPT):
        await db.docs.update_one({"_id": "x"}, {"$inc": {"n": 10}})
    assert (await db.docs.find_one({"_id": "x"}))["n"] == 10  # the timed-out +1 never landed

    async def quick(session) -> None:
        await db.docs.update_one({"_id": "x"}, {"$inc": {"n": 1}}, session=session)

    with pymongo.timeout(PROMPT):
        await in_transaction(client, quick, seconds=PROMPT)
    assert (await db.docs.find_one({"_id": "x"}))["n"] == 11


async def test_a_failed_handler_leaves_nothing_open_and_the_client_goes_on(client, db):
    """A refusal inside the work (the usual failure) aborts as before; the next
    transactions, on fresh sessions, work."""
    await db.docs.insert_one({"_id": "y", "n": 0})

    async def refuses(session) -> None:
        await db.docs.update_one({"_id": "y"}, {"$inc": {"n": 1}}, session=session)
        raise ValueError("refused")

    with pytest.raises(ValueError):
        await in_transaction(client, refuses, seconds=PROMPT)

    async def counts(session) -> None:
        await db.docs.update_one({"_id": "y"}, {"$inc": {"n": 1}}, session=session)

    with pymongo.timeout(PROMPT):
        for _ in range(3):
            await in_transaction(client, counts, seconds=PROMPT)
    assert (await db.docs.find_one({"_id": "y"}))["n"] == 3
