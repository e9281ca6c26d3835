"""Intake's store: the only code that reads or writes intake's database.

One class, `IntakeRepository`, with methods named for what they do; each concern's
methods live in their own module (requests, threads, inbound mail, mailboxes, Telegram,
inbound addresses, attachments, the catalog and customer-group copies).
"""

from __future__ import annotations

from intake.repository.attachments import AttachmentRecords
from intake.repository.addresses import InboundAddressRecords
from intake.repository.base import AlreadyRecorded
from intake.repository.catalog import CatalogRecords
from intake.repository.customers import CustomerGroupRecords
from intake.repository.mail import InboundMailRecords
from intake.repository.mailboxes import MailboxRecords
from intake.repository.requests import RequestRecords
from intake.repository.telegram import TelegramRecords
from intake.repository.threads import ThreadRecords


class IntakeRepository(RequestRecords, ThreadRecords, InboundMailRecords, MailboxRecords,
                       InboundAddressRecords, TelegramRecords, AttachmentRecords, CatalogRecords,
                       CustomerGroupRecords):
    async def ensure_indexes(self) -> None:
        await self._requests.create_index(
            "idempotency_key", unique=True,
            partialFilterExpression={"idempotency_key": {"$type": "string"}},
        )
        await self._threads.create_index("number", unique=True)
        await self._threads.create_index("request_id")
        await self._threads.create_index("message_ids")
        await self._inbound.create_index("dedupe_key", unique=True)
        await self._inbound.create_index([("status", 1), ("received_at", 1)])
        await self._inbound.create_index("message_id")
        await self._quarantine.create_index("at")
        await self._requests.create_index("message_id", sparse=True)
        await self._requests.create_index("requester.telegram_chat_id", sparse=True)
        await self.ensure_telegram_indexes()
        await self.ensure_attachment_indexes()


__all__ = ["AlreadyRecorded", "IntakeRepository"]
