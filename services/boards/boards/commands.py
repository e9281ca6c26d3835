"""What boards does on the bus's behalf, as commands run inside one unit of work.

State and the events it causes commit together (`uow.emit` writes to the outbox).
Agents' edits live in `boards.editing`; both share `boards.cardstore` for the card
write path (version check, history, search terms).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import (
    Author,
    CardCreated,
    CardLinked,
    CardMoved,
    CardUpdated,
    CatalogServiceChanged,
    CommentAdded,
    ReplyReceived,
    RequestRated,
    RequestReceived,
    SlaAutoClose,
    SlaClockChanged,
)
from desk_runtime.consumer import PermanentFailure
from desk_runtime.language import detect_language
from desk_runtime.logging import get_logger
from desk_runtime.unit_of_work import UnitOfWork

from boards.cardstore import change_card, check_wip, link_entry, service_of
from boards.domain.cards import (
    apply_sla_clock,
    apply_sla_signal,
    choose_assignee,
    column_of,
    first_column_of_category,
    format_number,
    has_lane,
    history_entry,
    search_terms,
    sla_state,
    snapshot,
    sort_key,
)
from boards.metrics import CARD_CHANGES
from boards.repository import BoardsRepository

log = get_logger(__name__)


async def publish_service(uow: UnitOfWork, service: ServiceDefinition) -> int:
    """Save a service definition and tell every other service about it."""
    repo = BoardsRepository(uow.db)
    board = await repo.get_board(service.target.board_id, uow.session)
    if board is None:
        raise ValueError(f"board {service.target.board_id!r} does not exist")
    column_of(board, service.target.column_id)
    if not has_lane(board, service.target.lane_id):
        raise ValueError(f"board {board['_id']!r} has no lane {service.target.lane_id!r}")
    revision = await repo.save_service(service, uow.session)
    await uow.emit(CatalogServiceChanged(service=service, revision=revision))
    return revision


async def create_card_from_request(uow: UnitOfWork, request: RequestReceived, *, prefix: str,
                                   by: str = "system") -> dict:
    """Route a new request to its service's board/column/lane as a numbered card.

    The customer's text becomes the card's first public comment, authored by the
    customer (also when an agent typed it in for a customer who phoned: `by`).
    A follow-up of a closed request becomes a child of it, linked both ways.
    """
    repo = BoardsRepository(uow.db)
    existing = await repo.card_by_request(request.request_id, uow.session)
    if existing is not None:
        return existing  # the same request delivered again: one card
    service = await repo.get_service(request.service_id, uow.session)
    if service is None:
        raise PermanentFailure(f"unknown service {request.service_id!r}")
    board = await repo.get_board(service.target.board_id, uow.session)
    if board is None:
        raise PermanentFailure(f"service {service.id!r} targets missing board")
    column = column_of(board, service.target.column_id)
    now = datetime.now(UTC)
    # Counters are taken outside the card's transaction: every new card increments the
    # same counter document, and inside concurrent transactions that one document made
    # them conflict and retry each other. A retried transaction may leave a gap in the
    # numbers (SD-41, SD-43); a number is never given twice.
    number = format_number(prefix, await repo.next_counter(f"card-number:{prefix}"))
    assignee = None
    if service.assignment.kind != "none":
        turn = await repo.next_counter(f"round-robin:{service.id}") - 1
        load = await repo.open_load(list(service.assignment.agents), uow.session)
        assignee = choose_assignee(service.assignment, turn=turn, open_load=load)
    parent = None
    if request.follow_up_of:
        parent = await repo.get_card(request.follow_up_of, uow.session)
        if parent is None:
            log.warning("card.follow_up_of_unknown", follow_up_of=request.follow_up_of)
    card_id = str(uuid.uuid4())
    card = {
        "_id": card_id,
        "number": number,
        "version": 1,
        "title": request.subject,
        "type": "request",
        "service_id": service.id,
        "board_id": board["_id"],
        "column_id": column["id"],
        "lane_id": service.target.lane_id,
        "status_category": column["category"],
        "priority": str(request.priority or service.default_priority),
        "requester": request.requester.model_dump(mode="json"),
        "channel": request.channel,
        "request_id": request.request_id,
        "fields": dict(request.fields),
        "attachments": [a.model_dump(mode="json") for a in request.attachments],
        "due_date": request.due_date,
        "assignee_id": assignee,
        "members": [assignee] if assignee else [],
        "tags": [],
        "checklist": [],
        "parent_id": parent["_id"] if parent else None,
        "links": [link_entry(parent, "parent")] if parent else [],
        "unread_customer_reply": False,
        "sla": {},
        "sla_state": None,
        "rating": None,
        "created_by": by,
        "created_at": now,
        "updated_at": now,
        "column_entered_at": now,
        "sort_key": sort_key(now, card_id),
        "history": [history_entry(now, by, "created", None,
                                  f"{board['_id']}/{column['id']}/{service.target.lane_id}")],
        # The customer's language, never the service's: notify decides what to answer in.
        # Channels that do not say (the web API, agents' own cards) are judged by the text.
        "language": request.language or detect_language(f"{request.subject}\n{request.text}"),
    }
    if assignee:
        card["history"].append(history_entry(now, "system", "assignee_id", None, assignee))
    card["search_terms"] = search_terms(card)
    await repo.cards.insert_one(card, session=uow.session)
    # outside the transaction too (a hot document); a span wider than the cards is harmless
    await repo.note_card_time(card["sort_key"])
    CARD_CHANGES.labels("created").inc()
    await uow.emit(CardCreated(card=snapshot(card, service), follow_up_of=request.follow_up_of))
    if parent is not None:
        await change_card(uow, parent, {"$push": {"links": link_entry(card, "child")}},
                          [history_entry(now, by, "links", None, f"child {number}")])
        await uow.emit(CardLinked(parent_id=parent["_id"], child_id=card_id,
                                  parent_number=parent["number"], child_number=number))
    comment = {
        "_id": str(uuid.uuid4()),
        "card_id": card["_id"],
        "visibility": "public",
        "author": {"kind": "customer", "id": request.requester.email, "name":
                   request.requester.name},
        "text": request.text,
        "attachments": card["attachments"],
        "created_at": now,
        "request_id": request.request_id,
        "entered_by": by if by != "system" else None,
    }
    await repo.comments.insert_one(comment, session=uow.session)
    await uow.emit(CommentAdded(
        comment_id=comment["_id"], card_id=card["_id"], number=number, visibility="public",
        author=Author(**comment["author"]), text=request.text, attachments=request.attachments,
        created_at=now,
    ))
    return card


async def add_customer_reply(uow: UnitOfWork, reply: ReplyReceived) -> None:
    """A customer wrote on an existing request: a public comment and the unread signal."""
    repo = BoardsRepository(uow.db)
    card = await repo.get_card(reply.card_id, uow.session)
    if card is None:
        raise PermanentFailure(f"reply to unknown card {reply.card_id!r}")
    if await repo.comments.find_one({"reply_id": reply.reply_id}, session=uow.session):
        return
    now = datetime.now(UTC)
    comment = {
        "_id": str(uuid.uuid4()),
        "card_id": card["_id"],
        "visibility": "public",
        "author": {"kind": "customer", "id": reply.author.email or
                   (str(reply.author.telegram_user_id) if reply.author.telegram_user_id else None),
                   "name": reply.author.name},
        "text": reply.text,
        "attachments": [a.model_dump(mode="json") for a in reply.attachments],
        "created_at": now,
        "reply_id": reply.reply_id,
        "channel": reply.channel,
    }
    await repo.comments.insert_one(comment, session=uow.session)
    await change_card(uow, card, {"$set": {"unread_customer_reply": True}},
                      [history_entry(now, "customer", "unread_customer_reply",
                                     card.get("unread_customer_reply", False), True)])
    await uow.emit(CommentAdded(
        comment_id=comment["_id"], card_id=card["_id"], number=card["number"],
        visibility="public", author=Author(**comment["author"]), text=reply.text,
        attachments=reply.attachments, created_at=now, reply_id=reply.reply_id,
    ))


async def record_rating(uow: UnitOfWork, rated: RequestRated) -> None:
    """Keep the customer's rating (and comment) on the card; a later rating replaces it."""
    repo = BoardsRepository(uow.db)
    card = await repo.get_card(rated.card_id, uow.session)
    if card is None:
        raise PermanentFailure(f"rating for unknown card {rated.card_id!r}")
    before = card.get("rating")
    if before and before.get("rated_at") and _aware(before["rated_at"]) > rated.rated_at:
        return  # an older rating arriving late changes nothing
    rating = {"score": rated.rating, "comment": rated.comment, "rated_at": rated.rated_at,
              "rated_by": rated.rated_by}
    now = datetime.now(UTC)
    updated = await change_card(
        uow, card, {"$set": {"rating": rating}},
        [history_entry(now, "customer", "rating", before.get("score") if before else None,
                       rated.rating)]
        + ([history_entry(now, "customer", "rating_comment", None, rated.comment)]
           if rated.comment else []),
    )
    await uow.emit(CardUpdated(card=snapshot(updated, await service_of(uow, updated)),
                               changed=("rating",)))


