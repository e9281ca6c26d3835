"""Admins' API: the service catalog, boards and their members, agents, canned responses.

Every accepted change is written to the audit log of configuration changes (who, when,
before and after; boards.web.admin.repository), like the other admin areas' changes."""

from __future__ import annotations

import uuid

from desk_contracts.catalog import ServiceDefinition
from desk_runtime.http import Conflict, Forbidden, Invalid, NotFound
from desk_runtime.web import new_token
from fastapi import APIRouter, Depends, Query, Request

from boards.api import schemas
from boards.application.catalog import (
    board_fields,
    board_labels,
    publish_service,
    reshape_board,
    set_board_part,
)
from boards.domain.board import BoardRules
from boards.auth import Agent, current_admin, current_agent, hash_token, require_board_admin
from boards.repository import Repositories
from boards.web.admin.repository import AuditRepository

router = APIRouter(prefix="/v1", tags=["admin"])


def _repos(request: Request) -> Repositories:
    return Repositories.of(request.app.state.runtime.db)


async def _transact(request: Request, work):
    return await request.app.state.runtime.transact(
        work, correlation_id=request.state.correlation_id)


async def _audit(request: Request, agent: Agent, area: str, action: str, target: str,
                 before, after) -> None:
    await AuditRepository(request.app.state.runtime.db).record(
        who={"id": agent.id, "name": agent.name}, area=area, action=action, target=target,
        before=before, after=after)


# --- service catalog -------------------------------------------------------------------------

@router.get("/services", response_model=schemas.ServiceList)
async def list_services(request: Request, agent: Agent = Depends(current_agent)) -> dict:
    """Agents see the services of their boards (to file a request); admins see all."""
    return {"items": [
        {"revision": rev, "service": s.model_dump(mode="json", by_alias=True)}
        for s, rev in await _repos(request).catalog.list_services()
        if agent.can_see_board(s.target.board_id)
    ]}


@router.put("/services/{service_id}", response_model=schemas.ServiceOut)
async def put_service(service_id: str, service: ServiceDefinition, request: Request,
                      agent: Agent = Depends(current_admin)) -> dict:
    """Create or change a service; every other service hears `catalog.service_changed`."""
    if service.id != service_id:
        raise Invalid(f"the body's id {service.id!r} is not {service_id!r}")
    before = await _repos(request).catalog.service(service_id)

    async def work(uow):
        saved = service
        if "answer_in_customer_language" not in service.model_fields_set:
            # Left out of the body: a new service answers customers in their language;
            # an existing one keeps its choice (a client that predates the option does
            # not switch it off by saving).
            existing = await _repos(request).catalog.service(service.id, uow.session)
            saved = service.model_copy(update={"answer_in_customer_language": (
                existing.answer_in_customer_language if existing else True)})
        try:
            return await publish_service(uow, saved), saved
        except (ValueError, KeyError) as exc:
            raise Invalid(str(exc).strip("'\"")) from None
    revision, saved = await _transact(request, work)
    after = saved.model_dump(mode="json", by_alias=True)
    await _audit(request, agent, "catalog", "updated" if before else "created",
                 f"service {service_id}",
                 before.model_dump(mode="json", by_alias=True) if before else None, after)
    return {"revision": revision, "service": after}


# --- boards ----------------------------------------------------------------------------------

# A board's own rules for its cards (boards.domain.board): kept when a PUT leaves them out.
BOARD_RULES = ("card_types", "priorities", "accepts", "parent_waits_for_children", "labels",
               "custom_fields")

async def _board_view(repos: Repositories, board: dict) -> dict:
    out = {k: v for k, v in board.items() if k != "_id"}
    out["id"] = board["_id"]
    out["members"] = await repos.agents.board_members(board["_id"])
    return out


@router.get("/boards", response_model=schemas.BoardList)
async def list_boards(request: Request, agent: Agent = Depends(current_agent)) -> dict:
    repos = _repos(request)
    return {"items": [await _board_view(repos, b) for b in await repos.catalog.list_boards()
                      if agent.can_see_board(b["_id"])]}


@router.get("/boards/{board_id}", response_model=schemas.Board)
async def get_board(board_id: str, request: Request, agent: Agent = Depends(current_agent)
                    ) -> dict:
    repos = _repos(request)
    board = await repos.catalog.board(board_id)
    if board is None or not agent.can_see_board(board_id):
        raise NotFound("no such board")
    return await _board_view(repos, board)


