"""IMAP mailboxes intake polls, each with the UIDVALIDITY and last UID it has taken in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from intake.repository.base import Store


class MailboxRecords(Store):
    async def mailbox(self, service_id: str) -> dict[str, Any] | None:
        return await self._mailboxes.find_one({"_id": service_id})

    async def mailboxes(self, *, enabled_only: bool = False) -> list[dict[str, Any]]:
        return [d async for d in self._mailboxes.find({"enabled": True} if enabled_only else {})]

    async def save_mailbox(self, doc: dict[str, Any]) -> None:
        await self._mailboxes.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def delete_mailbox(self, service_id: str) -> None:
        await self._mailboxes.delete_one({"_id": service_id})

    async def restart_mailbox(self, service_id: str, uidvalidity: int) -> None:
        """The folder's UIDVALIDITY changed (or is first seen): start from its first UID."""
        await self._mailboxes.update_one({"_id": service_id},
                                         {"$set": {"uidvalidity": uidvalidity, "last_uid": 0}})

    async def advance_mailbox(self, service_id: str, uid: int) -> None:
        await self._mailboxes.update_one({"_id": service_id}, {"$set": {"last_uid": uid}})

    async def mailbox_polled(self, service_id: str, at: datetime,
                             error: str | None = None) -> None:
        await self._mailboxes.update_one({"_id": service_id},
                                         {"$set": {"last_poll_at": at, "last_error": error}})
