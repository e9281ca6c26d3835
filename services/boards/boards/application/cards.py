"""Every operation on cards, by operation: each runs inside one unit of work.

A card's state and the events it causes commit together (`uow.emit` writes to the
outbox). The rules live on the `Card` aggregate (boards.domain.card); this module looks
up what they need, asks the card for its change, stores it through the repository (only
while the card is at the version it was read at) and says what happened on the bus. The
agents' API, the workspace pages and the bus consumers all come here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from desk_contracts.access import address_allowed
from desk_contracts.catalog import (
    FieldErrors,
    ServiceDefinition,
    validate_answers,
    validate_fields,
)
from desk_contracts.channels import AGENT
from desk_contracts.events import (
    AttachmentRef,
    Author,
    CardAssigned,
    CardCreated,
    AgentContact,
    CardLinked,
    CardMentioned,
    CardMoved,
    CardUpdated,
    CommentAdded,
    OpeningComment,
    Person,
    ReplyReceived,
    RequestRated,
    RequestOrigin,
    RequestReceived,
    SlaAutoClose,
    SlaClockChanged,
    excerpt,
)
from desk_runtime.consumer import PermanentFailure
from desk_runtime.http import Conflict, Invalid, NotFound
from desk_runtime.language import detect_language
from desk_runtime.logging import get_logger
from desk_runtime.unit_of_work import UnitOfWork

from boards.automation.routing import route_request, stamp
from boards.domain.agent import Agent
from boards.domain.board import BoardRules, TransferRefused, stored_priority_key
from boards.domain.card import Card, CardChange, StaleVersion, WipLimitReached
from boards.domain.cards import (
    choose_assignee,
    column_of,
    format_number,
    render_canned,
)
from boards.domain.mentions import Mention, find_mentions, mentioned_agents
from boards.metrics import (
    ACCESS_DENIED,
    CARD_CHANGES,
    FOLLOWER_NOTICES,
    MENTIONS,
    STALE_VERSIONS,
    TRANSFERS_REFUSED,
    WIP_REFUSED,
)
from boards.repository import Repositories

log = get_logger(__name__)


def _repos(uow: UnitOfWork) -> Repositories:
    return Repositories.of(uow.db)


# --- reading a card for an agent ----------------------------------------------------------

async def visible_card(repos: Repositories, ref: str, agent: Agent, session=None) -> Card:
    """The card if the agent may see its board; otherwise 404, as if it did not exist."""
    card = await repos.cards.card(ref, session)
    if card is None:
        raise NotFound("no such card")
    if not agent.can_see_board(card.board_id):
        ACCESS_DENIED.labels("other_board").inc()
        raise NotFound("no such card")
    return card


# --- the one write path -------------------------------------------------------------------

def _require_version(card: Card, expected_version: int | None) -> None:
    try:
        card.require_version(expected_version)
    except StaleVersion:
        STALE_VERSIONS.inc()
        raise


async def _commit(uow: UnitOfWork, card: Card, change: CardChange, *,
                  expected_version: int | None = None) -> Card:
    """Store `change` if the card is still at the version the caller saw (409 otherwise).

    The version filter plus the transaction make concurrent writers safe: two agents
    moving the same card at version 3 — one commits version 4, the other gets 409.
    """
    _require_version(card, expected_version)
    cards = _repos(uow).cards
    updated = await cards.save_change(card, change, datetime.now(UTC), uow.session)
    if updated is None:
        STALE_VERSIONS.inc()
        raise card.changed_meanwhile(await cards.current_version(card.id, uow.session))
    return updated


async def _service_of(uow: UnitOfWork, card: Card) -> ServiceDefinition | None:
    if not card.service_id:
        return None
    return await _repos(uow).catalog.service(card.service_id, uow.session)


async def _updated(uow: UnitOfWork, card: Card, changed: tuple[str, ...]) -> None:
    await uow.emit(CardUpdated(card=card.snapshot(await _service_of(uow, card)),
                               changed=changed))


# --- create -------------------------------------------------------------------------------

async def create_from_request(uow: UnitOfWork, request: RequestReceived, *, prefix: str,
                              by: str = "system") -> Card:
    """Route a new request to its service's board/column/lane as a numbered card.

    The customer's text becomes the card's first public comment, authored by the
    customer (also when an agent typed it in for a customer who phoned: `by`).
    A follow-up of a closed request becomes a child of it, linked both ways.
    """
    repos = _repos(uow)
    # the same request delivered again: one card. Its event was processed once (the
    # processed-event record says so before this runs); only a request published again
    # under a new event id finds its card here — on a first delivery the card's unique
    # request_id catches that instead (this attempt fails, the redelivery reads)
    if not uow.first_delivery:
        existing = await repos.cards.card_by_request(request.request_id, uow.session)
        if existing is not None:
            return existing
    service = await repos.catalog.service(request.service_id, uow.session)
    if service is None:
        raise PermanentFailure(f"unknown service {request.service_id!r}")
    # the request's category (boards.automation) may route it and set type, priority, SLA
    service, category = await route_request(uow, service, request)
    board = await repos.catalog.board(service.target.board_id, uow.session)
    if board is None:
        raise PermanentFailure(f"service {service.id!r} targets missing board")
    column_of(board, service.target.column_id)  # a missing column fails before a number
    now = datetime.now(UTC)
    # Counters are taken outside the card's transaction: every new card increments the
    # same counter document, and inside concurrent transactions that one document made
    # them conflict and retry each other. A retried transaction may leave a gap in the
    # numbers (SD-41, SD-43); a number is never given twice.
    number = format_number(prefix, await repos.cards.next_counter(f"card-number:{prefix}"))
    assignee = None
    if service.assignment.kind != "none":
        turn = await repos.cards.next_counter(f"round-robin:{service.id}") - 1
        load = await repos.cards.open_load(list(service.assignment.agents), uow.session)
        assignee = choose_assignee(service.assignment, turn=turn, open_load=load)
    parent = None
    if request.follow_up_of:
        parent = await repos.cards.card(request.follow_up_of, uow.session)
        if parent is None:
            log.warning("card.follow_up_of_unknown", follow_up_of=request.follow_up_of)
    card_id = str(uuid.uuid4())
    card = Card.from_request(
        request, card_id=card_id, number=number, service=service, board=board,
        assignee=assignee, parent=parent, by=by, now=now,
        # The customer's language, never the service's: notify decides what to answer in.
        # Channels that do not say (the web API, agents' own cards) are judged by the text.
        language=request.language or detect_language(f"{request.subject}\n{request.text}"))
    stamp(card, category, request)
    board_priority = BoardRules(board).priority_for_level(card.priority)
    card.priority_key = stored_priority_key(board_priority) if board_priority else None
    # the customer's text is the card's first comment: written with the card, its words
    # already among the card's search keys
    comment = {
        "_id": str(uuid.uuid4()),
        "card_id": card.id,
        "visibility": "public",
        "author": {"kind": "customer", "id": request.requester.email, "name":
                   request.requester.name},
        "text": request.text,
        "attachments": card.attachments,
        "created_at": now,
        "request_id": request.request_id,
        "entered_by": by if by != "system" else None,
    }
    # nothing below reads the new card back: it is written with the transaction's (the
    # group's) other inserts — unless the service gives cards to the least loaded agent:
    # the next request of the same group counts this card in its agent's open load
    await repos.cards.add_card(card, uow, first_comment=comment,
                               read_back=service.assignment.kind == "least_loaded")
    # outside the transaction too (a hot document); a span wider than the cards is harmless
    await repos.cards.note_card_time(card.sort_key)
    uow.after_commit(CARD_CHANGES.labels("created").inc)
    # the first comment travels with the card (those who keep the conversation write it
    # from card.created): a comment.added of its own cost every consumer of comments a
    # delivery per request, for a text none of them but the portal acts on
    opening = OpeningComment(comment_id=comment["_id"], author=Author(**comment["author"]),
                             text=request.text, attachments=request.attachments, created_at=now)
    await uow.emit(CardCreated(
        card=card.snapshot(service), follow_up_of=request.follow_up_of,
        request=RequestOrigin(received_at=request.received_at, channel_ref=request.channel_ref,
                              text=excerpt(request.text), comment=opening)))
    if parent is not None:
        await _commit(uow, parent, parent.child_added(card, by=by, now=now))
        await uow.emit(CardLinked(parent_id=parent.id, child_id=card_id,
                                  parent_number=parent.number, child_number=number))
    return card


async def create_for_customer(uow: UnitOfWork, *, agent_id: str, service_id: str,
                              requester: Person, title: str, text: str, priority: str | None,
                              fields: dict[str, Any], due_date: str | None, prefix: str
                              ) -> Card:
    """A customer phoned: the agent files the request for them, the customer is its author."""
    service = await _repos(uow).catalog.service(service_id, uow.session)
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
        request_id=f"agent-{uuid.uuid4()}", channel=AGENT, service_id=service.id,
        requester=requester, subject=title, text=text, fields=cleaned,
        received_at=datetime.now(UTC), priority=priority, due_date=due_date,
        created_by_agent=agent_id,
    )
    return await create_from_request(uow, request, prefix=prefix, by=agent_id)


# --- move ---------------------------------------------------------------------------------

async def move(uow: UnitOfWork, card: Card, column_id: str, lane_id: str, *, by: str,
               expected_version: int | None = None, board: Mapping[str, Any] | None = None
               ) -> Card:
    """Move a card to another column/lane (WIP limit, history, version, card.moved)."""
    repos = _repos(uow)
    board = board or await repos.catalog.board(card.board_id, uow.session)
    await _children_allow_closing(uow, card, board, column_id)
    held = (await repos.cards.count_in_column(card.board_id, column_id, uow.session)
            if card.wip_applies(board, column_id) else None)
    try:
        change = card.move(board, column_id, lane_id, by=by, now=datetime.now(UTC),
                           held_in_column=held)
    except WipLimitReached:
        WIP_REFUSED.inc()
        raise
    if change is None:
        _require_version(card, expected_version)
        return card
    updated = await _commit(uow, card, change, expected_version=expected_version)
    uow.after_commit(CARD_CHANGES.labels("moved").inc)
    await uow.emit(CardMoved(card=updated.snapshot(await _service_of(uow, updated)),
                             from_column_id=card.column_id, from_lane_id=card.lane_id,
                             from_category=card.status_category, moved_by=by))
    await _tell_followers(uow, updated, by=by, change=_move_kind(card, updated))
    return updated


def _move_kind(before: Card, after: Card) -> str:
    """What a move means to someone following the card: closed, reopened or just moved."""
    if after.status_category == "done" and before.status_category != "done":
        return "closed"
    if before.status_category == "done" and after.status_category != "done":
        return "reopened"
    return "moved"


async def move_for_agent(uow: UnitOfWork, ref: str, agent: Agent, column_id: str,
                         lane_id: str | None, expected_version: int) -> Card:
    """An agent's move: the card and the target must exist on a board they see."""
    repos = _repos(uow)
    card = await visible_card(repos, ref, agent, uow.session)
    board = await repos.catalog.board(card.board_id, uow.session)
    if not any(c["id"] == column_id for c in board["columns"]):
        raise Invalid(f"board {board['_id']!r} has no column {column_id!r}")
    lane = lane_id or card.lane_id
    if not any(x["id"] == lane for x in board["lanes"]):
        raise Invalid(f"board {board['_id']!r} has no lane {lane!r}")
    return await move(uow, card, column_id, lane, by=agent.id,
                      expected_version=expected_version, board=board)


