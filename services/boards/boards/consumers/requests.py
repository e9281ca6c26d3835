"""Turns customer requests, replies and ratings from the bus into cards and comments."""

from __future__ import annotations

from datetime import UTC, datetime

from desk_contracts.events import ReplyReceived, RequestRated, RequestReceived
from desk_runtime.unit_of_work import UnitOfWork

from boards.application import cards
from boards.metrics import REQUEST_TO_CARD
from boards.settings import BoardsSettings


async def on_request(uow: UnitOfWork, request: RequestReceived, settings: BoardsSettings
                     ) -> None:
    started = datetime.now(UTC)
    card = await cards.create_from_request(uow, request, prefix=settings.card_prefix)
    created, received = card.created_at, request.received_at
    # only a card made now: a request carded before (re-emitted) is not a new delay
    if isinstance(created, datetime) and created.tzinfo and created >= started:
        received = received if received.tzinfo else received.replace(tzinfo=UTC)
        uow.after_commit(REQUEST_TO_CARD.labels(request.channel).observe,
                         max(0.0, (created - received).total_seconds()))


async def on_reply(uow: UnitOfWork, reply: ReplyReceived, settings: BoardsSettings) -> None:
    await cards.customer_reply(uow, reply)


async def on_rated(uow: UnitOfWork, rated: RequestRated, settings: BoardsSettings) -> None:
    await cards.rate(uow, rated)


# (queue purpose, event type, handler): the `boards.requests` queue
HANDLERS = [
    ("requests", "request.received", on_request),
    ("requests", "request.reply_received", on_reply),
    ("requests", "request.rated", on_rated),
]
