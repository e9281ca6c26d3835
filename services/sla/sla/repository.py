"""SLA's store: its catalog copy (service → policy), policies, calendars, per-card SLA state."""

from __future__ import annotations

from desk_contracts.catalog import ServiceDefinition
from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase


class SlaRepository:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.catalog = db["catalog"]
        self.policies = db["policies"]
        self.calendars = db["calendars"]
        self.cards = db["card_sla"]

    async def ensure_indexes(self) -> None:
        await self.cards.create_index([("next_due_at", ASCENDING)], sparse=True)
        await self.cards.create_index("number")

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