async def auto_close(uow: UnitOfWork, event: SlaAutoClose) -> None:
    """The customer never answered: move the card to the board's first done column."""
    repos = _repos(uow)
    card = await repos.cards.card(event.card_id, uow.session)
    if card is None:
        raise PermanentFailure(f"auto-close of unknown card {event.card_id!r}")
    if not card.waiting_for_customer:
        # The customer answered (or an agent moved it) after sla decided: keep it open.
        log.info("card.auto_close_skipped", card_id=card.id, category=card.status_category)
        return
    done = card.closing_column(await repos.catalog.board(card.board_id, uow.session))
    if done is None:
        raise PermanentFailure(f"board {card.board_id!r} has no done column")
    try:
        await move(uow, card, done["id"], card.lane_id, by="system")
    except ChildrenOpen:
        # the board's parents wait for their children: the customer's silence does not
        # close work still going on elsewhere
        log.info("card.auto_close_skipped", card_id=card.id, reason="children_open")


# --- assign -------------------------------------------------------------------------------

async def assign(uow: UnitOfWork, card: Card, assignee_id: str | None, *, by: str,
                 expected_version: int | None) -> Card:
    if card.assignee_id == assignee_id:
        return card
    agent = (await _repos(uow).agents.active_agent(assignee_id, uow.session)
             if assignee_id is not None else None)
    change = card.assign(assignee_id, agent, by=by, now=datetime.now(UTC))
    if change is None:
        return card
    updated = await _commit(uow, card, change, expected_version=expected_version)
    uow.after_commit(CARD_CHANGES.labels("assigned").inc)
    # an agent who gives a card to themselves needs no message about it
    contact = _contact(agent) if agent is not None and assignee_id != by else None
    await uow.emit(CardAssigned(card=updated.snapshot(await _service_of(uow, updated)),
                                previous_assignee_id=card.assignee_id, assignee=contact,
                                assigned_by=await _name_of(uow, by)))
    await _tell_followers(uow, updated, by=by, besides={assignee_id}, change="assigned")
    return updated


