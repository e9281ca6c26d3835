"""Drives SLA clocks from card, comment and catalog events."""

from __future__ import annotations

from desk_contracts.events import (
    CardCreated,
    CardMoved,
    CardUpdated,
    CatalogServiceChanged,
    CommentAdded,
)
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from sla.commands import Engine
from sla.repository import SlaRepository
from sla.settings import SlaSettings


class CardNotYetKnown(Exception):
    """A comment arrived before its card's creation; redelivery retries it with backoff."""


def register(runtime: ServiceRuntime, settings: SlaSettings) -> None:
    def engine(uow: UnitOfWork) -> Engine:
        return Engine(uow, default_policy=settings.default_policy,
                      warn_share=settings.warn_share)

    @runtime.on("cards", "catalog.service_changed")
    async def on_service(uow: UnitOfWork, event: CatalogServiceChanged) -> None:
        await SlaRepository(uow.db).upsert_service(event.service, event.revision, uow.session)

    @runtime.on("cards", "card.created")
    async def on_created(uow: UnitOfWork, event: CardCreated) -> None:
        await engine(uow).card_created(event.card)

    @runtime.on("cards", "card.moved")
    async def on_moved(uow: UnitOfWork, event: CardMoved) -> None:
        await engine(uow).card_moved(event.card)

    @runtime.on("cards", "card.updated")
    async def on_updated(uow: UnitOfWork, event: CardUpdated) -> None:
        await engine(uow).card_updated(event.card, event.changed)

    @runtime.on("cards", "comment.added")
    async def on_comment(uow: UnitOfWork, event: CommentAdded) -> None:
        if event.visibility != "public":
            return  # an internal note answers nobody
        known = await engine(uow).public_comment(
            event.card_id, event.author.kind, event.created_at, is_reply=event.reply_id is not None)
        if not known:
            raise CardNotYetKnown(f"comment on {event.card_id} before its card.created")