@router.put("/boards/{board_id}", response_model=schemas.Board)
async def put_board(board_id: str, body: schemas.BoardIn, request: Request,
                    agent: Agent = Depends(current_agent)) -> dict:
    """Create or reshape a board. A column or lane that still holds cards cannot go.

    Admins do anything here; the lead of an existing board reshapes it but does not
    create boards or change who is on one."""
    require_board_admin(agent, board_id)
    if agent.role != "admin":
        repos = _repos(request)
        if await repos.catalog.board(board_id) is None:
            raise Forbidden("only admins create boards")
        if body.members is not None and sorted(set(body.members)) != sorted(
                await repos.agents.board_members(board_id)):
            raise Forbidden("only admins change who is on a board")
    for kind, items in (("column", body.columns), ("lane", body.lanes)):
        ids = [i.id for i in items]
        if len(ids) != len(set(ids)):
            raise Invalid(f"duplicate {kind} ids")
    for kind, items in (("card type", body.card_types or []),
                        ("priority", body.priorities or [])):
        ids = [i.id for i in items]
        if len(ids) != len(set(ids)):
            raise Invalid(f"duplicate {kind} ids")
    if body.card_types is not None and not body.card_types:
        raise Invalid("a board needs at least one card type", details={"card_types": "empty"})
    if body.priorities is not None and not body.priorities:
        raise Invalid("a board needs at least one priority", details={"priorities": "empty"})
    board = body.model_dump(mode="json", exclude={"members"})
    existing = await _repos(request).catalog.board(board_id) or {}
    for kept in BOARD_RULES:
        if kept not in body.model_fields_set and kept in existing:
            # a client that only edits columns and lanes (the admin page) keeps the rules
            board[kept] = existing[kept]
        elif board[kept] is None:  # a board without them reads as before they existed
            del board[kept]
    if "labels" in body.model_fields_set and board.get("labels") is not None:
        board["labels"] = board_labels(board["labels"])
    if "custom_fields" in body.model_fields_set and board.get("custom_fields") is not None:
        board["custom_fields"] = board_fields(board["custom_fields"], [
            t["id"] for t in BoardRules(board).card_types])
    board["_id"] = board_id
    before = await _board_view(_repos(request), existing) if existing else None
    saved = await _transact(request, lambda uow: reshape_board(uow, board, body.members))
    after = await _board_view(_repos(request), saved)
    await _audit(request, agent, "boards", "updated" if before else "created",
                 f"board {board_id}", before, after)
    return after


async def _seen_board(request: Request, board_id: str, agent: Agent) -> dict:
    board = await _repos(request).catalog.board(board_id)
    if board is None or not agent.can_see_board(board_id):
        raise NotFound("no such board")
    return board


@router.get("/boards/{board_id}/labels", response_model=schemas.BoardLabels)
async def get_labels(board_id: str, request: Request, agent: Agent = Depends(current_agent)
                     ) -> dict:
    """The board's label list: what its cards choose their labels from."""
    return {"labels": BoardRules(await _seen_board(request, board_id, agent)).labels}


@router.put("/boards/{board_id}/labels", response_model=schemas.BoardLabels)
async def put_labels(board_id: str, body: schemas.BoardLabels, request: Request,
                     agent: Agent = Depends(current_agent)) -> dict:
    """Replace the label list (name and colour each; admins, or the board's lead). A label
    keeps its id when renamed or recoloured, so every card and tile shows the change; a
    new one gets an id."""
    before = BoardRules(await _seen_board(request, board_id, agent)).labels
    require_board_admin(agent, board_id)
    labels = board_labels(body.model_dump(mode="json")["labels"])
    await _transact(request, lambda uow: set_board_part(uow, board_id, "labels", labels))
    await _audit(request, agent, "boards", "updated", f"board {board_id} labels", before,
                 labels)
    # the cards' own copies follow (pages resolve labels by id already; this keeps what
    # their later events carry current). A crash here leaves pages right, events stale.
    await _repos(request).cards.relabel(board_id, labels)
    return {"labels": labels}


@router.get("/boards/{board_id}/fields", response_model=schemas.BoardFields)
async def get_fields(board_id: str, request: Request, agent: Agent = Depends(current_agent)
                     ) -> dict:
    """The board's typed custom fields (text, number, date, select, checkbox)."""
    board = await _seen_board(request, board_id, agent)
    return {"fields": board.get("custom_fields") or []}


@router.put("/boards/{board_id}/fields", response_model=schemas.BoardFields)
async def put_fields(board_id: str, body: schemas.BoardFields, request: Request,
                     agent: Agent = Depends(current_agent)) -> dict:
    """Replace the board's custom fields (admins, or the board's lead); a card's values are
    checked by their type from then on (422 naming each field that is wrong)."""
    board = await _seen_board(request, board_id, agent)
    require_board_admin(agent, board_id)
    fields = board_fields(body.model_dump(mode="json")["fields"],
                          [t["id"] for t in BoardRules(board).card_types])
    await _transact(request, lambda uow: set_board_part(uow, board_id, "custom_fields",
                                                        fields))
    await _audit(request, agent, "boards", "updated", f"board {board_id} fields",
                 board.get("custom_fields") or [], fields)
    return {"fields": fields}


