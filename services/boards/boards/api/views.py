"""Saved views of the card table: personal or shared, for one board or across boards.

A view is a name and the table's query string (filters, words, sort, columns), so it is
also a link: `/table?view=<id>` opens it, and the query string itself can be sent around.
A shared view of a board is seen only by agents of that board; only its owner or an
admin may delete it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from desk_runtime.http import Forbidden, Invalid, NotFound
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from boards.api.search import CardQuery
from boards.auth import Agent, current_agent
from boards.metrics import ACCESS_DENIED
from boards.repository.views import SavedViewRepository

router = APIRouter(prefix="/v1", tags=["views"])
COLUMNS = ("number", "title", "service", "category", "type", "priority", "status", "assignee",
           "requester", "organisation", "sla", "created", "updated", "rating")
MAX_VIEWS = 200


class NewView(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    query: str = Field("", max_length=2000, description="the table's query string")
    shared: bool = False


class View(BaseModel):
    id: str
    name: str
    query: str
    shared: bool
    board: str | None
    owner: str
    link: str


def _repo(request: Request) -> SavedViewRepository:
    return SavedViewRepository(request.app.state.runtime.db)


def clean_query(raw: str) -> tuple[str, str | None]:
    """The query string with only what a table reads, checked; and its board."""
    pairs = [(k, v) for k, v in parse_qsl(raw.lstrip("?"), keep_blank_values=False)
             if k in (*CardQuery.__dataclass_fields__, "cols") and k not in ("cursor", "errors")]
    params = dict(pairs)
    query = CardQuery.parse(params)
    errors = dict(query.errors)
    cols = [c for c in (params.get("cols") or "").split(",") if c]
    if any(c not in COLUMNS for c in cols):
        errors["cols"] = f"each one of {', '.join(COLUMNS)}"
    if errors:
        raise Invalid("the view's query is invalid", details=errors)
    return urlencode(pairs), query.board


def view_out(doc: dict) -> dict:
    return {"id": doc["_id"], "name": doc["name"], "query": doc["query"],
            "shared": doc["shared"], "board": doc.get("board"), "owner": doc["owner"],
            "link": f"/table?view={doc['_id']}"}


async def views_for(repo: SavedViewRepository, agent: Agent) -> list[dict]:
    return [view_out(v) for v in await repo.visible_to(agent.id)
            if v["owner"] == agent.id or v.get("board") is None
            or agent.can_see_board(v["board"])]


@router.get("/views", response_model=list[View])
async def list_views(request: Request, agent: Agent = Depends(current_agent)) -> list[dict]:
    return await views_for(_repo(request), agent)


@router.post("/views", response_model=View, status_code=201)
async def save_view(body: NewView, request: Request, agent: Agent = Depends(current_agent)
                    ) -> dict:
    query, board = clean_query(body.query)
    if board is not None and not agent.can_see_board(board):
        ACCESS_DENIED.labels("other_board").inc()
        raise Invalid("not one of your boards", details={"board": "not one of your boards"})
    repo = _repo(request)
    if len([v for v in await repo.visible_to(agent.id) if v["owner"] == agent.id]) >= MAX_VIEWS:
        raise Invalid(f"at most {MAX_VIEWS} views each", details={"name": "too many views"})
    doc = {"_id": uuid.uuid4().hex[:12], "name": body.name.strip(), "query": query,
           "shared": body.shared, "board": board, "owner": agent.id,
           "created_at": datetime.now(UTC)}
    await repo.add(doc)
    return view_out(doc)


async def readable_view(repo: SavedViewRepository, agent: Agent, view_id: str) -> dict:
    """A view the agent may open (404 as for a missing one otherwise)."""
    doc = await repo.view(view_id)
    if doc is None or not (doc["owner"] == agent.id or (doc["shared"] and (
            doc.get("board") is None or agent.can_see_board(doc["board"])))):
        if doc is not None:
            ACCESS_DENIED.labels("view").inc()
        raise NotFound("no such view")
    return doc


@router.get("/views/{view_id}", response_model=View)
async def get_view(view_id: str, request: Request, agent: Agent = Depends(current_agent)
                   ) -> dict:
    return view_out(await readable_view(_repo(request), agent, view_id))


@router.delete("/views/{view_id}", status_code=204)
async def delete_view(view_id: str, request: Request, agent: Agent = Depends(current_agent)
                      ) -> Response:
    repo = _repo(request)
    doc = await readable_view(repo, agent, view_id)
    if doc["owner"] != agent.id and agent.role != "admin":
        ACCESS_DENIED.labels("view").inc()
        raise Forbidden("only its owner or an admin may delete a shared view")
    await repo.remove(view_id)
    return Response(status_code=204)
