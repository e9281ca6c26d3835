"""Portal's store: the read model of each customer's requests, their public conversation and
the catalog (from events), plus what the portal owns itself: sign-in attempts, sessions,
rate-limit marks, submissions awaiting their card, ratings, notification preferences and
the access configuration (sign-in allowlist, customer groups)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from desk_contracts.access import AddressSet
from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import CardSnapshot
from desk_runtime.catalog_copy import CatalogCopy
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError
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
        self.submissions = db["submissions"]
        self.ratings = db["ratings"]
        self.preferences = db["preferences"]
        self.rate_limits = db["rate_limits"]
        self.access_config = db["access_config"]

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
        # one document per limited key, its marks of the last hour; idle keys disappear
        await self.rate_limits.create_index("touched_at", expireAfterSeconds=2 * 3600)
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

    # ---- rate limits -------------------------------------------------------------------

    async def take_slot(self, key: str, limit: int, mark: str, now: datetime,
                        since: datetime) -> bool:
        """Take one of `limit` slots of `key` within the window; False when none is free.

        One document per key holds its marks; the push only matches while fewer than
        `limit` marks are there, and single-document updates are atomic, so parallel
        requests can neither overrun the limit nor lock each other out.
        """
        await self.rate_limits.update_one({"_id": key},
                                          {"$pull": {"marks": {"at": {"$lte": since}}}})
        try:
            await self.rate_limits.update_one(
                {"_id": key, f"marks.{max(limit, 1) - 1}": {"$exists": False}},
                {"$push": {"marks": {"at": now, "id": mark}}, "$set": {"touched_at": now}},
                upsert=True)
        except DuplicateKeyError:  # the key exists and its slots are all taken
            return False
        return limit > 0

    async def release_slot(self, key: str, mark: str) -> None:
        """A refused request gives back what it took: refusals never count."""
        await self.rate_limits.update_one({"_id": key}, {"$pull": {"marks": {"id": mark}}})

    # ---- access configuration ----------------------------------------------------------

    async def access_doc(self, session: AsyncClientSession | None = None) -> dict | None:
        return await self.access_config.find_one({"_id": "current"}, session=session)

    async def seed_access(self, allow: AddressSet, groups: dict[str, AddressSet], now: datetime,
                          session: AsyncClientSession) -> None:
        """Store the first configuration (DuplicateKeyError when one is already stored)."""
        await self.access_config.insert_one(
            {"_id": "current", "revision": 1, "changed_at": now,
             "allow": allow.model_dump(mode="json"),
             "groups": {k: v.model_dump(mode="json") for k, v in groups.items()}},
            session=session)

    async def change_access(self, revision: int, changes: dict[str, Any], now: datetime,
                            session: AsyncClientSession) -> dict | None:
        """Apply `$set`/`$unset` changes to the stored revision `revision` (None if it moved on)."""
        update: dict[str, Any] = {"$inc": {"revision": 1},
                                  "$set": {"changed_at": now, **changes.get("$set", {})}}
        if changes.get("$unset"):
            update["$unset"] = changes["$unset"]
        return await self.access_config.find_one_and_update(
            {"_id": "current", "revision": revision}, update,
            return_document=ReturnDocument.AFTER, session=session)
