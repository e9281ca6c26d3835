"""Agents' card API: list with filters and cursors, get, create, move, assign, edit, comment."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from desk_runtime.http import Invalid, NotFound
from fastapi import APIRouter, Depends, Query, Request, Response

from boards.api import schemas
from boards.application import cards as card_ops
from boards.auth import Agent, current_agent
from boards.domain.board import BoardRules
from boards.domain.card import Card
from boards.domain.cards import decode_cursor, encode_cursor, query_terms
from boards.metrics import ACCESS_DENIED
from boards.repository import UNASSIGNED, CardListSpec, Repositories

router = APIRouter(prefix="/v1", tags=["cards"])


def _repos(request: Request) -> Repositories:
    return Repositories.of(request.app.state.runtime.db)


def card_view(card: Card, *, with_history: bool = False,
              board: Mapping[str, Any] | None = None) -> dict:
    """A card as the API (and the workspace's card page) shows it; with its board, the
    labels by their current name and colour."""
    out = {k: v for k, v in card.to_document().items()
           if k not in ("_id", "history", "search_terms", "sort_key")}
    out["id"] = card.id
    out["column_entered_at"] = card.time_in_column_from
    out["time_in_column_seconds"] = max(0, int((datetime.now(UTC) - card.time_in_column_from)
                                               .total_seconds()))
    out["sla"] = card.sla
    out["blocked"] = card.blocked
    out["priority_key"] = card.priority_key or card.priority  # the board's id for it
    if board is not None:
        out["labels"] = BoardRules(board).shown_labels(card.labels)
    if with_history:
        out["history"] = card.history
    return out


async def full_view(repos: Repositories, card: Card) -> dict:
    """The single card: with its history and how far its children are."""
    return await changed_view(repos, card) | {
        "children": await card_ops.children_progress(repos, card)}


async def changed_view(repos: Repositories, card: Card) -> dict:
    """A card with its history, as a change answers it."""
    return card_view(card, with_history=True, board=await repos.catalog.board(card.board_id))


async def board_views(repos: Repositories, cards: list[Card]) -> list[dict]:
    """A list's cards, each with its board's labels (boards are cached configuration)."""
    boards: dict[str, Any] = {}
    for board_id in {c.board_id for c in cards}:
        boards[board_id] = await repos.catalog.board(board_id)
    return [card_view(c, board=boards.get(c.board_id)) for c in cards]


async def _transact(request: Request, work):
    runtime = request.app.state.runtime
    return await runtime.transact(work, correlation_id=request.state.correlation_id)


@router.get("/cards", response_model=schemas.CardPage)
async def list_cards(
    request: Request,
    agent: Agent = Depends(current_agent),
    board: str | None = Query(None),
    lane: str | None = Query(None),
    column: str | None = Query(None),
    assignee: str | None = Query(None, description="`me`, `none` or an agent id"),
    service: str | None = Query(None),
    priority: Literal["low", "medium", "high", "critical"] | None = Query(None),
    sla: Literal["warning", "breached"] | None = Query(None),
    q: str | None = Query(None, max_length=200, description="whole words of title, "
                          "number, requester name or e-mail"),
    request_id: str | None = Query(None),
    cursor: str | None = Query(None),
    limit: int = Query(50, ge=1, le=200),
) -> dict:
    repos = _repos(request)
    if board is not None:
        if not agent.can_see_board(board):
            ACCESS_DENIED.labels("other_board").inc()
            raise NotFound("no such board")
        scope: str | list[str] = board
    elif agent.role == "admin":
        scope = [b["_id"] for b in await repos.catalog.list_boards()]
    else:
        scope = sorted(agent.boards)
    after = None
    if cursor:
        try:
            after = decode_cursor(cursor)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    if assignee is not None:
        assignee = {"me": agent.id, "none": UNASSIGNED}.get(assignee, assignee)
    spec = CardListSpec.build(
        boards=scope, after=after, terms=query_terms(q) if q else None, lane_id=lane,
        column_id=column, assignee_id=assignee, service_id=service, priority=priority,
        sla_state=sla, request_id=request_id)
    rows = await repos.cards.list_cards(spec, limit + 1)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].sort_key) if len(rows) > limit else None
    return {"items": await board_views(repos, page), "next_cursor": next_cursor}


@router.get("/cards/{card_ref}", response_model=schemas.Card)
async def get_card(card_ref: str, request: Request, agent: Agent = Depends(current_agent)
                   ) -> dict:
    repos = _repos(request)
    card = await card_ops.visible_card(repos, card_ref, agent)
    return await full_view(repos, card)


@router.post("/cards", response_model=schemas.Card, status_code=201)
async def create_card(body: schemas.NewCard, request: Request,
                      agent: Agent = Depends(current_agent)) -> dict:
    """File a request on behalf of a customer; the customer is the author of its text."""
    service = await _repos(request).catalog.service(body.service_id)
    if service is None or not agent.can_see_board(service.target.board_id):
        raise Invalid(f"no service {body.service_id!r} on your boards")
    settings = request.app.state.settings
    card = await _transact(request, lambda uow: card_ops.create_for_customer(
        uow, agent_id=agent.id, service_id=body.service_id, requester=body.requester,
        title=body.title, text=body.text, priority=body.priority, fields=body.fields,
        due_date=body.due_date, prefix=settings.card_prefix))
    return await changed_view(_repos(request), card)


@router.post("/cards/{card_ref}/move", response_model=schemas.Card)
async def move(card_ref: str, body: schemas.MoveCard, request: Request,
               agent: Agent = Depends(current_agent)) -> dict:
    return await changed_view(_repos(request), await _transact(
        request, lambda uow: card_ops.move_for_agent(uow, card_ref, agent, body.column_id,
                                                     body.lane_id, body.version)))


async def _on_visible(request: Request, card_ref: str, agent: Agent, operation):
    """Run `operation(uow, card)` in one transaction on a card the agent may see."""
    async def work(uow):
        card = await card_ops.visible_card(_repos(request), card_ref, agent, uow.session)
        return await operation(uow, card)
    return await _transact(request, work)


@router.post("/cards/{card_ref}/assign", response_model=schemas.Card)
async def assign(card_ref: str, body: schemas.AssignCard, request: Request,
                 agent: Agent = Depends(current_agent)) -> dict:
    card = await _on_visible(request, card_ref, agent, lambda uow, card: card_ops.assign(
        uow, card, body.assignee_id, by=agent.id, expected_version=body.version))
    return await changed_view(_repos(request), card)


@router.patch("/cards/{card_ref}", response_model=schemas.Card)
async def patch(card_ref: str, body: schemas.PatchCard, request: Request,
                agent: Agent = Depends(current_agent)) -> dict:
    changes = body.model_dump(mode="json", exclude_unset=True)
    version = changes.pop("version")
    card = await _on_visible(request, card_ref, agent, lambda uow, card: card_ops.edit(
        uow, card, changes, by=agent.id, expected_version=version,
        can_see_board=agent.can_see_board))
    return await changed_view(_repos(request), card)


@router.post("/cards/{card_ref}/comments", response_model=schemas.Comment, status_code=201)
async def comment(card_ref: str, body: schemas.NewComment, request: Request,
                  agent: Agent = Depends(current_agent)) -> dict:
    added = await _on_visible(request, card_ref, agent, lambda uow, card: card_ops.comment(
        uow, card, agent_id=agent.id, agent_name=agent.name, text=body.text,
        visibility=body.visibility, canned_response_id=body.canned_response_id,
        attachments=tuple(body.attachments)))
    return _comment_view(added)


@router.get("/cards/{card_ref}/comments", response_model=schemas.CommentList)
async def comments(card_ref: str, request: Request, agent: Agent = Depends(current_agent)
                   ) -> dict:
    repos = _repos(request)
    card = await card_ops.visible_card(repos, card_ref, agent)
    return {"items": [_comment_view(c) for c in await repos.cards.comments_of(card.id)]}


@router.post("/cards/{card_ref}/read", response_model=schemas.Card)
async def mark_read(card_ref: str, request: Request, agent: Agent = Depends(current_agent)
                    ) -> dict:
    card = await _on_visible(request, card_ref, agent,
                             lambda uow, card: card_ops.mark_read(uow, card, by=agent.id))
    return await changed_view(_repos(request), card)


@router.post("/cards/{card_ref}/links", response_model=schemas.Card, status_code=201)
async def link(card_ref: str, body: schemas.NewLink, request: Request, response: Response,
               agent: Agent = Depends(current_agent)) -> dict:
    """Make `child` a child of this card; both must be on boards you can see."""
    async def work(uow):
        repos = _repos(request)
        parent = await card_ops.visible_card(repos, card_ref, agent, uow.session)
        child = await card_ops.visible_card(repos, body.child, agent, uow.session)
        return await card_ops.link(uow, parent, child, by=agent.id)
    return await changed_view(_repos(request), await _transact(request, work))


def _comment_view(comment: dict) -> dict:
    out = {k: v for k, v in comment.items() if k != "_id"}
    out["id"] = comment["_id"]
    return out


# --- internal work, other boards, blockers, people ------------------------------------------

def _task_args(body: schemas.NewTask, request: Request) -> dict:
    return {"board_id": body.board_id, "title": body.title, "text": body.text,
            "card_type": body.type, "priority_key": body.priority_key, "fields": body.fields,
            "due_date": body.due_date, "assignee_id": body.assignee_id,
            "column_id": body.column_id, "lane_id": body.lane_id,
            "prefix": request.app.state.settings.card_prefix}


@router.post("/tasks", response_model=schemas.Card, status_code=201)
async def create_task(body: schemas.NewTask, request: Request,
                      agent: Agent = Depends(current_agent)) -> dict:
    """Internal work on one of your boards: no requester, never a customer message."""
    card = await _transact(request, lambda uow: card_ops.create_task(
        uow, agent, **_task_args(body, request)))
    return await full_view(_repos(request), card)


@router.post("/cards/{card_ref}/children", response_model=schemas.Card, status_code=201)
async def create_child(card_ref: str, body: schemas.NewTask, request: Request,
                       agent: Agent = Depends(current_agent)) -> dict:
    """A child task (e.g. one per department) on any of your boards; returns the child."""
    card = await _on_visible(request, card_ref, agent, lambda uow, parent: card_ops.create_child(
        uow, parent, agent, **_task_args(body, request)))
    return await full_view(_repos(request), card)


@router.post("/cards/{card_ref}/transfer", response_model=schemas.Card)
async def transfer(card_ref: str, body: schemas.TransferCard, request: Request,
                   agent: Agent = Depends(current_agent)) -> dict:
    """Move the card to another of your boards (409 `transfer_refused` with the reason when
    that board's rules keep it out); history, links and SLA record stay."""
    card = await _on_visible(request, card_ref, agent, lambda uow, card: card_ops.transfer(
        uow, card, agent, board_id=body.board_id, column_id=body.column_id,
        lane_id=body.lane_id, expected_version=body.version))
    return await full_view(_repos(request), card)


@router.post("/cards/{card_ref}/blockers", response_model=schemas.Card, status_code=201)
async def block(card_ref: str, body: schemas.NewBlocker, request: Request,
                agent: Agent = Depends(current_agent)) -> dict:
    card = await _on_visible(request, card_ref, agent, lambda uow, card: card_ops.block(
        uow, card, agent, reason=body.reason, blocked_by=body.blocked_by,
        expected_version=body.version))
    return await full_view(_repos(request), card)


@router.delete("/cards/{card_ref}/blockers/{blocker_id}", response_model=schemas.Card)
async def unblock(card_ref: str, blocker_id: str, request: Request,
                  agent: Agent = Depends(current_agent)) -> dict:
    card = await _on_visible(request, card_ref, agent, lambda uow, card: card_ops.unblock(
        uow, card, blocker_id, by=agent.id))
    return await full_view(_repos(request), card)


@router.put("/cards/{card_ref}/participants", response_model=schemas.Card)
async def participants(card_ref: str, body: schemas.Participants, request: Request,
                       agent: Agent = Depends(current_agent)) -> dict:
    card = await _on_visible(request, card_ref, agent, lambda uow, card: card_ops.set_participants(
        uow, card, body.members, by=agent.id, expected_version=body.version))
    return await full_view(_repos(request), card)


@router.put("/cards/{card_ref}/following", response_model=schemas.Card)
async def following(card_ref: str, body: schemas.Follow, request: Request,
                    agent: Agent = Depends(current_agent)) -> dict:
    """Follow a card (or stop): followers are told when it moves or is assigned."""
    card = await _on_visible(request, card_ref, agent,
                             lambda uow, card: card_ops.follow(uow, card, agent, body.following))
    return await full_view(_repos(request), card)


@router.put("/cards/{card_ref}/requester", response_model=schemas.Card)
async def requester(card_ref: str, body: schemas.RequesterChange, request: Request,
                    agent: Agent = Depends(current_agent)) -> dict:
    """The request belongs to someone else: the old requester stops seeing it on the portal,
    the new one starts; the history keeps both."""
    card = await _on_visible(request, card_ref, agent, lambda uow, card: card_ops.change_requester(
        uow, card, body.requester, by=agent.id, expected_version=body.version))
    return await full_view(_repos(request), card)
