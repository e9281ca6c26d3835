"""Admins' automation API: categories, rules (versioned), checklist and request templates;
and, for agents, the rule runs of a card.

A definition that cannot be kept is refused with 422 and one message per wrong field,
named by its path (`actions[1].column_id`); nothing of it is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from desk_runtime.http import Invalid, NotFound
from fastapi import APIRouter, Body, Depends, Request, Response

from boards.application import cards as card_ops
from boards.auth import Agent, current_admin, current_agent
from boards.automation import domain
from boards.automation.domain import AutomationInvalid
from boards.automation.repository import AutomationRepository
from boards.repository import Repositories
from boards.web.admin.api import _audit  # the admin audit log's one writer

router = APIRouter(prefix="/v1/automation", tags=["automation"])
cards_router = APIRouter(prefix="/v1", tags=["automation"])

# the path's name for each kind of definition
KINDS = {"categories": "category", "rules": "rule", "checklist-templates": "checklist",
         "request-templates": "request_template"}


def _auto(request: Request) -> AutomationRepository:
    return AutomationRepository(request.app.state.runtime.db)


def _repos(request: Request) -> Repositories:
    return Repositories.of(request.app.state.runtime.db)


def _out(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}


def _kind(name: str) -> str:
    if name not in KINDS:
        raise NotFound(f"no automation {name!r}")
    return KINDS[name]


async def _boards(request: Request) -> dict[str, dict[str, Any]]:
    return {b["_id"]: b for b in await _repos(request).catalog.list_boards()}


async def _validated(request: Request, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    repos, auto = _repos(request), _auto(request)
    services = {s.id: s for s, _ in await repos.catalog.list_services()}
    categories = {c["_id"]: c for c in await auto.all("category")}
    checklists = {c["_id"] for c in await auto.all("checklist")}
    agents = {a["_id"] for a in await repos.agents.all_agents()}
    try:
        if kind == "checklist":
            return domain.validate_checklist_template(body)
        if kind == "category":
            parent = categories.get(body.get("parent_id")) if body.get("parent_id") else None
            return domain.validate_category(
                body, service=services.get(body.get("service_id")), parent=parent,
                parent_level=_level(categories, parent), boards=await _boards(request))
        if kind == "request_template":
            return domain.validate_request_template(
                body, services=set(services), categories=set(categories),
                boards=await _boards(request), agents=agents, checklists=checklists)
        canned = {a["canned_response_id"] for a in body.get("actions") or []
                  if isinstance(a, dict) and a.get("canned_response_id")
                  and await repos.catalog.canned_response(a["canned_response_id"])}
        templates = frozenset(t["_id"] for t in await auto.all("request_template"))
        return domain.validate_rule(body, boards=await _boards(request), services=set(services),
                                    categories=set(categories), checklists=checklists,
                                    agents=agents, canned=canned, templates=templates)
    except AutomationInvalid as exc:
        raise Invalid(f"the {kind.replace('_', ' ')} cannot be saved", details=exc.errors
                      ) from None


def _level(categories: dict[str, dict[str, Any]], parent: dict[str, Any] | None) -> int:
    level = 0
    while parent is not None and level <= domain.MAX_CATEGORY_LEVELS:
        level += 1
        parent = categories.get(parent.get("parent_id")) if parent.get("parent_id") else None
    return level


@router.get("/{kind_name}")
async def list_definitions(kind_name: str, request: Request,
                           _: Agent = Depends(current_admin)) -> dict:
    return {"items": [_out(d) for d in await _auto(request).all(_kind(kind_name))]}


@router.get("/{kind_name}/{item_id}")
async def get_definition(kind_name: str, item_id: str, request: Request,
                         _: Agent = Depends(current_admin)) -> dict:
    doc = await _auto(request).one(_kind(kind_name), item_id)
    if doc is None:
        raise NotFound(f"no {kind_name} {item_id!r}")
    return _out(doc)


@router.put("/{kind_name}/{item_id}")
async def put_definition(kind_name: str, item_id: str, request: Request,
                         body: dict[str, Any] = Body(...),
                         admin: Agent = Depends(current_admin)) -> dict:
    """Create or replace a definition; a rule keeps each version it had."""
    kind = _kind(kind_name)
    if body.get("id", item_id) != item_id:
        raise Invalid(f"the body's id {body.get('id')!r} is not {item_id!r}",
                      details={"id": "differs from the path"})
    doc = await _validated(request, kind, {**body, "id": item_id})
    auto = _auto(request)
    before = await auto.one(kind, item_id)
    if kind == "rule":
        saved = await request.app.state.runtime.transact(
            lambda uow: AutomationRepository(uow.db).save_rule(
                doc, by=admin.id, at=datetime.now(UTC), session=uow.session))
    else:
        await auto.save(kind, doc)
        saved = doc
    await _audit(request, admin, "automation", "updated" if before else "created",
                 f"{kind}:{item_id}", before, saved)
    return _out(saved)


@router.delete("/{kind_name}/{item_id}", status_code=204)
async def delete_definition(kind_name: str, item_id: str, request: Request,
                            admin: Agent = Depends(current_admin)) -> Response:
    kind = _kind(kind_name)
    if kind == "category" and any(c.get("parent_id") == item_id
                                  for c in await _auto(request).all("category")):
        raise Invalid("the category has categories below it; delete those first",
                      details={"id": "has children"})
    before = await _auto(request).one(kind, item_id)
    if before is None or not await _auto(request).delete(kind, item_id):
        raise NotFound(f"no {kind_name} {item_id!r}")
    await _audit(request, admin, "automation", "deleted", f"{kind}:{item_id}", before, None)
    return Response(status_code=204)


@router.get("/rules/{rule_id}/versions")
async def rule_versions(rule_id: str, request: Request, _: Agent = Depends(current_admin)
                        ) -> dict:
    """Every version the rule had, newest first."""
    return {"items": [_out(v) for v in await _auto(request).rule_versions(rule_id)]}


@cards_router.get("/cards/{ref}/automation")
async def card_runs(ref: str, request: Request, agent: Agent = Depends(current_agent)) -> dict:
    """The rule runs of a card, newest first: which rule, on what, what it did or why it
    was skipped."""
    card = await card_ops.visible_card(_repos(request), ref, agent)
    runs = await _auto(request).runs_of(card.id)
    return {"items": [_out(r) for r in runs],
            "checklist": dict(zip(("done", "total"),
                                  domain.checklist_progress(card.checklist), strict=True))}
