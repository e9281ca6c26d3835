"""Turns bus events into notifications to send (recorded, then sent by the dispatcher)."""

from __future__ import annotations

from datetime import UTC, datetime

from desk_contracts.events import CardCreated, CatalogServiceChanged
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from notify.domain.messages import notification_id
from notify.repository import NotifyRepository


def register(runtime: ServiceRuntime) -> None:
    @runtime.on("events", "catalog.service_changed")
    async def on_service(uow: UnitOfWork, event: CatalogServiceChanged) -> None:
        await NotifyRepository(uow.db).upsert_service(event.service, event.revision, uow.session)

    @runtime.on("events", "card.created")
    async def on_card_created(uow: UnitOfWork, event: CardCreated) -> None:
        card = event.card
        # Telegram requesters are answered in Telegram, not by e-mail.
        if card.requester is None or not card.requester.email or card.channel == "telegram":
            return
        recipient = card.requester.email
        cause = str(uow.causation.event_id)
        now = datetime.now(UTC)
        await NotifyRepository(uow.db).enqueue(
            {
                "_id": notification_id(cause, "acknowledgment", recipient),
                "kind": "acknowledgment",
                "channel": "email",
                "recipient": recipient,
                "card_id": card.card_id,
                "cause_event_id": cause,
                "correlation_id": uow.correlation_id,
                "context": {"card": card.model_dump(mode="json")},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "claimed_until": None,
                "created_at": now,
            },
            uow.session,
        )
