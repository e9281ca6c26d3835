"""Telegram's records: dialogs in progress, updates already handled, the polling offset and
the outbox of messages the bot owes a user after a bus event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError
from pymongo.asynchronous.client_session import AsyncClientSession

from desk_runtime.lease import Lease, LeaseLost, fence_update, fenced_filter

from intake.repository.base import Store

UPDATES_KEPT_SECONDS = 7 * 86400


class TelegramRecords(Store):
    async def ensure_telegram_indexes(self) -> None:
        await self._telegram_updates.create_index("at", expireAfterSeconds=UPDATES_KEPT_SECONDS)
        await self._telegram_outbox.create_index([("sent", 1), ("created_at", 1)])

    # -- dialogs ----------------------------------------------------------------------------

    async def dialog(self, chat_id: int) -> dict[str, Any] | None:
        return await self._dialogs.find_one({"_id": chat_id})

    async def save_dialog(self, doc: dict[str, Any]) -> None:
        await self._dialogs.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def drop_dialog(self, chat_id: int, session: AsyncClientSession | None = None) -> None:
        await self._dialogs.delete_one({"_id": chat_id}, session=session)

    # -- updates ----------------------------------------------------------------------------

    async def update_done(self, update_id: int) -> bool:
        return await self._telegram_updates.find_one({"_id": update_id, "done": True}) is not None

    async def remember_update(self, update_id: int, at: datetime) -> None:
        """This update is handled: a redelivery of it is skipped."""
        await self._telegram_updates.update_one({"_id": update_id},
                                                {"$set": {"done": True, "at": at}}, upsert=True)

    async def update_failed(self, update_id: Any, update: dict[str, Any], error: str,
                            at: datetime) -> int:
        """Count a failed attempt at an update; how many there have been."""
        doc = await self._telegram_updates.find_one_and_update(
            {"_id": update_id},
            {"$inc": {"attempts": 1}, "$set": {"error": error, "update": update, "at": at}},
            upsert=True, return_document=ReturnDocument.AFTER)
        return (doc or {}).get("attempts", 0)

    async def give_up_update(self, update_id: Any) -> None:
        await self._telegram_updates.update_one({"_id": update_id},
                                                {"$set": {"done": True, "failed": True}})

    async def polling_offset(self) -> int | None:
        doc = await self._telegram_state.find_one({"_id": "polling"}) or {}
        return doc.get("offset") or None

    async def save_polling_offset(self, offset: int, lease: Lease | None = None) -> None:
        """Where the next long poll starts; under the poller's lease, fenced by its token."""
        if lease is None:
            await self._telegram_state.update_one({"_id": "polling"},
                                                  {"$set": {"offset": offset}}, upsert=True)
            return
        try:
            result = await self._telegram_state.update_one(
                fenced_filter({"_id": "polling"}, lease),
                fence_update({"$set": {"offset": offset}}, lease), upsert=True)
        except DuplicateKeyError:  # the record exists, written under a greater token
            raise LeaseLost("the Telegram polling offset is written under a newer lease") from None
        if result.matched_count == 0 and result.upserted_id is None:
            raise LeaseLost("the Telegram polling offset is written under a newer lease")

    # -- the bot's configuration (set on the admin pages; the environment seeds it) --------

    async def telegram_bot(self) -> dict[str, Any] | None:
        return await self._telegram_state.find_one({"_id": "bot"})

    async def save_telegram_bot(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Store the bot's settings with a growing revision (replicas compare it)."""
        return await self._telegram_state.find_one_and_update(
            {"_id": "bot"}, {"$set": fields, "$inc": {"revision": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)

    # -- outbox -----------------------------------------------------------------------------

    async def queue_telegram_message(self, key: str, *, chat_id: int, text: str,
                                     card_id: str | None, created_at: datetime,
                                     session: AsyncClientSession) -> None:
        """Owe `chat_id` a message, once per key (a redelivered event queues nothing more)."""
        await self._telegram_outbox.update_one(
            {"_id": key},
            {"$setOnInsert": {"chat_id": chat_id, "card_id": card_id, "sent": False,
                              "created_at": created_at, "text": text}},
            upsert=True, session=session)

    async def claim_telegram_outbox(self, limit: int) -> list[dict[str, Any]]:
        """The oldest messages not sent yet."""
        return [item async for item in self._telegram_outbox.find({"sent": False})
                .sort("created_at", 1).limit(limit)]

    async def claim_telegram_message(self, key: str, lease: Lease) -> bool:
        """Take an unsent message for the sender holding `lease`: False when it was sent or a
        sender with a newer lease took it (a paused old sender then leaves it alone)."""
        result = await self._telegram_outbox.update_one(
            fenced_filter({"_id": key, "sent": False}, lease),
            fence_update({"$set": {"claimed_at": datetime.now(UTC)}}, lease))
        return result.matched_count == 1

    async def telegram_message_sent(self, key: str, message_id: int) -> None:
        await self._telegram_outbox.update_one(
            {"_id": key}, {"$set": {"sent": True, "message_id": message_id}})
