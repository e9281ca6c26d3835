"""Portal's store: the read model of each customer's requests, their public conversation and
the catalog (from events), plus what the portal owns itself: sign-in attempts, sessions,
rate-limit marks, submissions awaiting their card, ratings and notification preferences."""

from __future__ import annotations

from typing import Any

from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import CardSnapshot
from desk_runtime.catalog_copy import CatalogCopy
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase


class PortalRepository:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.catalog_copy = CatalogCopy(db)
        self.requests = db["requests"]
        self.messages = db["messages"]
        self.attempts = db["login_attempts"]
        self.sessions = db["sessions"]
        self.rate_marks = db["rate_marks"]
        self.submissions = db["submissions"]
        self.ratings = db["ratings"]
        self.preferences = db["preferences"]

    async def ensure_indexes(self) -> None:
        # the home page: one customer's open or closed requests, newest activity first
        await self.requests.create_index([("requester_email", ASCENDING),
                                          ("status_category", ASCENDING),
                                          ("last_activity_at", DESCENDING)])
        await self.requests.create_index("number", unique=True)
        await self.messages.create_index([("card_id", ASCENDING), ("created_at", ASCENDING)])
        await self.requests.create_index([("organisation", ASCENDING),
                                          ("status_category", ASCENDING),
                                          ("last_activity_at", DESCENDING)])
        await self.requests.create_index([("requester_domain", ASCENDING),
                                          ("status_category", ASCENDING),
                                          ("last_activity_at", DESCENDING)])
        await self.requests.create_index("request_id")
        await self.requests.create_index("parent_id")
        await self.messages.create_index("reply_id", sparse=True)
        # expired attempts and sessions disappear by themselves
        await self.attempts.create_index("expires_at", expireAfterSeconds=3600)
        await self.sessions.create_index("expires_at", expireAfterSeconds=0)
        await self.rate_marks.create_index([("key", ASCENDING), ("at", ASCENDING)])
        await self.rate_marks.create_index("at", expireAfterSeconds=2 * 3600)
        await self.submissions.create_index([("email", ASCENDING), ("created_at", DESCENDING)])

    async def upsert_service(self, service: ServiceDefinition, revision: int,
                             session: AsyncClientSession) -> None:
        await self.catalog_copy.upsert(service, revision, session)

    async def apply_card(self, card: CardSnapshot, session: AsyncClientSession) -> None:
        """Upsert the customer's view of a card; an older version never overwrites a newer."""
        email = (card.requester.email or "").lower() or None if card.requester else None
        doc: dict[str, Any] = {
            "card_id": card.card_id,  # also the _id; kept as a field for readers' queries
            "number": card.number,
            "version": card.version,
            "title": card.title,
            "service_id": card.service_id,
            "status_category": card.status_category.value,
            "customer_status": card.customer_status,
            "requester_email": email,
            "requester_domain": email.rsplit("@", 1)[-1] if email else None,
            "request_id": card.request_id,
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

    async def apply_rating(self, card_id: str, rating: int, comment: str | None, rated_at: Any,
                           session: AsyncClientSession | None = None) -> None:
        """Keep the latest rating of a card (from the portal itself or from Telegram)."""
        current = await self.ratings.find_one({"_id": card_id}, session=session)
        if current is not None and current["rated_at"] > rated_at:
            return
        await self.ratings.replace_one(
            {"_id": card_id},
            {"_id": card_id, "rating": rating, "comment": comment, "rated_at": rated_at},
            upsert=True, session=session)