# --- agents ----------------------------------------------------------------------------------

def _agent_view(doc: dict) -> dict:
    return {"id": doc["_id"], "name": doc.get("name", doc["_id"]), "email": doc.get("email"),
            "role": doc.get("role", "agent"), "boards": doc.get("boards", []),
            "active": doc.get("active", True), "slack_webhook_url": doc.get("slack_webhook_url"),
            "language": doc.get("language") or "en"}


@router.post("/agents", response_model=schemas.AgentCreated, status_code=201)
async def create_agent(body: schemas.NewAgent, request: Request,
                       agent: Agent = Depends(current_admin)) -> dict:
    """Create an agent and hand out their API token (shown only in this response)."""
    repos = _repos(request)
    for board_id in body.boards:
        if await repos.catalog.board(board_id) is None:
            raise Invalid(f"no board {board_id!r}")
    token = new_token(32)
    doc = {"_id": body.id or str(uuid.uuid4()), "name": body.name, "email": body.email,
           "role": body.role, "boards": sorted(set(body.boards)), "active": True,
           "token_hashes": [hash_token(token)], "slack_webhook_url": body.slack_webhook_url,
           "language": body.language}

    async def work(uow):
        if await repos.agents.agent_exists(doc["_id"], uow.session):
            raise Conflict(f"agent {doc['_id']!r} exists already")
        await repos.agents.add_agent(doc, uow.session)
    await _transact(request, work)
    await _audit(request, agent, "people", "created", f"agent {doc['_id']}", None,
                 _agent_view(doc))  # never the token
    return _agent_view(doc) | {"token": token}


@router.get("/agents", response_model=schemas.AgentList)
async def list_agents(request: Request, _: Agent = Depends(current_admin)) -> dict:
    return {"items": [_agent_view(a) for a in await _repos(request).agents.all_agents()]}


@router.patch("/agents/{agent_id}", response_model=schemas.AgentOut)
async def change_agent(agent_id: str, body: schemas.AgentChange, request: Request,
                       agent: Agent = Depends(current_admin)) -> dict:
    """Change an agent's role or boards, or deactivate them (their token stops working)."""
    repos = _repos(request)
    changes = body.model_dump(exclude_unset=True)
    for board_id in changes.get("boards") or []:
        if await repos.catalog.board(board_id) is None:
            raise Invalid(f"no board {board_id!r}",
                          details={"fields": {"boards": f"no board {board_id!r}"}})
    if agent_id == agent.id and changes.get("role", "admin") != "admin":
        # the last way back in would be the bootstrap token: an admin does not lock
        # themselves out by a slip of the role menu
        raise Invalid("you cannot take away your own admin role",
                      details={"fields": {"role": "not your own admin role"}})
    if "boards" in changes:
        changes["boards"] = sorted(set(changes["boards"]))

    before = await repos.agents.agent(agent_id)

    async def work(uow):
        doc = await repos.agents.change_agent(agent_id, changes, uow.session)
        if doc is None:
            raise NotFound("no such agent")
        return doc
    after = _agent_view(await _transact(request, work))
    action = "deactivated" if changes.get("active") is False else "updated"
    await _audit(request, agent, "people", action, f"agent {agent_id}",
                 _agent_view(before) if before else None, after)
    return after


# --- canned responses ------------------------------------------------------------------------

@router.get("/canned-responses", response_model=schemas.CannedList)
async def list_canned(request: Request, service: str | None = Query(None),
                      _: Agent = Depends(current_agent)) -> dict:
    """Account-wide answers plus, with `service`, that service's own."""
    rows = await _repos(request).catalog.canned_for(service)
    return {"items": [{**{k: v for k, v in r.items() if k != "_id"}, "id": r["_id"]}
                      for r in rows]}


@router.post("/canned-responses", response_model=schemas.CannedResponse, status_code=201)
async def create_canned(body: schemas.NewCannedResponse, request: Request,
                        agent: Agent = Depends(current_admin)) -> dict:
    catalog = _repos(request).catalog
    if body.service_id and await catalog.service(body.service_id) is None:
        raise Invalid(f"no service {body.service_id!r}")
    doc = body.model_dump() | {"_id": str(uuid.uuid4())}
    await catalog.add_canned(doc)
    view = {**body.model_dump(), "id": doc["_id"]}
    await _audit(request, agent, "canned", "created", f"canned {body.title}", None, view)
    return view
