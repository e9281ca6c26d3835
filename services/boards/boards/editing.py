"""Agents' edits to cards, each one unit of work: state, history and the event together."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from desk_contracts.access import address_allowed
from desk_contracts.catalog import FieldErrors, validate_fields
from desk_contracts.events import (
    AttachmentRef,
    Author,
    CardAssigned,
    CardLinked,
    CardUpdated,
    CommentAdded,
    Person,
    RequestReceived,
)
from desk_runtime.http import Conflict, Invalid, NotFound
from desk_runtime.unit_of_work import UnitOfWork

from boards.cardstore import change_card, link_entry, service_of
from boards.commands import create_card_from_request
from boards.domain.cards import history_entry, render_canned, snapshot, would_cycle
from boards.metrics import CARD_CHANGES
from boards.repository import BoardsRepository


async def create_manual_card(uow: UnitOfWork, *, agent_id: str, service_id: str,
                             requester: Person, title: str, text: str, priority: str | None,
                             fields: dict[str, Any], due_date: str | None, prefix: str) -> dict:
    """A customer phoned: the agent files the request for them, the customer is its author."""
    repo = BoardsRepository(uow.db)
    service = await repo.get_service(service_id, uow.session)
    if service is None or not service.active:
        raise Invalid(f"no active service {service_id!r}")
    access = service.access
    if (access.domains or access.addresses) and not address_allowed(
            requester.email or "", list(access.domains), list(access.addresses)):
        raise Invalid(f"{requester.email or 'this customer'} may not use service {service.id!r}",
                      details={"requester": "not allowed by the service's access rule"})
    try:
        cleaned = validate_fields(service, fields)
    except FieldErrors as exc:
        raise Invalid("some fields are invalid", details={"fields": exc.errors}) from None
    request = RequestReceived(
        request_id=f"agent-{uuid.uuid4()}", channel="agent", service_id=service.id,
        requester=requester, subject=title, text=text, fields=cleaned,
        received_at=datetime.now(UTC), priority=priority, due_date=due_date,
        created_by_agent=agent_id,
    )
    return await create_card_from_request(uow, request, prefix=prefix, by=agent_id)


async def assign(uow: UnitOfWork, card: dict, assignee_id: str | None, *, by: str,
                 expected_version: int | None) -> dict:
    previous = card.get("assignee_id")
    if previous == assignee_id:
        return card
    if assignee_id is not None:
        agent = await uow.db["agents"].find_one({"_id": assignee_id, "active": True},
                                                session=uow.session)
        if agent is None:
            raise Invalid(f"no active agent {assignee_id!r}")
        if agent.get("role") != "admin" and card["board_id"] not in agent.get("boards", []):
            raise Invalid(f"agent {assignee_id!r} is not a member of board {card['board_id']!r}")
    update: dict = {"$set": {"assignee_id": assignee_id}}
    if assignee_id is not None:
        update["$addToSet"] = {"members": assignee_id}
    now = datetime.now(UTC)
    updated = await change_card(uow, card, update,
                                [history_entry(now, by, "assignee_id", previous, assignee_id)],
                                expected_version=expected_version)
    CARD_CHANGES.labels("assigned").inc()
    await uow.emit(CardAssigned(card=snapshot(updated, await service_of(uow, updated)),
                                previous_assignee_id=previous))
    return updated


async def update_card(uow: UnitOfWork, card: dict, changes: dict[str, Any], *, by: str,
                      expected_version: int, can_see_board: Callable[[str], bool]) -> dict:
    """Set title, priority, service, due date, tags, checklist, type or custom fields.

    `can_see_board` is the acting agent's board membership: a card may only be given a
    service whose board the agent belongs to, as creating a card there would require.
    """
    repo = BoardsRepository(uow.db)
    sets: dict[str, Any] = {}
    if "service_id" in changes and changes["service_id"] != card.get("service_id"):
        service = await repo.get_service(changes["service_id"], uow.session)
        # the same answer for "no such service" and "not on your boards": nothing is revealed
        if service is None or not can_see_board(service.target.board_id):
            raise Invalid(f"no service {changes['service_id']!r} on your boards")
    if "fields" in changes:
        service = await repo.get_service(changes.get("service_id") or card["service_id"],
                                         uow.session) if (changes.get("service_id")
                                                          or card.get("service_id")) else None
        merged = {**card.get("fields", {}), **changes["fields"]}
        merged = {k: v for k, v in merged.items() if v is not None}
        if service is not None:
            try:
                merged = validate_fields(service, merged)
            except FieldErrors as exc:
                raise Invalid("some fields are invalid", details={"fields": exc.errors}) from None
        changes = {**changes, "fields": merged}
    for key, value in changes.items():
        if card.get(key) != value:
            sets[key] = value
    if not sets:
        if expected_version != card["version"]:
            await change_card(uow, card, {}, [], expected_version=expected_version)
        return card
    now = datetime.now(UTC)
    history = [history_entry(now, by, key, card.get(key), value) for key, value in sets.items()]
    updated = await change_card(uow, card, {"$set": sets}, history,
                                expected_version=expected_version)
    CARD_CHANGES.labels("updated").inc()
    await uow.emit(CardUpdated(card=snapshot(updated, await service_of(uow, updated)),
                               changed=tuple(sorted(sets))))
    return updated


async def add_comment(uow: UnitOfWork, card: dict, *, agent_id: str, agent_name: str,
                      text: str | None, visibility: str, canned_response_id: str | None,
                      attachments: tuple[AttachmentRef, ...] = ()) -> dict:
    """An agent's public answer (reaches the customer) or internal note (never leaves boards)."""
    repo = BoardsRepository(uow.db)
    if canned_response_id:
        canned = await repo.canned.find_one({"_id": canned_response_id}, session=uow.session)
        if canned is None or canned.get("service_id") not in (None, card.get("service_id")):
            raise NotFound(f"no canned response {canned_response_id!r} for this card's service")
        filled = render_canned(canned["text"], card, agent_name)
        text = f"{filled}\n\n{text}" if text else filled
    if not text or not text.strip():
        raise Invalid("a comment needs text or a canned response")
    now = datetime.now(UTC)
    comment = {
        "_id": str(uuid.uuid4()),
        "card_id": card["_id"],
        "visibility": visibility,
        "author": {"kind": "agent", "id": agent_id, "name": agent_name},
        "text": text,
        "attachments": [a.model_dump(mode="json") for a in attachments],
        "created_at": now,
        "canned_response_id": canned_response_id,
    }
    await repo.comments.insert_one(comment, session=uow.session)
    # The history says a note was added, never what it says.
    await change_card(uow, card, {}, [history_entry(now, agent_id, f"comment.{visibility}",
                                                    None, comment["_id"])])
    CARD_CHANGES.labels(f"comment_{visibility}").inc()
    await uow.emit(CommentAdded(
        comment_id=comment["_id"], card_id=card["_id"], number=card["number"],
        visibility=visibility, author=Author(**comment["author"]),
        text=text if visibility == "public" else None,
        attachments=attachments if visibility == "public" else (), created_at=now,
    ))
    return comment


