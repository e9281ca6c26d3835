"""Portal's read model: each customer's requests, their public conversation, the catalog."""

from __future__ import annotations

from typing import Any

from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import CardSnapshot
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase


class PortalRepository:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.catalog = db["catalog"]
        self.requests = db["requests"]
        self.messages = db["messages"]

    async def ensure_indexes(self) -> None:
        await self.requests.create_index([("requester_email", ASCENDING),
                                          ("last_activity_at", DESCENDING)])
        await self.requests.create_index("number", unique=True)
        await self.messages.create_index([("card_id", ASCENDING), ("created_at", ASCENDING)])

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

    async def apply_card(self, card: CardSnapshot, session: AsyncClientSession) -> None:
        """Upsert the customer's view of a card; an older version never overwrites a newer."""
        doc: dict[str, Any] = {
            "number": card.number,
            "version": card.version,
            "title": card.title,
            "service_id": card.service_id,
            "status_category": card.status_category.value,
            "customer_status": card.customer_status,
            "requester_email": (card.requester.email or "").lower() if card.requester else None,
            "telegram_user_id": card.requester.telegram_user_id if card.requester else None,
            "organisation": card.requester.organisation if card.requester else None,
            "channel": card.channel,
            "fields": card.customer_fields,
            "parent_id": card.parent_id,
            "created_at": card.created_at,
            "updated_at": card.updated_at,
        }
        current = await self.requests.find_one({"_id": card.card_id}, {"version": 1},
                                               session=session)
        if current is not None and current["version"] >= card.version:
            return
        await self.requests.update_one(
            {"_id": card.card_id},
            {"$set": doc, "$max": {"last_activity_at": card.updated_at}},
            upsert=True, session=session,
        )
