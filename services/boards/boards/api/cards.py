"""Agents' card API."""

from __future__ import annotations

from desk_runtime.http import NotFound
from fastapi import APIRouter, Depends, Query, Request

from boards.api.auth import Agent, current_agent
from boards.repository import BoardsRepository

router = APIRouter(prefix="/v1", tags=["cards"])


def _repo(request: Request) -> BoardsRepository:
    return BoardsRepository(request.app.state.runtime.db)


def _public(card: dict) -> dict:
    out = {k: v for k, v in card.items() if k != "_id"}
    out["id"] = card["_id"]
    return out


@router.get("/cards/{card_ref}")
async def get_card(card_ref: str, request: Request, agent: Agent = Depends(current_agent)) -> dict:
    card = await _repo(request).get_card(card_ref)
    if card is None or not agent.can_see_board(card["board_id"]):
        raise NotFound("no such card")
    return _public(card)


@router.get("/cards")
async def list_cards(
    request: Request,
    agent: Agent = Depends(current_agent),
    request_id: str | None = Query(None),
    board: str | None = Query(None),
    limit: int = Query(50, ge=1, le=200),
) -> dict:
    query: dict = {}
    if request_id:
        query["request_id"] = request_id
    if board:
        query["board_id"] = board
    cards = [
        _public(c)
        async for c in _repo(request).cards.find(query).sort("updated_at", -1).limit(limit)
        if agent.can_see_board(c["board_id"])
    ]
    return {"items": cards}