async def record_sla_signal(uow: UnitOfWork, event, state: str) -> None:
    """Show an sla.warning/breached/met on the card (per target), filterable by `sla=`.

    No card event is emitted: the signal already is an event on the bus, and echoing it
    back as card.updated would feed sla its own output.
    """
    repo = BoardsRepository(uow.db)
    card = await repo.get_card(event.card_id, uow.session)
    if card is None:
        raise PermanentFailure(f"SLA signal for unknown card {event.card_id!r}")
    signals = apply_sla_signal(card.get("sla") or {}, event.target, state, event.deadline,
                               event.at, event.policy)
    if signals is None:
        return
    before = (card.get("sla") or {}).get(event.target, {}).get("state")
    now = datetime.now(UTC)
    await change_card(uow, card, {"$set": {"sla": signals, "sla_state": sla_state(signals)}},
                      [history_entry(now, "sla", f"sla.{event.target}", before, state)],
                      touch=False)


async def record_sla_clock(uow: UnitOfWork, event: SlaClockChanged) -> None:
    """Keep the card's SLA deadlines current so the board shows time left from the start."""
    repo = BoardsRepository(uow.db)
    card = await repo.get_card(event.card_id, uow.session)
    if card is None:
        raise PermanentFailure(f"SLA clock for unknown card {event.card_id!r}")
    signals = apply_sla_clock(card.get("sla") or {}, event.target, event.clock, event.deadline,
                              event.at, event.policy)
    if signals is None:
        return
    # Only the SLA display changes: no version bump (an agent's pending edit stays valid),
    # no history entry (the SLA record itself is the history), no card event.
    await repo.cards.update_one(
        {"_id": card["_id"]},
        {"$set": {f"sla.{event.target}": signals[event.target],
                  "sla_state": sla_state(signals)}},
        session=uow.session)


