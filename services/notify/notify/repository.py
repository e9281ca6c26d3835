"""Notify's store: its catalog copy and the delivery log (one entry per notification)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from desk_contracts.catalog import ServiceDefinition
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase


class NotifyRepository:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.catalog = db["catalog"]
        self.deliveries = db["deliveries"]

    async def ensure_indexes(self) -> None:
        await self.deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.deliveries.create_index("card_id")

    async def service(self, service_id: str | None, session: AsyncClientSession | None = None
                      ) -> ServiceDefinition | None:
        if not service_id:
            return None
        doc = await self.catalog.find_one({"_id": service_id}, session=session)
        return ServiceDefinition.model_validate(doc["definition"]) if doc else None

    async def upsert_service(self, service: ServiceDefinition, revision: int,
                             session: AsyncClientSession) -> None:
        current = await self.catalog.find_one({"_id": service.id}, session=session)
        if current is not None and current["revision"] >= revision:
            return
        await self.catalog.replace_one(
            {"_id": service.id},
            {"_id": service.id, "revision": revision,
             "definition": service.model_dump(mode="json", by_alias=True)},
            upsert=True, session=session,
        )

    async def enqueue(self, delivery: dict[str, Any], session: AsyncClientSession) -> bool:
        """Record a notification to send; False when this very notification exists already."""
        result = await self.deliveries.update_one(
            {"_id": delivery["_id"]}, {"$setOnInsert": delivery}, upsert=True, session=session
        )
        return result.upserted_id is not None

    async def claim_due(self, worker: str, lease: timedelta) -> dict[str, Any] | None:
        now = datetime.now(UTC)
        return await self.deliveries.find_one_and_update(
            {"status": {"$in": ["pending", "retrying"]}, "next_attempt_at": {"$lte": now},
             "$or": [{"claimed_until": None}, {"claimed_until": {"$lt": now}}]},
            {"$set": {"claimed_until": now + lease, "claimed_by": worker},
             "$inc": {"attempts": 1}},
            sort=[("next_attempt_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
