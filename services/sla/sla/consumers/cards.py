"""Drives SLA clocks from card, comment and catalog events.

Every handler is `handler(uow, event, ctx)`; `HANDLERS` lists them with the queue purpose
and event type, and main.py registers the table in one loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from desk_contracts.events import (
    CardCreated,
    CardMoved,
    CardSnapshot,
    CardUpdated,
    CatalogServiceChanged,
    CommentAdded,
)
from desk_runtime.consumer import only_when
from desk_runtime.unit_of_work import UnitOfWork

from sla.commands import Engine
from sla.metrics import SKIPPED_TASKS
from sla.repository import SlaRepository
from sla.settings import SlaSettings


class CardNotYetKnown(Exception):
    """A comment arrived before its card's creation; redelivery retries it with backoff."""


@dataclass(frozen=True)
class Context:
    """What handlers need besides the unit of work and the event."""

    settings: SlaSettings

    def engine(self, uow: UnitOfWork) -> Engine:
        return Engine(uow, default_policy=self.settings.default_policy,
                      warn_share=self.settings.warn_share)


async def on_service(uow: UnitOfWork, event: CatalogServiceChanged, ctx: Context) -> None:
    await SlaRepository(uow.db).upsert_service(event.service, event.revision, uow.session)


def _clockless(card: CardSnapshot) -> bool:
    """Internal work runs an SLA clock only where its type names a policy."""
    if card.kind == "task" and not card.sla_policy:
        SKIPPED_TASKS.inc()
        return True
    return False


async def on_created(uow: UnitOfWork, event: CardCreated, ctx: Context) -> None:
    if not _clockless(event.card):
        await ctx.engine(uow).card_created(event.card)


async def on_moved(uow: UnitOfWork, event: CardMoved, ctx: Context) -> None:
    if not _clockless(event.card):
        await ctx.engine(uow).card_moved(event.card)


async def on_updated(uow: UnitOfWork, event: CardUpdated, ctx: Context) -> None:
    if not _clockless(event.card):
        await ctx.engine(uow).card_updated(event.card, event.changed)


@only_when(lambda event: event.is_exchange)  # the rest moves no clock: no transaction
async def on_comment(uow: UnitOfWork, event: CommentAdded, ctx: Context) -> None:
    if event.visibility != "public":
        return  # an internal note answers nobody
    known = await ctx.engine(uow).public_comment(
        event.card_id, event.author.kind, event.created_at, is_reply=event.reply_id is not None)
    if not known:
        raise CardNotYetKnown(f"comment on {event.card_id} before its card.created")


Handler = Callable[[UnitOfWork, Any, Context], Awaitable[None]]

# (queue purpose, event type, handler): sla's one queue, `sla.cards`
HANDLERS: list[tuple[str, str, Handler]] = [
    ("cards", "catalog.service_changed", on_service),
    ("cards", "card.created", on_created),
    ("cards", "card.moved", on_moved),
    ("cards", "card.updated", on_updated),
    ("cards", "comment.added", on_comment),
]
