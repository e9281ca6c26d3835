"""The map from cards to what threads onto them: numbers, participants, message keys.

One document per card (`_id` = card id): its number, status snapshot, participants and
every Message-ID received or sent for it (`message_ids`; those we sent also in `sent_ids`),
plus Telegram message keys `tg:<chat>:<message id>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from desk_runtime.unit_of_work import UnitOfWork
from pymongo.asynchronous.client_session import AsyncClientSession

from intake.repository.base import Store


class ThreadRecords(Store):
    async def thread(self, card_id: str) -> dict[str, Any] | None:
        return await self._threads.find_one({"_id": card_id})

    async def thread_by_number(self, number: str) -> dict[str, Any] | None:
        return await self._threads.find_one({"number": number.upper()})

    async def threads_by_number(self, numbers: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Threads by their upper-case number (those that exist)."""
        wanted = sorted({n.upper() for n in numbers})
        if not wanted:
            return {}
        return {th["number"]: th
                async for th in self._threads.find({"number": {"$in": wanted}})}

    async def thread_for_request(self, request_id: str) -> dict[str, Any] | None:
        return await self._threads.find_one({"request_id": request_id})

    async def thread_for_message_ids(self, ids: list[str]) -> dict[str, Any] | None:
        """The card one of these Message-IDs (or Telegram message keys) belongs to."""
        if not ids:
            return None
        return await self._threads.find_one({"message_ids": {"$in": ids}})

    async def sent_by_us(self, message_ids: list[str]) -> bool:
        """One of these Message-IDs is mail we sent about a card."""
        if not message_ids:
            return False
        return await self._threads.find_one({"sent_ids": {"$in": message_ids}},
                                            {"_id": 1}) is not None

    async def threads_of_chat(self, chat_id: int) -> list[dict[str, Any]]:
        return [th async for th in self._threads.find({"requester.telegram_chat_id": chat_id})]

    async def record_card(self, card_id: str, fields: dict[str, Any], *, message_id: str | None,
                          participants: list[str], uow: UnitOfWork,
                          new: bool = False) -> None:
        """A new card: its snapshot, the first mail's Message-ID and who may answer on it.

        `new` (card.created's first delivery): the document is inserted blind, with the
        transaction's other inserts (`uow.insert`). Nothing
        else makes it before: notify's `notification.sent` (`remember_sent`, an upsert)
        follows the card.created it answers into this card's partition, so it can come
        first only after card.created failed a delivery, whose redelivery merges here.
        """
        if new:
            doc: dict[str, Any] = {"_id": card_id, **fields}
            if message_id:
                doc["message_ids"] = [message_id]
            if participants:
                doc["participants"] = list(dict.fromkeys(participants))
            uow.insert(self._threads.name, doc)
            return
        add: dict[str, Any] = {}
        if message_id:
            add["message_ids"] = message_id
        if participants:
            add["participants"] = {"$each": participants}
        update: dict[str, Any] = {"$set": fields}
        if add:
            update["$addToSet"] = add
        await self._threads.update_one({"_id": card_id}, update, upsert=True,
                                       session=uow.session)

    async def record_card_moved(self, card_id: str, fields: dict[str, Any], version: int,
                                session: AsyncClientSession) -> None:
        # only a newer snapshot replaces the status (redelivery may reorder)
        await self._threads.update_one(
            # older or none (`$not`, not `$or`: SecantusDB scans the collection for any `$or`)
            {"_id": card_id, "version": {"$not": {"$gte": version}}},
            {"$set": {**fields, "version": version}}, session=session)

    async def remember_sent(self, card_id: str, key: str, session: AsyncClientSession) -> None:
        """A message notify sent about the card: replies to it thread, and it is ours."""
        await self._threads.update_one(
            {"_id": card_id}, {"$addToSet": {"message_ids": key, "sent_ids": key}},
            upsert=True, session=session)

    async def add_message_key(self, card_id: str, key: str) -> None:
        """A message intake itself sent on the card (replies to it thread onto the card)."""
        await self._threads.update_one({"_id": card_id}, {"$addToSet": {"message_ids": key}})

    async def add_to_thread(self, card_id: str, people: list[str], message_id: str | None,
                            session: AsyncClientSession) -> None:
        """A reply arrived: its author and those they copied join, its Message-ID threads."""
        add: dict[str, Any] = {"participants": {"$each": people}}
        if message_id:
            add["message_ids"] = message_id
        await self._threads.update_one({"_id": card_id}, {"$addToSet": add}, session=session)