# --- edit fields --------------------------------------------------------------------------

async def edit(uow: UnitOfWork, card: Card, changes: dict[str, Any], *, by: str,
               expected_version: int, can_see_board: Callable[[str], bool]) -> Card:
    """Set title, priority, service, due date, tags, checklist, type or custom fields.

    `can_see_board` is the acting agent's board membership: a card may only be given a
    service whose board the agent belongs to, as creating a card there would require.
    """
    catalog = _repos(uow).catalog
    rules = BoardRules(await catalog.board(card.board_id, uow.session))
    if {"priority_key", "priority", "type"} & changes.keys():
        changes = _board_choices(rules, card, changes)
    if "label_ids" in changes or "labels" in changes:
        changes = _labels_chosen(rules, changes)
    if "service_id" in changes and changes["service_id"] != card.service_id:
        service = await catalog.service(changes["service_id"], uow.session)
        # the same answer for "no such service" and "not on your boards": nothing is revealed
        if service is None or not can_see_board(service.target.board_id):
            raise Invalid(f"no service {changes['service_id']!r} on your boards")
    if "fields" in changes:
        service_id = changes.get("service_id") or card.service_id
        service = await catalog.service(service_id, uow.session) if service_id else None
        changes = {**changes, "fields": checked_fields(
            rules, changes.get("type") or card.type, service, card.merged_fields(
                changes["fields"]), given=changes["fields"])}
    change = card.edit(changes, by=by, now=datetime.now(UTC))
    if change is None:
        _require_version(card, expected_version)
        return card
    updated = await _commit(uow, card, change, expected_version=expected_version)
    uow.after_commit(CARD_CHANGES.labels("updated").inc)
    await _updated(uow, updated, tuple(sorted(change.sets)))
    if {"priority", "priority_key"} & change.sets.keys():
        await _tell_followers(uow, updated, by=by, change="priority")
    return updated


