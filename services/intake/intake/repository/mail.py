"""Inbound mail records (one per message and service, from acceptance to outcome) and the
quarantine of mail that could not become a request or reply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from intake.repository.base import Store


class InboundMailRecords(Store):
    async def record_inbound(self, doc: dict[str, Any]) -> tuple[str, bool]:
        """Store an accepted message once: (record id, whether it was already stored)."""
        try:
            await self._inbound.insert_one(doc)
        except DuplicateKeyError:
            existing = await self._inbound.find_one({"dedupe_key": doc["dedupe_key"]},
                                                    {"_id": 1})
            return (existing["_id"] if existing else "", True)
        return doc["_id"], False

    async def inbound(self, inbound_id: str) -> dict[str, Any] | None:
        return await self._inbound.find_one({"_id": inbound_id})

    async def pending_inbound_ids(self, older_than: datetime, limit: int) -> list[str]:
        """Records still pending since before `older_than` (left by a crash or a failure)."""
        return [d["_id"] async for d in self._inbound.find(
            {"status": "pending", "received_at": {"$lt": older_than}}, {"_id": 1}).limit(limit)]

    async def count_failed_attempt(self, inbound_id: str, error: str) -> dict[str, Any] | None:
        """One more failed attempt on a pending record; the record after it (None if it is
        no longer pending)."""
        return await self._inbound.find_one_and_update(
            {"_id": inbound_id, "status": "pending"},
            {"$inc": {"attempts": 1}, "$set": {"last_error": error}},
            return_document=ReturnDocument.AFTER)

    async def finish_inbound(self, inbound_id: str, outcome: dict[str, Any],
                             session: AsyncClientSession) -> bool:
        """Record a pending message's outcome; False when another worker finished it."""
        result = await self._inbound.update_one({"_id": inbound_id, "status": "pending"},
                                                {"$set": outcome}, session=session)
        return result.modified_count == 1

    async def quarantine_inbound(self, inbound_id: str, outcome: dict[str, Any],
                                 item: dict[str, Any], session: AsyncClientSession) -> bool:
        """Mark a pending message quarantined and keep `item` for the admin; False when
        another worker finished it."""
        if not await self.finish_inbound(inbound_id, {**outcome, "status": "quarantined"},
                                         session):
            return False
        await self._quarantine.insert_one({"_id": inbound_id, **item}, session=session)
        return True

    async def requeue_quarantined(self, inbound_id: str, requeued_at: datetime,
                                  session: AsyncClientSession) -> bool:
        """A quarantined message goes back to pending; False when there is none."""
        result = await self._inbound.update_one(
            {"_id": inbound_id, "status": "quarantined"},
            {"$set": {"status": "pending", "attempts": 0, "requeued_at": requeued_at},
             "$unset": {"reason": "", "detail": ""}}, session=session)
        if result.modified_count != 1:
            return False
        await self._quarantine.delete_one({"_id": inbound_id}, session=session)
        return True

    async def release_held(self, inbound_id: str, trust_sender: bool,
                           session: AsyncClientSession) -> bool:
        """A mail held as `unverified_sender` goes back to pending, marked as accepted by an
        agent (processing then lets it through); False when there is no such held mail."""
        result = await self._inbound.update_one(
            {"_id": inbound_id, "status": "quarantined", "reason": "unverified_sender"},
            {"$set": {"status": "pending", "attempts": 0, "accepted_by": "agent",
                      "trust_sender": trust_sender},
             "$unset": {"reason": "", "detail": ""}}, session=session)
        if result.modified_count != 1:
            return False
        await self._quarantine.delete_one({"_id": inbound_id}, session=session)
        return True

    async def inbound_messages(self, *, message_id: str | None = None, status: str | None = None,
                               raw_sha256: str | None = None, mailbox: str | None = None,
                               limit: int) -> list[dict[str, Any]]:
        """The newest inbound records matching every given filter."""
        query: dict[str, Any] = {}
        if message_id:
            query["message_id"] = message_id
        if status:
            query["status"] = status
        if raw_sha256:
            query["raw_sha256"] = raw_sha256
        if mailbox:
            query["mailbox"] = mailbox
        return [d async for d in
                self._inbound.find(query).sort("received_at", -1).limit(limit)]

    async def quarantined(self, reason: str | None, limit: int) -> list[dict[str, Any]]:
        query = {"reason": reason} if reason else {}
        return [d async for d in self._quarantine.find(query).sort("at", -1).limit(limit)]

    async def quarantined_item(self, item_id: str) -> dict[str, Any] | None:
        return await self._quarantine.find_one({"_id": item_id})
