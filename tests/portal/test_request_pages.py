"""An organisation member's request list: the union of indexed queries, paged as one list."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pymongo import AsyncMongoClient

from portal.repository import PortalRepository


async def test_pages_of_an_organisations_requests_are_newest_first_without_gaps(mongo_url):
    client = AsyncMongoClient(mongo_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_portal"]
    repo = PortalRepository(db)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    docs = []
    for i in range(11):  # anna's and bob's requests, interleaved in time, one closed
        who = "anna@acme.com" if i % 2 else "bob@acme.com"
        docs.append({"_id": f"c{i}", "number": f"SD-{i}", "title": f"T{i}",
                     "requester_email": who, "requester_domain": "acme.com",
                     "status_category": "done" if i == 4 else "queued",
                     "last_activity_at": start + timedelta(hours=i)})
    docs.append({"_id": "x", "number": "SD-99", "title": "other", "status_category": "queued",
                 "requester_email": "eve@other.com", "requester_domain": "other.com",
                 "last_activity_at": start + timedelta(hours=50)})
    await db["requests"].insert_many(docs)
    visible = [{"requester_email": "anna@acme.com"}, {"organisation": "acme"},
               {"requester_domain": {"$in": ["acme.com"]}}]
    try:
        seen, page, more = [], 0, True
        while more:
            rows, more = await repo.requests_of_customer(visible, closed=False, page=page,
                                                         limit=3)
            seen += [r["_id"] for r in rows]
            page += 1
        assert seen == [f"c{i}" for i in (10, 9, 8, 7, 6, 5, 3, 2, 1, 0)]
        assert page == 4
        closed, more = await repo.requests_of_customer(visible, closed=True, page=0, limit=3)
        assert [r["_id"] for r in closed] == ["c4"] and not more
        alone, _ = await repo.requests_of_customer([{"requester_email": "anna@acme.com"}],
                                                   closed=False, page=0, limit=10)
        assert [r["_id"] for r in alone] == ["c9", "c7", "c5", "c3", "c1"]
    finally:
        await client.drop_database(db.name)
        await client.close()
