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
from desk_runtime.consumer import only_when
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from portal.repository import PortalRepository


async def on_service(uow: UnitOfWork, event: CatalogServiceChanged) -> None:
    await PortalRepository(uow.db).upsert_service(event.service, event.revision, uow.session)


async def on_card(uow: UnitOfWork,
                  event: CardCreated | CardMoved | CardUpdated | CardAssigned) -> None:
    if event.card.kind == "task":
        return  # internal work: no customer, so no row on anyone's portal
    repo = PortalRepository(uow.db)
    created = isinstance(event, CardCreated)
    # a request given a new author carries them in its snapshot: the row follows it to the
    # new requester's list and leaves the old one's
    await repo.apply_card(event.card, uow, new=created and uow.first_delivery)
    if created and event.request is not None and event.request.comment is not None:
        # the request's text comes with its card (no comment.added of its own)
        await repo.add_opening_comment(event.card, event.request.comment, uow,
                                       new=uow.first_delivery)


@only_when(lambda event: event.visibility == "public")
async def on_comment(uow: UnitOfWork, event: CommentAdded) -> None:
    if event.visibility != "public":
        return  # internal notes are not the customer's business (and carry no text)
    await PortalRepository(uow.db).add_public_comment(event, uow,
                                                      new=uow.first_delivery)


async def on_rated(uow: UnitOfWork, event: RequestRated) -> None:
    # ratings given in Telegram show on the portal too; the portal's own come back here
    await PortalRepository(uow.db).apply_rating(event.card_id, event.rating, event.comment,
                                                event.rated_at, uow.session)


# the `portal.cards` queue: event type → handler
HANDLERS = {
    "catalog.service_changed": on_service,
    "card.created": on_card,
    "card.moved": on_card,
    "card.updated": on_card,
    "card.assigned": on_card,
    "comment.added": on_comment,
    "request.rated": on_rated,
}


def register(runtime: ServiceRuntime) -> None:
    for event_type, handler in HANDLERS.items():
        runtime.on("cards", event_type)(handler)
