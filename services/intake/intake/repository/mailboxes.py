"""IMAP mailboxes intake polls, each with the UIDVALIDITY and last UID it has taken in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from desk_runtime.lease import Lease, LeaseLost, fence_update, fenced_filter

from intake.repository.base import Store


def _fenced(service_id: str, update: dict[str, Any], lease: Lease | None
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The write, fenced by `lease` when one is given (a poller's; an admin's is not)."""
    if lease is None:
        return {"_id": service_id}, update
    return fenced_filter({"_id": service_id}, lease), fence_update(update, lease)


class MailboxRecords(Store):
    async def mailbox(self, service_id: str) -> dict[str, Any] | None:
        return await self._mailboxes.find_one({"_id": service_id})

    async def mailboxes(self, *, enabled_only: bool = False) -> list[dict[str, Any]]:
        return [d async for d in self._mailboxes.find({"enabled": True} if enabled_only else {})]

    async def save_mailbox(self, doc: dict[str, Any]) -> None:
        await self._mailboxes.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def delete_mailbox(self, service_id: str) -> None:
        await self._mailboxes.delete_one({"_id": service_id})

    async def _write_mailbox(self, service_id: str, update: dict[str, Any],
                             lease: Lease | None) -> None:
        query, update = _fenced(service_id, update, lease)
        result = await self._mailboxes.update_one(query, update)
        if lease is not None and result.matched_count == 0 and await self.mailbox(service_id):
            # a holder with a greater token wrote this mailbox: ours was taken over
            raise LeaseLost(f"mailbox {service_id!r} is polled under a newer lease")

    async def restart_mailbox(self, service_id: str, uidvalidity: int,
                              lease: Lease | None = None) -> None:
        """The folder's UIDVALIDITY changed (or is first seen): start from its first UID."""
        await self._write_mailbox(service_id, {"$set": {"uidvalidity": uidvalidity,
                                                        "last_uid": 0}}, lease)

    async def advance_mailbox(self, service_id: str, uid: int,
                              lease: Lease | None = None) -> None:
        await self._write_mailbox(service_id, {"$set": {"last_uid": uid}}, lease)

    async def mailbox_polled(self, service_id: str, at: datetime,
                             error: str | None = None, lease: Lease | None = None) -> None:
        await self._write_mailbox(service_id, {"$set": {"last_poll_at": at,
                                                        "last_error": error}}, lease)