# --- comment ------------------------------------------------------------------------------

async def comment(uow: UnitOfWork, card: Card, *, agent_id: str, agent_name: str,
                  text: str | None, visibility: str, canned_response_id: str | None,
                  attachments: tuple[AttachmentRef, ...] = ()) -> dict:
    """An agent's public answer (reaches the customer) or internal note (never leaves boards)."""
    repos = _repos(uow)
    if canned_response_id:
        canned = await repos.catalog.canned_response(canned_response_id, uow.session)
        if canned is None or canned.get("service_id") not in (None, card.service_id):
            raise NotFound(f"no canned response {canned_response_id!r} for this card's service")
        filled = render_canned(canned["text"], card.to_document(), agent_name)
        text = f"{filled}\n\n{text}" if text else filled
    if not text or not text.strip():
        raise Invalid("a comment needs text or a canned response")
    if visibility == "public" and card.is_task:
        raise Invalid("a task has no customer to answer; add an internal note",
                      details={"visibility": "tasks take internal notes only"})
    now = datetime.now(UTC)
    # who a note names (@handle or @display name) among those who see the board
    board_agents = (await repos.agents.agents_seeing_board(card.board_id, uow.session)
                    if visibility == "internal" and "@" in text else [])
    mentions = find_mentions(text, [(a["_id"], a.get("name")) for a in board_agents])
    added = {
        "_id": str(uuid.uuid4()),
        "card_id": card.id,
        "visibility": visibility,
        "author": {"kind": "agent", "id": agent_id, "name": agent_name},
        "text": text,
        "attachments": [a.model_dump(mode="json") for a in attachments],
        "created_at": now,
        "canned_response_id": canned_response_id,
        "mentions": [m.as_document() for m in mentions],
    }
    await repos.cards.add_comment(added, uow.session)
    commented = await _commit(uow, card, card.commented(by=agent_id, visibility=visibility,
                                                        comment_id=added["_id"], now=now))
    uow.after_commit(CARD_CHANGES.labels(f"comment_{visibility}").inc)
    await uow.emit(CommentAdded(
        comment_id=added["_id"], card_id=card.id, number=card.number,
        visibility=visibility, author=Author(**added["author"]),
        text=text if visibility == "public" else None,
        attachments=attachments if visibility == "public" else (), created_at=now,
    ))
    told: set[str] = set()
    if visibility == "internal":
        told = await _tell_mentioned(uow, commented, mentions, board_agents, by=agent_id,
                                     by_name=agent_name, comment_id=added["_id"])
    # a follower named in the note has its mention: one message per change
    await _tell_followers(uow, commented, by=agent_id, besides=told,
                          change="internal_note" if visibility == "internal" else "agent_reply",
                          comment_id=added["_id"])
    return added


