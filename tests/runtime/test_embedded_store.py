"""The embedded store as the desk runs it (`desk_runtime.embedded_store`; the tests' store
is started through it too): one transaction's long statement does not hold up the others.

Unpatched, SecantusDB's transaction reaper — run on every transactional statement and
commit, holding the store's one transaction-registry lock — waited for each transaction
running a statement, so every other transaction's statements and commits waited for the
longest statement running anywhere (the stalls of `bench/pipeline.py`).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from pymongo import AsyncMongoClient

from desk_runtime.mongo import in_transaction

DOCS = 60_000  # one insert_many of these in a transaction: a statement of seconds here


@pytest.fixture
async def db(mongo_url):
    client = AsyncMongoClient(mongo_url, tz_aware=True)
    name = f"t{uuid.uuid4().hex[:10]}_embedded"
    yield client[name]
    await client.drop_database(name)
    await client.close()


async def test_a_long_statement_in_one_transaction_does_not_hold_up_the_others(db):
    client = db.client
    await db.small.insert_one({"_id": "seed"})
    await db.big.insert_one({"_id": "seed"})
    started = asyncio.Event()
    times: dict[str, float] = {}

    async def long_transaction() -> None:
        # aborted, not committed: under a loaded machine the statement may outlast the
        # tests' store's 10 s transaction lifetime, and the reaper then ends it (rightly)
        async with client.start_session() as session:
            await session.start_transaction()
            await db.big.insert_one({"_id": "first"}, session=session)
            started.set()
            times["long_from"] = time.monotonic()
            await db.big.insert_many([{"_id": i, "pad": "x" * 64} for i in range(DOCS)],
                                     session=session)
            times["long_to"] = time.monotonic()
            await session.abort_transaction()

    task = asyncio.create_task(long_transaction())
    await started.wait()
    await asyncio.sleep(0.3)  # its one long statement is running now

    for k in range(3):
        async def small(session, k=k) -> None:
            await db.small.insert_one({"_id": k}, session=session)

        await in_transaction(client, small, seconds=60)
    times["small_done"] = time.monotonic()
    await task

    long_statement = times["long_to"] - times["long_from"]
    assert long_statement > 1.0, f"the long statement took only {long_statement:.2f} s"
    # the three small transactions finished while the long statement still ran
    assert times["small_done"] < times["long_to"], (
        f"small transactions done {times['small_done'] - times['long_from']:.2f} s in, "
        f"the long statement took {long_statement:.2f} s")
    assert await db.small.count_documents({}) == 4
    assert await db.big.count_documents({}) == 1  # the long transaction left nothing
