"""Keeps intake's catalog copy and the map from requests to cards current.

The threads map (one document per card, intake.repository.threads) holds what threading
needs: the card's number, its participants (the requester, those copied on the first mail
and those who wrote on it as participants: who may reply without being held and use the
`[SD-42]` token) and every message key we received or sent for it. What a channel owes
the requester once the card exists is its adapter's business (intake.channels).
"""

from __future__ import annotations

from desk_contracts.events import (
    CardCreated,
    CardMoved,
    CardSnapshot,
    CatalogServiceChanged,
    NotificationSent,
)
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from intake.channels import adapter_for
from intake.repository import IntakeRepository


def _card_fields(card: CardSnapshot) -> dict:
    return {"number": card.number, "request_id": card.request_id, "service_id": card.service_id,
            "channel": card.channel, "title": card.title,
            "customer_status": card.customer_status,
            "status_category": card.status_category.value,
            "requester": card.requester.model_dump(mode="json") if card.requester else None,
            "updated_at": card.updated_at}


async def on_service(uow: UnitOfWork, event: CatalogServiceChanged) -> None:
    await IntakeRepository(uow.db).upsert_service(event.service, event.revision, uow.session)


async def on_card(uow: UnitOfWork, event: CardCreated) -> None:
    card = event.card
    repo = IntakeRepository(uow.db)
    people: list[str] = []
    if card.requester and card.requester.email:
        people.append(card.requester.email.lower())
    adapter = adapter_for(card.channel)
    request = None
    if card.request_id and adapter.request_on_card:
        request = await repo.request(card.request_id, session=uow.session)
        # those the first mail was copied to may answer on the request too
        people += (request or {}).get("cc") or []
    await adapter.card_created(uow, repo, card, request)
    await repo.record_card(card.card_id, _card_fields(card),
                           message_id=(request or {}).get("message_id"), participants=people,
                           uow=uow, new=uow.first_delivery)


async def on_moved(uow: UnitOfWork, event: CardMoved) -> None:
    card = event.card
    await IntakeRepository(uow.db).record_card_moved(card.card_id, _card_fields(card),
                                                     card.version, uow.session)


async def on_sent(uow: UnitOfWork, event: NotificationSent) -> None:
    if not event.card_id or not event.message_id:
        return
    key = adapter_for(event.channel).sent_message_key(event)
    await IntakeRepository(uow.db).remember_sent(event.card_id, key, uow.session)


# queue purpose -> event type -> handler
HANDLERS = {
    "catalog": {"catalog.service_changed": on_service},
    "threads": {"card.created": on_card, "card.moved": on_moved,
                "notification.sent": on_sent},
}


def register(runtime: ServiceRuntime) -> None:
    for purpose, handlers in HANDLERS.items():
        for event_type, handler in handlers.items():
            runtime.on(purpose, event_type)(handler)
