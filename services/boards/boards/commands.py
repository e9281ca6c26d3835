"""What boards does, as commands run inside one unit of work (state + events together)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import (
    Author,
    CardCreated,
    CatalogServiceChanged,
    CommentAdded,
    ReplyReceived,
    RequestReceived,
)
from desk_runtime.consumer import PermanentFailure
from desk_runtime.unit_of_work import UnitOfWork

from boards.domain.cards import (
    choose_assignee,
    column_of,
    format_number,
    has_lane,
    snapshot,
)
from boards.repository import BoardsRepository


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


async def create_card_from_request(uow: UnitOfWork, request: RequestReceived, *, prefix: str
                                   ) -> dict:
    """Route a new request to its service's board/column/lane as a numbered card."""
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
    number = format_number(prefix, await repo.next_counter(f"card-number:{prefix}", uow.session))
    assignee = None
    if service.assignment.kind != "none":
        turn = await repo.next_counter(f"round-robin:{service.id}", uow.session) - 1
        load = await repo.open_load(list(service.assignment.agents), uow.session)
        assignee = choose_assignee(service.assignment, turn=turn, open_load=load)
    card = {
        "_id": str(uuid.uuid4()),
        "number": number,
        "version": 1,
        "title": request.subject,
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
        "parent_id": request.follow_up_of,
        "links": [],
        "unread_customer_reply": False,
        "created_at": now,
        "updated_at": now,
        "column_entered_at": now,
        "history": [{"at": now, "by": "system", "field": "created", "from": None,
                     "to": f"{board['_id']}/{column['id']}/{service.target.lane_id}"}],
        "language": request.language or service.language,
    }
    await repo.cards.insert_one(card, session=uow.session)
    await uow.emit(CardCreated(card=snapshot(card, service), follow_up_of=request.follow_up_of))
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
    await repo.cards.update_one(
        {"_id": card["_id"]},
        {"$set": {"unread_customer_reply": True, "updated_at": now}},
        session=uow.session,
    )
    await uow.emit(CommentAdded(
        comment_id=comment["_id"], card_id=card["_id"], number=card["number"],
        visibility="public", author=Author(**comment["author"]), text=reply.text,
        attachments=reply.attachments, created_at=now, reply_id=reply.reply_id,
    ))