async def mark_read(uow: UnitOfWork, card: dict, *, by: str) -> dict:
    if not card.get("unread_customer_reply"):
        return card
    now = datetime.now(UTC)
    updated = await change_card(uow, card, {"$set": {"unread_customer_reply": False}},
                                [history_entry(now, by, "unread_customer_reply", True, False)])
    await uow.emit(CardUpdated(card=snapshot(updated, await service_of(uow, updated)),
                               changed=("unread_customer_reply",)))
    return updated


async def link_cards(uow: UnitOfWork, parent: dict, child: dict, *, by: str) -> dict:
    """Make `child` a child of `parent` (also across boards); both cards list the link."""
    repo = BoardsRepository(uow.db)
    if child.get("parent_id") == parent["_id"]:
        return parent
    if child.get("parent_id"):
        raise Conflict(f"{child['number']} already has a parent; unlink it first")
    if would_cycle(parent["_id"], child["_id"], await repo.ancestors(parent["_id"], uow.session)):
        raise Conflict("a card cannot become its own ancestor")
    now = datetime.now(UTC)
    await change_card(uow, child, {"$set": {"parent_id": parent["_id"]},
                                   "$push": {"links": link_entry(parent, "parent")}},
                      [history_entry(now, by, "parent_id", None, parent["number"])])
    updated = await change_card(uow, parent, {"$push": {"links": link_entry(child, "child")}},
                                [history_entry(now, by, "links", None, f"child {child['number']}")])
    CARD_CHANGES.labels("linked").inc()
    await uow.emit(CardLinked(parent_id=parent["_id"], child_id=child["_id"],
                              parent_number=parent["number"], child_number=child["number"]))
    return updated
