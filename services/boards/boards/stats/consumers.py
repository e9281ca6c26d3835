"""Feeds the statistics read model from the `boards.stats` queue.

Runs under desk_runtime's idempotent consumer (one transaction per event, recorded in
`processed_events`), and every write is itself keyed by the event's natural ids, so a
replay of the whole stream rebuilds the same model. Metrics are observed only when a
write was new, so a redelivered event is not counted twice.
"""

from __future__ import annotations

from datetime import datetime

from desk_contracts.events import (
    Author,
    CardAssigned,
    CardCreated,
    CardLinked,
    CardMoved,
    CardSnapshot,
    CardUpdated,
    CommentAdded,
    RequestRated,
    SlaBreached,
    SlaMet,
    SlaTargetCompleted,
)
from desk_runtime.unit_of_work import UnitOfWork

from boards.settings import BoardsSettings
from boards.stats import metrics
from boards.stats.repository import StatsRepository

PURPOSE = "stats"


def _account(uow: UnitOfWork) -> str:
    return uow.causation.account_id if uow.causation else uow.account_id


async def apply_card(uow: UnitOfWork, card: CardSnapshot, event_type: str,
                     at: datetime | None = None, *, follow_up_of: str | None = None) -> None:
    repo = StatsRepository.of(uow)
    # a card's creation writes its rows unread on the event's first delivery (one card's
    # events keep their order: nothing of it was recorded before)
    new = event_type == CardCreated.TYPE and uow.first_delivery
    change = await repo.apply_snapshot(card, _account(uow), at=at or card.updated_at, new=new,
                                       follow_up_of=follow_up_of)
    if change is not None and change.previous is None:
        # Ratings that arrived before their card: count them now that the service is known.
        for rating in await repo.unobserved_ratings(card.card_id):
            uow.after_commit(metrics.CSAT.labels(card.service_id or "none").observe, rating)
    _applied(uow, event_type, change is not None)


def _applied(uow: UnitOfWork, event_type: str, new: bool) -> None:
    """Count the event once its transaction has committed (a rerun attempt counts nothing)."""
    uow.after_commit(metrics.EVENTS_APPLIED.labels(event_type, "applied" if new else "stale").inc)


def _comment_row(comment_id: str, card_id: str, visibility: str, author: Author,
                 created_at: datetime) -> dict:
    """What statistics keep of a comment: who wrote it when, never its text."""
    return {"_id": comment_id, "card_id": card_id, "visibility": visibility,
            "author_kind": author.kind, "author_id": author.id, "created_at": created_at}


def _repo(uow: UnitOfWork) -> StatsRepository:
    return StatsRepository.of(uow)


async def on_created(uow: UnitOfWork, event: CardCreated, settings: BoardsSettings) -> None:
    await apply_card(uow, event.card, CardCreated.TYPE, at=event.card.created_at,
                     follow_up_of=event.follow_up_of)
    opening = event.request.comment if event.request else None
    if opening is not None:  # the request's own text, which no comment.added announces
        await _repo(uow).add_comment(_comment_row(
            opening.comment_id, event.card.card_id, "public", opening.author,
            opening.created_at), new=uow.first_delivery)


async def on_moved(uow: UnitOfWork, event: CardMoved, settings: BoardsSettings) -> None:
    await apply_card(uow, event.card, CardMoved.TYPE)


async def on_assigned(uow: UnitOfWork, event: CardAssigned, settings: BoardsSettings) -> None:
    await apply_card(uow, event.card, CardAssigned.TYPE)


async def on_updated(uow: UnitOfWork, event: CardUpdated, settings: BoardsSettings) -> None:
    await apply_card(uow, event.card, CardUpdated.TYPE)


async def on_linked(uow: UnitOfWork, event: CardLinked, settings: BoardsSettings) -> None:
    await _repo(uow).add_link(event.parent_id, event.child_id)
    _applied(uow, CardLinked.TYPE, True)


async def on_comment(uow: UnitOfWork, event: CommentAdded, settings: BoardsSettings) -> None:
    await _repo(uow).add_comment(_comment_row(
        event.comment_id, event.card_id, event.visibility, event.author, event.created_at),
        new=uow.first_delivery)
    _applied(uow, CommentAdded.TYPE, True)


async def on_rated(uow: UnitOfWork, event: RequestRated, settings: BoardsSettings) -> None:
    repo = _repo(uow)
    known = await repo.card_known(event.card_id)
    new = await repo.add_rating({
        "_id": f"{event.card_id}:{event.rated_at.isoformat()}", "card_id": event.card_id,
        "rating": event.rating, "comment": event.comment, "rated_at": event.rated_at,
        "rated_by": event.rated_by, "observed": known})
    if new and known:
        service = await repo.service_of(event.card_id) or "none"
        uow.after_commit(metrics.CSAT.labels(service).observe, event.rating)
    _applied(uow, RequestRated.TYPE, new)


async def on_target(uow: UnitOfWork, event: SlaTargetCompleted, settings: BoardsSettings
                    ) -> None:
    doc = {"_id": f"{event.card_id}:{event.target}:{event.cycle}",
           **event.model_dump(mode="python")}
    new = await _repo(uow).put_target(doc)
    if new:
        service = event.service_id or "none"
        if event.target == "first_response" and event.cycle == 1:
            uow.after_commit(metrics.FIRST_RESPONSE.labels(service).observe,
                             event.spent_seconds)
        elif event.target == "resolution":
            uow.after_commit(metrics.RESOLUTION.labels(service).observe, event.spent_seconds)
        if event.met:
            uow.after_commit(metrics.SLA_MET.labels(service, event.target).inc)
    _applied(uow, SlaTargetCompleted.TYPE, new)


async def _signal(uow: UnitOfWork, event: SlaBreached | SlaMet, kind: str) -> None:
    # Natural key: the same decision republished under another event id is one signal.
    when = (event.deadline or event.at).isoformat()
    key = f"{event.card_id}:{event.target}:{kind}:{when}"
    new = await _repo(uow).add_signal({
        "_id": key, "kind": kind, "card_id": event.card_id, "target": event.target,
        "at": event.at, "deadline": event.deadline, "policy": event.policy,
        "service_id": event.service_id})
    if new and kind == "breached":
        uow.after_commit(metrics.SLA_BREACHES.labels(event.service_id or "none",
                                                      event.target).inc)
    _applied(uow, f"sla.{kind}", new)


async def on_breached(uow: UnitOfWork, event: SlaBreached, settings: BoardsSettings) -> None:
    await _signal(uow, event, "breached")


async def on_met(uow: UnitOfWork, event: SlaMet, settings: BoardsSettings) -> None:
    await _signal(uow, event, "met")


# (queue purpose, event type, handler): the `boards.stats` queue
HANDLERS = [
    (PURPOSE, "card.created", on_created),
    (PURPOSE, "card.moved", on_moved),
    (PURPOSE, "card.assigned", on_assigned),
    (PURPOSE, "card.updated", on_updated),
    (PURPOSE, "card.linked", on_linked),
    (PURPOSE, "comment.added", on_comment),
    (PURPOSE, "request.rated", on_rated),
    (PURPOSE, "sla.target_completed", on_target),
    (PURPOSE, "sla.breached", on_breached),
    (PURPOSE, "sla.met", on_met),
]
