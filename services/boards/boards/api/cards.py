"""Agents' card API: list with filters and cursors, get, create, move, assign, edit, comment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from desk_runtime.http import Invalid, NotFound
from fastapi import APIRouter, Depends, Query, Request, Response

from boards import editing
from boards.api import schemas
from boards.api.auth import Agent, current_agent
from boards.commands import move_card
from boards.domain.cards import decode_cursor, encode_cursor, query_terms
from boards.metrics import ACCESS_DENIED
from boards.repository import UNASSIGNED, BoardsRepository, CardListSpec

router = APIRouter(prefix="/v1", tags=["cards"])


def _repo(request: Request) -> BoardsRepository:
    return BoardsRepository(request.app.state.runtime.db)


def card_view(card: dict, *, with_history: bool = False) -> dict:
    out = {k: v for k, v in card.items() if k not in ("_id", "history", "search_terms",
                                                      "sort_key")}
    out["id"] = card["_id"]
    entered = card.get("column_entered_at") or card["created_at"]
    out["column_entered_at"] = entered
    out["time_in_column_seconds"] = max(0, int((datetime.now(UTC) - entered).total_seconds()))
    out["sla"] = card.get("sla") or {}
    if with_history:
        out["history"] = card.get("history", [])
    return out


async def _transact(request: Request, work):
    runtime = request.app.state.runtime
    return await runtime.transact(work, correlation_id=request.state.correlation_id)


async def visible_card(request: Request, ref: str, agent: Agent, session=None) -> dict:
    """The card if the agent may see its board; otherwise 404, as if it did not exist."""
    card = await _repo(request).get_card(ref, session)
    if card is None:
        raise NotFound("no such card")
    if not agent.can_see_board(card["board_id"]):
        ACCESS_DENIED.labels("other_board").inc()
        raise NotFound("no such card")
    return card


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
    repo = _repo(request)
    if board is not None:
        if not agent.can_see_board(board):
            ACCESS_DENIED.labels("other_board").inc()
            raise NotFound("no such board")
        scope: str | list[str] = board
    elif agent.role == "admin":
        scope = [b["_id"] for b in await repo.list_boards()]
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
    rows = await repo.list_cards(spec, limit + 1)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1]["sort_key"]) if len(rows) > limit else None
    return {"items": [card_view(c) for c in page], "next_cursor": next_cursor}


@router.get("/cards/{card_ref}", response_model=schemas.Card)
async def get_card(card_ref: str, request: Request, agent: Agent = Depends(current_agent)
                   ) -> dict:
    return card_view(await visible_card(request, card_ref, agent), with_history=True)


@router.post("/cards", response_model=schemas.Card, status_code=201)
async def create_card(body: schemas.NewCard, request: Request,
                      agent: Agent = Depends(current_agent)) -> dict:
    """File a request on behalf of a customer; the customer is the author of its text."""
    service = await _repo(request).get_service(body.service_id)
    if service is None or not agent.can_see_board(service.target.board_id):
        raise Invalid(f"no service {body.service_id!r} on your boards")
    settings = request.app.state.settings
    card = await _transact(request, lambda uow: editing.create_manual_card(
        uow, agent_id=agent.id, service_id=body.service_id, requester=body.requester,
        title=body.title, text=body.text, priority=body.priority, fields=body.fields,
        due_date=body.due_date, prefix=settings.card_prefix))
    return card_view(card, with_history=True)


@router.post("/cards/{card_ref}/move", response_model=schemas.Card)
async def move(card_ref: str, body: schemas.MoveCard, request: Request,
               agent: Agent = Depends(current_agent)) -> dict:
    async def work(uow):
        card = await visible_card(request, card_ref, agent, uow.session)
        board = await _repo(request).get_board(card["board_id"], uow.session)
        if not any(c["id"] == body.column_id for c in board["columns"]):
            raise Invalid(f"board {board['_id']!r} has no column {body.column_id!r}")
        lane = body.lane_id or card["lane_id"]
        if not any(lane_ == lane for lane_ in (x["id"] for x in board["lanes"])):
            raise Invalid(f"board {board['_id']!r} has no lane {lane!r}")
        return await move_card(uow, card, body.column_id, lane, by=agent.id,
                               expected_version=body.version, board=board)
    return card_view(await _transact(request, work), with_history=True)


@router.post("/cards/{card_ref}/assign", response_model=schemas.Card)
async def assign(card_ref: str, body: schemas.AssignCard, request: Request,
                 agent: Agent = Depends(current_agent)) -> dict:
    async def work(uow):
        card = await visible_card(request, card_ref, agent, uow.session)
        return await editing.assign(uow, card, body.assignee_id, by=agent.id,
                                    expected_version=body.version)
    return card_view(await _transact(request, work), with_history=True)


@router.patch("/cards/{card_ref}", response_model=schemas.Card)
async def patch(card_ref: str, body: schemas.PatchCard, request: Request,
                agent: Agent = Depends(current_agent)) -> dict:
    changes = body.model_dump(mode="json", exclude_unset=True)
    version = changes.pop("version")

    async def work(uow):
        card = await visible_card(request, card_ref, agent, uow.session)
        return await editing.update_card(uow, card, changes, by=agent.id,
                                         expected_version=version,
                                         can_see_board=agent.can_see_board)
    return card_view(await _transact(request, work), with_history=True)


@router.post("/cards/{card_ref}/comments", response_model=schemas.Comment, status_code=201)
async def comment(card_ref: str, body: schemas.NewComment, request: Request,
                  agent: Agent = Depends(current_agent)) -> dict:
    async def work(uow):
        card = await visible_card(request, card_ref, agent, uow.session)
        return await editing.add_comment(uow, card, agent_id=agent.id, agent_name=agent.name,
                                         text=body.text, visibility=body.visibility,
                                         canned_response_id=body.canned_response_id,
                                         attachments=tuple(body.attachments))
    return _comment_view(await _transact(request, work))


@router.get("/cards/{card_ref}/comments", response_model=schemas.CommentList)
async def comments(card_ref: str, request: Request, agent: Agent = Depends(current_agent)
                   ) -> dict:
    card = await visible_card(request, card_ref, agent)
    return {"items": [_comment_view(c) for c in await _repo(request).comments_of(card["_id"])]}


@router.post("/cards/{card_ref}/read", response_model=schemas.Card)
async def mark_read(card_ref: str, request: Request, agent: Agent = Depends(current_agent)
                    ) -> dict:
    async def work(uow):
        card = await visible_card(request, card_ref, agent, uow.session)
        return await editing.mark_read(uow, card, by=agent.id)
    return card_view(await _transact(request, work), with_history=True)


@router.post("/cards/{card_ref}/links", response_model=schemas.Card, status_code=201)
async def link(card_ref: str, body: schemas.NewLink, request: Request, response: Response,
               agent: Agent = Depends(current_agent)) -> dict:
    """Make `child` a child of this card; both must be on boards you can see."""
    async def work(uow):
        parent = await visible_card(request, card_ref, agent, uow.session)
        child = await visible_card(request, body.child, agent, uow.session)
        return await editing.link_cards(uow, parent, child, by=agent.id)
    return card_view(await _transact(request, work), with_history=True)


def _comment_view(comment: dict) -> dict:
    out = {k: v for k, v in comment.items() if k != "_id"}
    out["id"] = comment["_id"]
    return out
