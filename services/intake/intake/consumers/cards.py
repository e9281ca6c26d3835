"""Keeps intake's catalog copy and the map from requests to cards current."""

from __future__ import annotations

from desk_contracts.events import CardCreated, CatalogServiceChanged
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from intake.repository import IntakeRepository


def register(runtime: ServiceRuntime) -> None:
    @runtime.on("catalog", "catalog.service_changed")
    async def on_service(uow: UnitOfWork, event: CatalogServiceChanged) -> None:
        await IntakeRepository(uow.db).upsert_service(event.service, event.revision, uow.session)

    @runtime.on("threads", "card.created")
    async def on_card(uow: UnitOfWork, event: CardCreated) -> None:
        card = event.card
        await IntakeRepository(uow.db).threads.update_one(
            {"_id": card.card_id},
            {"$set": {"number": card.number, "request_id": card.request_id,
                      "service_id": card.service_id, "channel": card.channel,
                      "requester": card.requester.model_dump(mode="json")
                      if card.requester else None},
             "$setOnInsert": {"message_ids": []}},
            upsert=True, session=uow.session,
        )
