"""Messages the bot owes a user after a bus event (e.g. the request's number once its card
exists): queued in the consumer's transaction, sent by a worker woken by the commit.

One intake replica at a time sends (the `telegram:outbox` lease); each message is claimed
with the lease's fencing token right before it is sent, so a sender that lost its lease
while paused does not send what the new holder took."""

from __future__ import annotations

from typing import Any

from desk_contracts.events import CardSnapshot
from desk_runtime.lease import Leases
from desk_runtime.logging import get_logger
from desk_runtime.unit_of_work import UnitOfWork

from intake.repository import IntakeRepository
from intake.telegram.texts import t
from intake.telegram.transport import BotTransport

log = get_logger(__name__)
# a commit that queued a message wakes the worker; this is only the fallback look
OUTBOX_IDLE_SECONDS = 5.0
BATCH = 50
LEASE = "telegram:outbox"


async def queue_numbered(uow: UnitOfWork, repo: IntakeRepository, card: CardSnapshot,
                         request: dict[str, Any] | None) -> None:
    """The dialog promised the number: the bot sends it (and threads replies to it)."""
    chat_id = card.requester.telegram_chat_id if card.requester else None
    if chat_id is None:
        return
    lang = (request or {}).get("lang") or "en"
    await repo.queue_telegram_message(
        f"created:{card.card_id}", chat_id=chat_id, card_id=card.card_id,
        created_at=card.created_at,
        text=t("numbered", lang, number=card.number, title=card.title), session=uow.session)


class TelegramOutbox:
    def __init__(self, repo: IntakeRepository, transport: BotTransport, leases: Leases):
        self.repo = repo
        self.transport = transport
        self.leases = leases

    async def send_round(self) -> float:
        """Send what is owed, oldest first; a failure leaves the rest for the next round.

        Only the replica holding the sender's lease sends; the others look again within a
        third of the lease's TTL, so one of them takes over soon after the holder dies."""
        try:
            lease = await self.leases.acquire(LEASE)
        except Exception as exc:  # noqa: BLE001 (store away: the next round asks again)
            log.warning("telegram.outbox_failed", error=str(exc))
            return OUTBOX_IDLE_SECONDS
        if lease is None:
            return min(OUTBOX_IDLE_SECONDS, self.leases.ttl / 3)
        try:
            async with self.leases.keeping(lease):
                for item in await self.repo.claim_telegram_outbox(BATCH):
                    if not lease.held or not await self.repo.claim_telegram_message(
                            item["_id"], lease):
                        continue
                    sent = await self.transport.send(item["chat_id"], item["text"])
                    await self.repo.telegram_message_sent(item["_id"], sent["message_id"])
                    if item.get("card_id"):
                        await self.repo.add_message_key(
                            item["card_id"], f"tg:{item['chat_id']}:{sent['message_id']}")
        except Exception as exc:
            log.warning("telegram.outbox_failed", error=str(exc))
        return OUTBOX_IDLE_SECONDS
