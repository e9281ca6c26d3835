"""The `boards.automation` queue: each card event, as the rules' triggers name it."""

from __future__ import annotations

from desk_contracts.events import (
    CardAssigned,
    CardCreated,
    CardMoved,
    CardUpdated,
    CommentAdded,
    SlaBreached,
    SlaWarning,
)
from desk_runtime.consumer import only_when
from desk_runtime.unit_of_work import UnitOfWork

from boards.automation.application import on_happening
from boards.automation.domain import Happening
from boards.settings import BoardsSettings

# Card fields whose change is not something a person or a rule did to the card's content
# (the run log itself, read marks): a rule on "field changed" never hears them.
QUIET_FIELDS = {"unread_customer_reply", "rating"}


async def on_created(uow: UnitOfWork, event: CardCreated, settings: BoardsSettings) -> None:
    await on_happening(uow, Happening("card_created", event.card.card_id), settings)


async def on_moved(uow: UnitOfWork, event: CardMoved, settings: BoardsSettings) -> None:
    await on_happening(uow, Happening(
        "card_moved", event.card.card_id, from_column=event.from_column_id,
        to_column=event.card.column_id, to_category=str(event.card.status_category)), settings)


async def on_updated(uow: UnitOfWork, event: CardUpdated, settings: BoardsSettings) -> None:
    changed = tuple(c for c in event.changed if c not in QUIET_FIELDS)
    if changed:
        await on_happening(uow, Happening("field_changed", event.card.card_id,
                                          changed=changed), settings)


async def on_assigned(uow: UnitOfWork, event: CardAssigned, settings: BoardsSettings) -> None:
    await on_happening(uow, Happening("assigned", event.card.card_id,
                                      assignee_id=event.card.assignee_id), settings)


def _is_customer_reply(event: CommentAdded) -> bool:
    # a customer's reply to an existing request (the request's own text is no reply)
    return event.author.kind == "customer" and event.reply_id is not None


@only_when(_is_customer_reply)  # other comments trigger nothing: no transaction for them
async def on_comment(uow: UnitOfWork, event: CommentAdded, settings: BoardsSettings) -> None:
    if _is_customer_reply(event):
        await on_happening(uow, Happening("customer_replied", event.card_id), settings)


async def on_sla_warning(uow: UnitOfWork, event: SlaWarning, settings: BoardsSettings) -> None:
    await on_happening(uow, Happening("sla_warning", event.card_id, sla_target=event.target),
                       settings)


async def on_sla_breached(uow: UnitOfWork, event: SlaBreached, settings: BoardsSettings
                          ) -> None:
    await on_happening(uow, Happening("sla_breached", event.card_id, sla_target=event.target),
                       settings)


# (queue purpose, event type, handler): the `boards.automation` queue
HANDLERS = [
    ("automation", "card.created", on_created),
    ("automation", "card.moved", on_moved),
    ("automation", "card.updated", on_updated),
    ("automation", "card.assigned", on_assigned),
    ("automation", "comment.added", on_comment),
    ("automation", "sla.warning", on_sla_warning),
    ("automation", "sla.breached", on_sla_breached),
]
