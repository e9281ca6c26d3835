"""Keeps the customers' read model current from card, comment and catalog events."""

from __future__ import annotations

from desk_contracts.events import (
    CardAssigned,
    CardCreated,
    CardMoved,
    CardUpdated,
    CatalogServiceChanged,
    CommentAdded,
    RequestRated,
)
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from portal.repository import PortalRepository


def register(runtime: ServiceRuntime) -> None:
    @runtime.on("cards", "catalog.service_changed")
    async def on_service(uow: UnitOfWork, event: CatalogServiceChanged) -> None:
        await PortalRepository(uow.db).upsert_service(event.service, event.revision, uow.session)

    async def on_card(uow: UnitOfWork, event: CardCreated | CardMoved | CardUpdated | CardAssigned
                      ) -> None:
        await PortalRepository(uow.db).apply_card(event.card, uow.session)

    for event_type in ("card.created", "card.moved", "card.updated", "card.assigned"):
        runtime.on("cards", event_type)(on_card)

    @runtime.on("cards", "comment.added")
    async def on_comment(uow: UnitOfWork, event: CommentAdded) -> None:
        if event.visibility != "public":
            return  # internal notes are not the customer's business (and carry no text)
        repo = PortalRepository(uow.db)
        await repo.messages.update_one(
            {"_id": event.comment_id},
            {"$setOnInsert": {
                "card_id": event.card_id, "number": event.number,
                "author": event.author.model_dump(mode="json"), "text": event.text,
                "attachments": [a.model_dump(mode="json") for a in event.attachments],
                "created_at": event.created_at,
                "reply_id": event.reply_id,
            }},
            upsert=True, session=uow.session,
        )
        await repo.requests.update_one(
            {"_id": event.card_id}, {"$max": {"last_activity_at": event.created_at}},
            session=uow.session,
        )

    @runtime.on("cards", "request.rated")
    async def on_rated(uow: UnitOfWork, event: RequestRated) -> None:
        # ratings given in Telegram show on the portal too; the portal's own come back here
        await PortalRepository(uow.db).apply_rating(event.card_id, event.rating, event.comment,
                                                    event.rated_at, uow.session)