async def customer_reply(uow: UnitOfWork, reply: ReplyReceived) -> None:
    """A customer wrote on an existing request: a public comment and the unread signal."""
    repos = _repos(uow)
    card = await repos.cards.card(reply.card_id, uow.session)
    if card is None:
        raise PermanentFailure(f"reply to unknown card {reply.card_id!r}")
    if await repos.cards.reply_recorded(reply.reply_id, uow.session):
        return
    now = datetime.now(UTC)
    added = {
        "_id": str(uuid.uuid4()),
        "card_id": card.id,
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
    await repos.cards.add_comment(added, uow.session)
    replied = await _commit(uow, card, card.customer_replied(now))
    await uow.emit(CommentAdded(
        comment_id=added["_id"], card_id=card.id, number=card.number,
        visibility="public", author=Author(**added["author"]), text=reply.text,
        attachments=reply.attachments, created_at=now, reply_id=reply.reply_id,
    ))
    await _tell_followers(uow, replied, by="customer", change="customer_reply",
                          by_name=reply.author.name or reply.author.email or None,
                          comment_id=added["_id"])


async def mark_read(uow: UnitOfWork, card: Card, *, by: str) -> Card:
    change = card.mark_read(by=by, now=datetime.now(UTC))
    if change is None:
        return card
    updated = await _commit(uow, card, change)
    await _updated(uow, updated, ("unread_customer_reply",))
    return updated


# --- link follow-ups ----------------------------------------------------------------------

async def link(uow: UnitOfWork, parent: Card, child: Card, *, by: str) -> Card:
    """Make `child` a child of `parent` (also across boards); both cards list the link."""
    ancestors = await _repos(uow).cards.ancestors(parent.id, uow.session)
    changes = parent.adopt(child, by=by, now=datetime.now(UTC), ancestors=ancestors)
    if changes is None:
        return parent
    child_change, parent_change = changes
    await _commit(uow, child, child_change)
    updated = await _commit(uow, parent, parent_change)
    uow.after_commit(CARD_CHANGES.labels("linked").inc)
    await uow.emit(CardLinked(parent_id=parent.id, child_id=child.id,
                              parent_number=parent.number, child_number=child.number))
    return updated


# --- rate ---------------------------------------------------------------------------------

async def rate(uow: UnitOfWork, rated: RequestRated) -> None:
    """Keep the customer's rating (and comment) on the card; a later rating replaces it."""
    card = await _repos(uow).cards.card(rated.card_id, uow.session)
    if card is None:
        raise PermanentFailure(f"rating for unknown card {rated.card_id!r}")
    change = card.rate(score=rated.rating, comment=rated.comment, rated_at=rated.rated_at,
                       rated_by=rated.rated_by, now=datetime.now(UTC))
    if change is None:
        return  # an older rating arriving late changes nothing
    await _updated(uow, await _commit(uow, card, change), ("rating",))


# --- SLA display --------------------------------------------------------------------------

async def show_sla_signal(uow: UnitOfWork, event, state: str) -> None:
    """Show an sla.warning/breached/met on the card (per target), filterable by `sla=`.

    No card event is emitted: the signal already is an event on the bus, and echoing it
    back as card.updated would feed sla its own output.
    """
    card = await _repos(uow).cards.card(event.card_id, uow.session)
    if card is None:
        raise PermanentFailure(f"SLA signal for unknown card {event.card_id!r}")
    change = card.sla_signal(event.target, state, event.deadline, event.at, event.policy,
                             now=datetime.now(UTC))
    if change is not None:
        await _commit(uow, card, change)


async def show_sla_clock(uow: UnitOfWork, event: SlaClockChanged) -> None:
    """Keep the card's SLA deadlines current so the board shows time left from the start.

    The event carries every clock of its change (`clocks`; a publisher that predates it
    sends only its own target's), so the first event of a change shows them all and the
    others find nothing new: one card write per change, however many clocks it moved."""
    cards = _repos(uow).cards
    card = await cards.card(event.card_id, uow.session)
    if card is None:
        raise PermanentFailure(f"SLA clock for unknown card {event.card_id!r}")
    faces = {target: (face.clock, face.deadline) for target, face in event.clocks.items()}
    faces[event.target] = (event.clock, event.deadline)
    change = card.sla_clock(faces, event.at, event.policy)
    if change is not None:
        await cards.show(card.id, change, uow.session)


# --- board choices: types and priorities --------------------------------------------------

def _board_choices(rules: BoardRules, card: Card, changes: dict[str, Any]) -> dict[str, Any]:
    """A type and a priority must be the board's own; a priority sets its level too."""
    changes = dict(changes)
    if "type" in changes:
        card_type = rules.card_type(changes["type"])
        if card_type is None:
            raise Invalid(f"board {rules.id!r} has no card type {changes['type']!r}",
                          details={"type": "not one of the board's card types"})
        if bool(card_type.get("customer_request")) == card.is_task:
            raise Invalid(f"type {changes['type']!r} is for "
                          f"{'customer requests' if card.is_task else 'internal tasks'}",
                          details={"type": "a task and a request keep their kind"})
    if "priority_key" in changes:
        priority = rules.priority(changes["priority_key"])
        if priority is None:
            raise Invalid(f"board {rules.id!r} has no priority {changes['priority_key']!r}",
                          details={"priority_key": "not one of the board's priorities"})
        changes["priority"] = priority["level"]
        changes["priority_key"] = stored_priority_key(priority)
    elif "priority" in changes:
        priority = rules.priority_for_level(changes["priority"])
        changes["priority_key"] = stored_priority_key(priority) if priority else None
    return changes


def _labels_chosen(rules: BoardRules, changes: dict[str, Any]) -> dict[str, Any]:
    """Labels from the board's list (by id, or by name in any case); a board without a list
    takes free labels by name, as before lists existed."""
    changes = dict(changes)
    wanted = ([{"id": i} for i in changes.pop("label_ids")] if "label_ids" in changes
              and changes["label_ids"] is not None else changes.get("labels") or [])
    changes.pop("label_ids", None)
    chosen, unknown = rules.chosen_labels(wanted)
    if unknown:
        raise Invalid(f"board {rules.id!r} has no label {', '.join(unknown)}",
                      details={"labels": f"not on the board's label list: {', '.join(unknown)}"})
    changes["labels"] = chosen
    return changes


def checked_fields(rules: BoardRules, card_type: str | None,
                   service: ServiceDefinition | None, merged: dict[str, Any], *,
                   given: Mapping[str, Any], require: bool = True) -> dict[str, Any]:
    """A card's custom fields after an edit, each checked by its type: the board's typed
    fields (of the card's type) by the board, the rest by the request's service form.
    On a board with typed fields a task cannot gain a key the board does not define.
    Raises 422 with one message per wrong field, by its key. `require=False` (a new task:
    made quickly, its details filled in on the card) checks types but not required fields."""
    own = rules.custom_fields(card_type)
    if not require:
        own = [f.model_copy(update={"required": False}) for f in own]
    own_keys = {f.key for f in own}
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    try:
        cleaned |= validate_answers(own, {k: v for k, v in merged.items() if k in own_keys})
    except FieldErrors as exc:
        errors |= exc.errors
    rest = {k: v for k, v in merged.items() if k not in own_keys}
    if service is not None:
        try:
            cleaned |= validate_fields(service, rest)
        except FieldErrors as exc:
            errors |= exc.errors
    else:
        cleaned |= rest
        if own:
            errors |= {k: "is not a field of this board" for k, v in given.items()
                       if k not in own_keys and v is not None}
    if errors:
        raise Invalid("some fields are invalid", details={"fields": errors})
    return cleaned


# --- the closing rule -----------------------------------------------------------------------

class ChildrenOpen(Conflict):
    code = "children_open"


async def _children_allow_closing(uow: UnitOfWork, card: Card, board: Mapping[str, Any],
                                  column_id: str) -> None:
    """Where the board says so, a parent reaches done only after all its children."""
    if card.status_category == "done" or not BoardRules(board).parent_waits_for_children:
        return
    if column_of(board, column_id)["category"] != "done":
        return
    open_children = [n for n, category in await _repos(uow).cards.children_of(
        card.id, uow.session) if category != "done"]
    if open_children:
        raise ChildrenOpen(
            f"{card.number} waits for its children: {', '.join(open_children)} still open",
            details={"open_children": open_children})


# --- tasks and child cards ------------------------------------------------------------------

async def create_task(uow: UnitOfWork, agent: Agent, *, board_id: str, title: str,
                      text: str | None, card_type: str | None, priority_key: str | None,
                      fields: dict[str, Any], due_date: str | None, assignee_id: str | None,
                      column_id: str | None, lane_id: str | None, prefix: str,
                      parent: Card | None = None) -> Card:
    """Internal work on a board the agent belongs to: no requester, so no customer message
    and no portal row; an SLA clock only when its type names a policy."""
    repos = _repos(uow)
    board = await repos.catalog.board(board_id, uow.session) if agent.can_see_board(
        board_id) else None
    if board is None:
        raise Invalid(f"no board {board_id!r} among yours", details={"board_id": "unknown"})
    rules = BoardRules(board)
    chosen_type = rules.card_type(card_type) if card_type else rules.task_type()
    if chosen_type is None or chosen_type.get("customer_request"):
        raise Invalid(f"board {board_id!r} has no task type {card_type!r}",
                      details={"type": "not one of the board's internal card types"})
    priority = (rules.priority(priority_key) if priority_key
                else rules.priority_for_level("medium") or rules.priorities[0])
    if priority is None:
        raise Invalid(f"board {board_id!r} has no priority {priority_key!r}",
                      details={"priority_key": "not one of the board's priorities"})
    column_id = column_id or board["columns"][0]["id"]
    lane_id = lane_id or board["lanes"][0]["id"]
    if not any(c["id"] == column_id for c in board["columns"]):
        raise Invalid(f"board {board_id!r} has no column {column_id!r}")
    if not any(x["id"] == lane_id for x in board["lanes"]):
        raise Invalid(f"board {board_id!r} has no lane {lane_id!r}")
    fields = checked_fields(rules, chosen_type["id"], None,
                            {**(chosen_type.get("fields") or {}), **fields}, given=fields,
                            require=False)
    if assignee_id is not None:
        assignee = await repos.agents.active_agent(assignee_id, uow.session)
        if assignee is None or not Agent.from_document(assignee).can_see_board(board_id):
            raise Invalid(f"agent {assignee_id!r} is not a member of board {board_id!r}",
                          details={"assignee_id": "not a member of the board"})
    now = datetime.now(UTC)
    number = format_number(prefix, await repos.cards.next_counter(f"card-number:{prefix}"))
    card = Card.new_task(
        card_id=str(uuid.uuid4()), number=number, title=title, board=board,
        column_id=column_id, lane_id=lane_id, card_type=chosen_type, priority=priority,
        fields=fields, due_date=due_date, assignee=assignee_id, parent=parent, by=agent.id,
        now=now)
    await repos.cards.add_card(card, uow)
    await repos.cards.note_card_time(card.sort_key)
    uow.after_commit(CARD_CHANGES.labels("task_created").inc)
    await uow.emit(CardCreated(card=card.snapshot(None)))
    if parent is not None:
        await _commit(uow, parent, parent.child_added(card, by=agent.id, now=now))
        await uow.emit(CardLinked(parent_id=parent.id, child_id=card.id,
                                  parent_number=parent.number, child_number=number))
    if text and text.strip():
        await comment(uow, await repos.cards.card(card.id, uow.session), agent_id=agent.id,
                      agent_name=agent.name, text=text, visibility="internal",
                      canned_response_id=None)
    if assignee_id is not None and assignee_id != agent.id:
        contact = _contact(await repos.agents.active_agent(assignee_id, uow.session))
        await uow.emit(CardAssigned(card=card.snapshot(None), previous_assignee_id=None,
                                    assignee=contact, assigned_by=agent.name))
    return await repos.cards.card(card.id, uow.session)


async def create_child(uow: UnitOfWork, parent: Card, agent: Agent, **task: Any) -> Card:
    """A task on (usually) another board, linked as the parent's child; the parent shows
    how many of its children are done."""
    return await create_task(uow, agent, parent=parent, **task)


async def children_progress(repos: Repositories, card: Card) -> dict[str, Any] | None:
    """Done of total over the card's children, with each child's state (None: no children)."""
    if not any(link["kind"] == "child" for link in card.links):
        return None
    rows = await repos.cards.children_of(card.id)
    return {"done": sum(1 for _, c in rows if c == "done"), "total": len(rows),
            "open": [n for n, c in rows if c != "done"]}


# --- moves between boards -------------------------------------------------------------------

async def transfer(uow: UnitOfWork, card: Card, agent: Agent, *, board_id: str,
                   column_id: str | None, lane_id: str | None, expected_version: int) -> Card:
    """Move a card to another board the agent belongs to, if that board takes it."""
    repos = _repos(uow)
    if board_id == card.board_id:
        raise Invalid("the card is on that board already; move it between columns instead",
                      details={"board_id": "the card's own board"})
    board = await repos.catalog.board(board_id, uow.session) if agent.can_see_board(
        board_id) else None
    if board is None:
        raise Invalid(f"no board {board_id!r} among yours", details={"board_id": "unknown"})
    try:
        BoardRules(board).refusal(card_type=card.type,
                                  kind="task" if card.is_task else "request",
                                  from_board=card.board_id)
    except TransferRefused as exc:
        TRANSFERS_REFUSED.labels(exc.code).inc()
        raise TransferNotAccepted(exc.reason, details={"rule": exc.code}) from None
    column_id = column_id or board["columns"][0]["id"]
    lane_id = lane_id or board["lanes"][0]["id"]
    if not any(c["id"] == column_id for c in board["columns"]):
        raise Invalid(f"board {board_id!r} has no column {column_id!r}")
    if not any(x["id"] == lane_id for x in board["lanes"]):
        raise Invalid(f"board {board_id!r} has no lane {lane_id!r}")
    limit = column_of(board, column_id).get("wip_limit")
    held = (await repos.cards.count_in_column(board_id, column_id, uow.session)
            if limit else None)
    try:
        change = card.transfer(board, column_id, lane_id, by=agent.id, now=datetime.now(UTC),
                               held_in_column=held)
    except WipLimitReached:
        WIP_REFUSED.inc()
        raise
    updated = await _commit(uow, card, change, expected_version=expected_version)
    uow.after_commit(CARD_CHANGES.labels("transferred").inc)
    await uow.emit(CardMoved(card=updated.snapshot(await _service_of(uow, updated)),
                             from_column_id=card.column_id, from_lane_id=card.lane_id,
                             from_category=card.status_category, moved_by=agent.id,
                             from_board_id=card.board_id))
    await _tell_followers(uow, updated, by=agent.id, change="moved")
    return updated


class TransferNotAccepted(Conflict):
    code = "transfer_refused"


# --- blockers, people, requester ------------------------------------------------------------

async def block(uow: UnitOfWork, card: Card, agent: Agent, *, reason: str | None,
                blocked_by: str | None, expected_version: int | None) -> Card:
    """Blocked by another card the agent can see, or by a reason."""
    if bool(reason and reason.strip()) == bool(blocked_by):
        raise Invalid("give a reason or the blocking card, one of them",
                      details={"reason": "reason or blocked_by"})
    by_card = (await visible_card(_repos(uow), blocked_by, agent, uow.session)
               if blocked_by else None)
    change = card.block(blocker_id=uuid.uuid4().hex[:12], reason=reason, by_card=by_card,
                        by=agent.id, now=datetime.now(UTC))
    updated = await _commit(uow, card, change, expected_version=expected_version)
    uow.after_commit(CARD_CHANGES.labels("blocked").inc)
    await _updated(uow, updated, ("blockers",))
    return updated


async def unblock(uow: UnitOfWork, card: Card, blocker_id: str, *, by: str) -> Card:
    updated = await _commit(uow, card, card.unblock(blocker_id, by=by, now=datetime.now(UTC)))
    uow.after_commit(CARD_CHANGES.labels("unblocked").inc)
    await _updated(uow, updated, ("blockers",))
    return updated


async def set_participants(uow: UnitOfWork, card: Card, members: list[str], *, by: str,
                           expected_version: int | None) -> Card:
    """Participants are agents of the card's board (they see it and may be @named)."""
    agents = _repos(uow).agents
    for member in members:
        doc = await agents.active_agent(member, uow.session)
        if doc is None or not Agent.from_document(doc).can_see_board(card.board_id):
            raise Invalid(f"agent {member!r} is not a member of board {card.board_id!r}",
                          details={"members": f"{member} is not on the board"})
    change = card.participants_set(members, by=by, now=datetime.now(UTC))
    if change is None:
        return card
    updated = await _commit(uow, card, change, expected_version=expected_version)
    await _updated(uow, updated, ("members",))
    return updated


async def follow(uow: UnitOfWork, card: Card, agent: Agent, on: bool) -> Card:
    change = card.follow(agent.id, on, now=datetime.now(UTC))
    if change is None:
        return card
    return await _commit(uow, card, change)


async def change_requester(uow: UnitOfWork, card: Card, requester: Person, *, by: str,
                           expected_version: int) -> Card:
    """The request now belongs to `requester`: the portal moves it from the old requester's
    list to the new one's (card.updated carries both)."""
    change = card.change_requester(requester.model_dump(mode="json"), by=by,
                                   now=datetime.now(UTC))
    if change is None:
        _require_version(card, expected_version)
        return card
    updated = await _commit(uow, card, change, expected_version=expected_version)
    uow.after_commit(CARD_CHANGES.labels("requester_changed").inc)
    previous = Person.model_validate(card.requester) if card.requester else None
    await uow.emit(CardUpdated(card=updated.snapshot(await _service_of(uow, updated)),
                               changed=("requester",), previous_requester=previous))
    return updated


# --- mentions -------------------------------------------------------------------------------

async def _name_of(uow: UnitOfWork, agent_id: str) -> str:
    """How a message names the agent who acted (their id when they have no record)."""
    doc = await _repos(uow).agents.active_agent(agent_id, uow.session)
    return (doc or {}).get("name") or agent_id


def _contact(doc: Mapping[str, Any] | None) -> AgentContact | None:
    if doc is None or not (doc.get("email") or doc.get("slack_webhook_url")):
        return None
    return AgentContact(agent_id=doc["_id"], name=doc.get("name"), email=doc.get("email"),
                        slack_webhook_url=doc.get("slack_webhook_url"),
                        language=doc.get("language") or "en")


async def _tell_mentioned(uow: UnitOfWork, card: Card, mentions: list[Mention],
                          board_agents: list[dict[str, Any]], *, by: str, by_name: str,
                          comment_id: str) -> set[str]:
    """Each agent a note names (who sees the card's board) hears of it, not its writer;
    returns who was named. A name that is nobody on the board stayed plain text."""
    docs = {a["_id"]: a for a in board_agents}
    named = {a for a in mentioned_agents(mentions) if a != by}
    for agent_id in sorted(named, key=mentioned_agents(mentions).index):
        contact = _contact(docs[agent_id])
        uow.after_commit(MENTIONS.labels("told" if contact else "no_contact").inc)
        if contact is not None:
            await uow.emit(CardMentioned(card=card.snapshot(await _service_of(uow, card)),
                                         agent=contact, by=by_name, comment_id=comment_id))
    return named


async def _tell_followers(uow: UnitOfWork, card: Card, *, by: str, change: str,
                          besides: set[str | None] = frozenset(), by_name: str | None = None,
                          comment_id: str | None = None) -> None:
    """Followers hear every change to a card they follow (one message each), never of
    their own; `besides` already heard of it otherwise (the new assignee, those named)."""
    followers = [f for f in card.followers if f != by and f not in besides]
    if not followers:
        return
    agents = _repos(uow).agents
    snapshot = card.snapshot(await _service_of(uow, card))
    who = by_name or await _name_of(uow, by)
    for follower in followers:
        contact = _contact(await agents.active_agent(follower, uow.session))
        if contact is not None:
            uow.after_commit(FOLLOWER_NOTICES.labels(change).inc)
            await uow.emit(CardMentioned(card=snapshot, agent=contact,
                                         reason="followed_change", by=who, change=change,
                                         comment_id=comment_id))
