"""Intake's thread map keeps the newest card status whatever order card events come in."""

from __future__ import annotations

import uuid

from pymongo import AsyncMongoClient

from intake.repository.threads import ThreadRecords


async def test_only_a_newer_card_version_replaces_the_status(mongo_url):
    client = AsyncMongoClient(mongo_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_intake"]
    repo = ThreadRecords(db)
    try:
        await db["threads"].insert_one({"_id": "c1", "status": "new"})  # no version yet
        async with client.start_session() as s:
            await repo.record_card_moved("c1", {"status": "in progress"}, 3, s)
            await repo.record_card_moved("c1", {"status": "stale"}, 2, s)  # older: ignored
            await repo.record_card_moved("c1", {"status": "stale too"}, 3, s)  # same: ignored
        doc = await db["threads"].find_one({"_id": "c1"})
        assert (doc["status"], doc["version"]) == ("in progress", 3)
        async with client.start_session() as s:
            await repo.record_card_moved("c1", {"status": "done"}, 4, s)
        doc = await db["threads"].find_one({"_id": "c1"})
        assert (doc["status"], doc["version"]) == ("done", 4)
    finally:
        await client.drop_database(db.name)
        await client.close()