async def auto_close(uow: UnitOfWork, event: SlaAutoClose) -> None:
    """The customer never answered: move the card to the board's first done column."""
    repo = BoardsRepository(uow.db)
    card = await repo.get_card(event.card_id, uow.session)
    if card is None:
        raise PermanentFailure(f"auto-close of unknown card {event.card_id!r}")
    if card["status_category"] != "waiting_for_customer":
        # The customer answered (or an agent moved it) after sla decided: keep it open.
        log.info("card.auto_close_skipped", card_id=card["_id"], category=card["status_category"])
        return
    board = await repo.get_board(card["board_id"], uow.session)
    done = first_column_of_category(board, "done") if board else None
    if done is None:
        raise PermanentFailure(f"board {card['board_id']!r} has no done column")
    await move_card(uow, card, done["id"], card["lane_id"], by="system")


async def move_card(uow: UnitOfWork, card: dict, column_id: str, lane_id: str, *, by: str,
                    expected_version: int | None = None, board: dict | None = None) -> dict:
    """Move a card to another column/lane (history, version, card.moved)."""
    repo = BoardsRepository(uow.db)
    board = board or await repo.get_board(card["board_id"], uow.session)
    column = column_of(board, column_id)
    if column_id == card["column_id"] and lane_id == card["lane_id"]:
        if expected_version is not None and expected_version != card["version"]:
            await change_card(uow, card, {}, [], expected_version=expected_version)  # 409
        return card
    if column_id != card["column_id"]:
        await check_wip(uow, board, column)
    now = datetime.now(UTC)
    history = []
    sets: dict = {"lane_id": lane_id}
    if column_id != card["column_id"]:
        sets |= {"column_id": column_id, "status_category": column["category"],
                 "column_entered_at": now}
        history.append(history_entry(now, by, "column_id", card["column_id"], column_id))
    if lane_id != card["lane_id"]:
        history.append(history_entry(now, by, "lane_id", card["lane_id"], lane_id))
    updated = await change_card(uow, card, {"$set": sets}, history,
                                expected_version=expected_version)
    CARD_CHANGES.labels("moved").inc()
    await uow.emit(CardMoved(card=snapshot(updated, await service_of(uow, updated)),
                             from_column_id=card["column_id"], from_lane_id=card["lane_id"],
                             from_category=card["status_category"], moved_by=by))
    return updated


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
