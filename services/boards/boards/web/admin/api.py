"""The admin pages' API (`/v1/admin/...`, admins only): each change goes to the service that
owns it and is written to the audit log with the item before and after.

Reads and writes of sla, notify and the portal go through `upstream.call` with that
service's admin token; canned responses are boards' own. A refused change answers 422
with `details.fields` (field → reason), which the pages show beside the field.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from desk_runtime.http import Invalid, NotFound
from desk_runtime.metrics import REJECTED_INPUT
from desk_runtime.web import new_token
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from boards.api.schemas import BoardPriority, CardType, NewCannedResponse
from boards.application.catalog import reshape_board
from boards.auth import Agent, current_admin, current_agent, hash_token, require_board_admin
from boards.repository import Repositories
from boards.web.admin import upstream
from boards.web.admin.repository import AuditRepository

router = APIRouter(prefix="/v1/admin", tags=["admin pages"])
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
AREAS = ("catalog", "boards", "people", "sla", "notifications", "access", "canned", "channels")


def _name(value: str, field: str = "name") -> str:
    """A path segment sent on to an owner: a slug, so it can never change the path."""
    if not NAME.match(value):
        REJECTED_INPUT.labels("boards", "admin", "bad_name").inc()
        raise Invalid(f"{field} is 1-63 of a-z, 0-9, - and _",
                      details={"fields": {field: "1-63 of a-z, 0-9, - and _"}})
    return value


async def _audit(request: Request, agent: Agent, area: str, action: str, target: str,
                 before: Any, after: Any) -> None:
    await AuditRepository(request.app.state.runtime.db).record(
        who={"id": agent.id, "name": agent.name}, area=area, action=action, target=target,
        before=before, after=after)


async def _listed(request: Request, owner: str, path: str, **match: str) -> dict | None:
    """The item of the owner's list at `path` whose fields match, or None."""
    items = (await upstream.call(request, owner, "GET", path))["items"]
    return next((i for i in items if all(i.get(k) == v for k, v in match.items())), None)


def _as_is(doc: Any) -> Any:
    return doc


async def _put_listed(request: Request, agent: Agent, owner: str, path: str, key: str,
                      value: str, body: dict[str, Any], *, area: str, target: str,
                      view=_as_is) -> dict:
    """PUT `path/value` of an owner's list, audited as created or updated (`view`: what the
    log keeps of the item)."""
    before = await _listed(request, owner, path, **{key: value})
    after = await upstream.call(request, owner, "PUT", f"{path}/{value}", body)
    await _audit(request, agent, area, "updated" if before else "created", target,
                 view(before), view(after))
    return after


# --- SLA: policies, calendars, holidays, preview --------------------------------------------

@router.get("/sla")
async def sla_config(request: Request, _: Agent = Depends(current_admin)) -> dict:
    policies = await upstream.call(request, "sla", "GET", "/v1/policies")
    calendars = await upstream.call(request, "sla", "GET", "/v1/calendars")
    return {"policies": policies["items"], "calendars": calendars["items"]}


@router.put("/sla/policies/{name}")
async def put_policy(name: str, body: dict[str, Any], request: Request,
                     agent: Agent = Depends(current_admin)) -> dict:
    _name(name)
    return await _put_listed(request, agent, "sla", "/v1/policies", "name", name, body,
                             area="sla", target=f"policy {name}")


@router.put("/sla/calendars/{name}")
async def put_calendar(name: str, body: dict[str, Any], request: Request,
                       agent: Agent = Depends(current_admin)) -> dict:
    _name(name)
    return await _put_listed(request, agent, "sla", "/v1/calendars", "name", name, body,
                             area="sla", target=f"calendar {name}")


class HolidayImport(BaseModel):
    text: str = Field(min_length=1, max_length=200_000)
    replace: bool = False


@router.post("/sla/calendars/{name}/holidays")
async def import_holidays(name: str, body: HolidayImport, request: Request,
                          agent: Agent = Depends(current_admin)) -> dict:
    _name(name)
    before = await _listed(request, "sla", "/v1/calendars", name=name)
    after = await upstream.call(request, "sla", "POST", f"/v1/calendars/{name}/holidays",
                                body.model_dump())
    await _audit(request, agent, "sla", "holidays imported", f"calendar {name}", before,
                 {k: v for k, v in after.items() if k != "imported"})
    return after


@router.post("/sla/preview")
async def preview_deadlines(body: dict[str, Any], request: Request,
                            _: Agent = Depends(current_admin)) -> dict:
    return await upstream.call(request, "sla", "POST", "/v1/preview", body)


# --- notifications: alert routes and customer mail templates --------------------------------

@router.get("/notifications")
async def notify_config(request: Request, _: Agent = Depends(current_admin)) -> dict:
    routes = await upstream.call(request, "notify", "GET", "/v1/routes")
    templates = await upstream.call(request, "notify", "GET", "/v1/templates")
    return {"routes": routes["items"], "templates": templates["items"]}


@router.put("/notifications/routes/{route_id}")
async def put_route(route_id: str, body: dict[str, Any], request: Request,
                    agent: Agent = Depends(current_admin)) -> dict:
    _name(route_id, "id")
    return await _put_listed(request, agent, "notify", "/v1/routes", "id", route_id, body,
                             area="notifications", target=f"route {route_id}")


@router.delete("/notifications/routes/{route_id}", status_code=204)
async def delete_route(route_id: str, request: Request,
                       agent: Agent = Depends(current_admin)) -> None:
    _name(route_id, "id")
    before = await _listed(request, "notify", "/v1/routes", id=route_id)
    await upstream.call(request, "notify", "DELETE", f"/v1/routes/{route_id}")
    await _audit(request, agent, "notifications", "deleted", f"route {route_id}", before, None)


class TemplateIn(BaseModel):
    subject: str
    text: str
    html: str


def _template_path(kind: str, language: str) -> str:
    return f"/v1/templates/{_name(kind, 'kind')}/{_name(language, 'language')}"


def _template_view(doc: dict) -> dict:
    # what the log keeps of a mail template
    return {k: doc[k] for k in ("subject", "text", "html", "custom")}


@router.put("/notifications/templates/{kind}/{language}")
async def put_template(kind: str, language: str, body: TemplateIn, request: Request,
                       agent: Agent = Depends(current_admin)) -> dict:
    path = _template_path(kind, language)
    before = await upstream.call(request, "notify", "GET", path)
    after = await upstream.call(request, "notify", "PUT", path, body.model_dump())
    await _audit(request, agent, "notifications", "updated", f"template {kind}/{language}",
                 _template_view(before), _template_view(after))
    return after


@router.post("/notifications/templates/{kind}/{language}/preview")
async def preview_template(kind: str, language: str, body: TemplateIn, request: Request,
                           _: Agent = Depends(current_admin)) -> dict:
    return await upstream.call(request, "notify", "POST",
                               _template_path(kind, language) + "/preview", body.model_dump())


class TemplateTest(TemplateIn):
    email: str


@router.post("/notifications/templates/{kind}/{language}/test")
async def test_send_template(kind: str, language: str, body: TemplateTest, request: Request,
                             _: Agent = Depends(current_admin)) -> dict:
    return await upstream.call(request, "notify", "POST",
                               _template_path(kind, language) + "/test", body.model_dump())


@router.delete("/notifications/templates/{kind}/{language}", status_code=204)
async def reset_template(kind: str, language: str, request: Request,
                         agent: Agent = Depends(current_admin)) -> None:
    path = _template_path(kind, language)
    before = await upstream.call(request, "notify", "GET", path)
    await upstream.call(request, "notify", "DELETE", path)
    after = await upstream.call(request, "notify", "GET", path)
    await _audit(request, agent, "notifications", "reset to default",
                 f"template {kind}/{language}",
                 _template_view(before), _template_view(after))


# --- portal access: who may sign in, customer groups -----------------------------------------

class AddressSetIn(BaseModel):
    domains: list[str] = []
    addresses: list[str] = []


@router.get("/access")
async def access_config(request: Request, _: Agent = Depends(current_admin)) -> dict:
    return await upstream.call(request, "portal", "GET", "/v1/access")


@router.put("/access/allow")
async def put_allowlist(body: AddressSetIn, request: Request,
                        agent: Agent = Depends(current_admin)) -> dict:
    before = await upstream.call(request, "portal", "GET", "/v1/access")
    after = await upstream.call(request, "portal", "PUT", "/v1/access/allow", body.model_dump())
    await _audit(request, agent, "access", "updated", "sign-in allowlist", before["allow"],
                 after["allow"])
    return after


def _entry(access: dict, kind: str, key: str) -> dict | None:
    return (access.get(kind) or {}).get(key)


async def _put_access_entry(request: Request, agent: Agent, kind: str, what: str, key: str,
                            body: BaseModel) -> dict:
    """One customer group or organisation of the portal's access, created or updated."""
    before = await upstream.call(request, "portal", "GET", "/v1/access")
    after = await upstream.call(request, "portal", "PUT", f"/v1/access/{kind}/{key}",
                                body.model_dump())
    old = _entry(before, kind, key)
    await _audit(request, agent, "access", "updated" if old else "created", f"{what} {key}",
                 old, _entry(after, kind, key))
    return after


async def _delete_access_entry(request: Request, agent: Agent, kind: str, what: str,
                               key: str) -> dict:
    before = await upstream.call(request, "portal", "GET", "/v1/access")
    after = await upstream.call(request, "portal", "DELETE", f"/v1/access/{kind}/{key}")
    await _audit(request, agent, "access", "deleted", f"{what} {key}",
                 _entry(before, kind, key), None)
    return after


@router.put("/access/groups/{name}")
async def put_group(name: str, body: AddressSetIn, request: Request,
                    agent: Agent = Depends(current_admin)) -> dict:
    _name(name)
    return await _put_access_entry(request, agent, "groups", "group", name, body)


@router.delete("/access/groups/{name}")
async def delete_group(name: str, request: Request,
                       agent: Agent = Depends(current_admin)) -> dict:
    _name(name)
    return await _delete_access_entry(request, agent, "groups", "group", name)


class OrganisationIn(AddressSetIn):
    name: str = ""


@router.put("/access/organisations/{org_id}")
async def put_organisation(org_id: str, body: OrganisationIn, request: Request,
                           agent: Agent = Depends(current_admin)) -> dict:
    """Customers who see each other's requests on the portal (the portal stores it)."""
    _name(org_id, "id")
    return await _put_access_entry(request, agent, "organisations", "organisation", org_id,
                                   body)


@router.delete("/access/organisations/{org_id}")
async def delete_organisation(org_id: str, request: Request,
                              agent: Agent = Depends(current_admin)) -> dict:
    _name(org_id, "id")
    return await _delete_access_entry(request, agent, "organisations", "organisation", org_id)


# --- canned responses (boards' own) ----------------------------------------------------------

def _canned_view(doc: dict) -> dict:
    return {"id": doc["_id"], "title": doc["title"], "text": doc["text"],
            "service_id": doc.get("service_id")}


class CannedChange(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=200)
    text: str | None = Field(None, min_length=1, max_length=20_000)
    service_id: str | None = None


async def _known_service(request: Request, service_id: str | None) -> None:
    if service_id and await Repositories.of(request.app.state.runtime.db).catalog.service(
            service_id) is None:
        REJECTED_INPUT.labels("boards", "admin", "unknown_service").inc()
        raise Invalid(f"no service {service_id!r}",
                      details={"fields": {"service_id": "no such service"}})


@router.post("/canned", status_code=201)
async def create_canned(body: NewCannedResponse, request: Request,
                        agent: Agent = Depends(current_admin)) -> dict:
    await _known_service(request, body.service_id)
    doc = body.model_dump() | {"_id": str(uuid.uuid4())}
    await Repositories.of(request.app.state.runtime.db).catalog.add_canned(doc)
    view = _canned_view(doc)
    await _audit(request, agent, "canned", "created", f"canned {body.title}", None, view)
    return view


@router.patch("/canned/{canned_id}")
async def change_canned(canned_id: str, body: CannedChange, request: Request,
                        agent: Agent = Depends(current_admin)) -> dict:
    changes = body.model_dump(exclude_unset=True)
    await _known_service(request, changes.get("service_id"))
    catalog = Repositories.of(request.app.state.runtime.db).catalog
    before = await catalog.canned_response(canned_id)
    if before is None:
        raise NotFound("no such canned response")
    after = await catalog.change_canned(canned_id, changes)
    if after is None:
        raise NotFound("no such canned response")
    await _audit(request, agent, "canned", "updated", f"canned {after['title']}",
                 _canned_view(before), _canned_view(after))
    return _canned_view(after)


@router.delete("/canned/{canned_id}", status_code=204)
async def delete_canned(canned_id: str, request: Request,
                        agent: Agent = Depends(current_admin)) -> None:
    catalog = Repositories.of(request.app.state.runtime.db).catalog
    before = await catalog.canned_response(canned_id)
    if before is None or not await catalog.delete_canned(canned_id):
        raise NotFound("no such canned response")
    await _audit(request, agent, "canned", "deleted", f"canned {before['title']}",
                 _canned_view(before), None)


# --- boards: card types and priorities (boards' own) ------------------------------------------

class BoardWork(BaseModel):
    card_types: list[CardType] = Field(min_length=1)
    priorities: list[BoardPriority] = Field(min_length=1)


@router.put("/boards/{board_id}/work")
async def put_board_work(board_id: str, body: BoardWork, request: Request,
                         agent: Agent = Depends(current_agent)) -> dict:
    """A board's card types and priorities (lowest first); the rest of the board is kept.
    Admins, and the lead of this board."""
    require_board_admin(agent, board_id)
    for kind, items in (("card_types", body.card_types), ("priorities", body.priorities)):
        ids = [i.id for i in items]
        if len(ids) != len(set(ids)):
            REJECTED_INPUT.labels("boards", "admin", "duplicate_id").inc()
            raise Invalid(f"duplicate {kind} ids", details={"fields": {kind: "ids repeat"}})
    repos = Repositories.of(request.app.state.runtime.db)
    before = await repos.catalog.board(board_id)
    if before is None:
        raise NotFound("no such board")
    board = {**before, **body.model_dump(mode="json")}

    async def work(uow):
        return await reshape_board(uow, board, None)
    saved = await request.app.state.runtime.transact(
        work, correlation_id=request.state.correlation_id)
    keys = ("card_types", "priorities")
    await _audit(request, agent, "boards", "updated", f"board {board_id} types and priorities",
                 {k: before.get(k) for k in keys}, {k: saved.get(k) for k in keys})
    return {k: saved.get(k) for k in keys}


# --- people: agents' API tokens (boards' own) -----------------------------------------------

TOKEN_ID_CHARS = 12  # a token is named by the start of its hash (the token is never kept)


def token_views(doc: dict) -> list[dict]:
    meta = doc.get("token_meta") or {}
    return [{"id": h[:TOKEN_ID_CHARS], "name": meta.get(h, {}).get("name"),
             "created_at": meta.get(h, {}).get("created_at"),
             "created_by": meta.get(h, {}).get("created_by"),
             "last_used_at": meta.get(h, {}).get("last_used_at")}
            for h in doc.get("token_hashes", [])]


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="what it is for")


@router.post("/agents/{agent_id}/tokens", status_code=201)
async def create_token(agent_id: str, body: NewToken, request: Request,
                       agent: Agent = Depends(current_admin)) -> dict:
    """A new API token for an agent, shown only in this answer."""
    agents = Repositories.of(request.app.state.runtime.db).agents
    token = new_token(32)
    meta = {"name": body.name, "created_at": datetime.now(UTC), "created_by": agent.id}
    if not await agents.add_token(agent_id, token, meta):
        raise NotFound("no such agent")
    view = {"id": hash_token(token)[:TOKEN_ID_CHARS], "name": body.name}
    await _audit(request, agent, "people", "token created", f"agent {agent_id}", None, view)
    return view | {"token": token}


@router.delete("/agents/{agent_id}/tokens/{token_id}", status_code=204)
async def revoke_token(agent_id: str, token_id: str, request: Request,
                       agent: Agent = Depends(current_admin)) -> None:
    """The token stops working at once, and so do browser sessions opened with it."""
    if len(token_id) != TOKEN_ID_CHARS or any(c not in "0123456789abcdef" for c in token_id):
        raise NotFound("no such token")
    agents = Repositories.of(request.app.state.runtime.db).agents
    doc = await agents.agent(agent_id)
    before = next((t for t in token_views(doc or {}) if t["id"] == token_id), None)
    if before is None or await agents.revoke_token(agent_id, token_id) is None:
        raise NotFound("no such token")
    await _audit(request, agent, "people", "token revoked", f"agent {agent_id}", before, None)


# --- channels: IMAP mailboxes (intake) --------------------------------------------------------

@router.get("/channels")
async def channels_config(request: Request, _: Agent = Depends(current_admin)) -> dict:
    addresses = await upstream.call(request, "intake", "GET", "/v1/inbound-addresses")
    return {"mailboxes": (await upstream.call(request, "intake", "GET", "/v1/mailboxes"))["items"],
            "telegram": await upstream.call(request, "intake", "GET", "/v1/telegram/bot"),
            "inbound_addresses": addresses["items"],
            "inbound_domain": addresses["inbound_domain"]}


def _mailbox_view(doc: dict | None) -> dict | None:
    # what the log keeps of a mailbox: never its password (intake does not return it)
    return None if doc is None else {k: v for k, v in doc.items() if k != "password"}


@router.put("/channels/mailboxes/{service_id}")
async def put_mailbox(service_id: str, body: dict[str, Any], request: Request,
                      agent: Agent = Depends(current_admin)) -> dict:
    _name(service_id, "service_id")
    return await _put_listed(request, agent, "intake", "/v1/mailboxes", "id", service_id, body,
                             area="channels", target=f"mailbox {service_id}",
                             view=_mailbox_view)


@router.delete("/channels/mailboxes/{service_id}", status_code=204)
async def delete_mailbox(service_id: str, request: Request,
                         agent: Agent = Depends(current_admin)) -> None:
    _name(service_id, "service_id")
    before = await _listed(request, "intake", "/v1/mailboxes", id=service_id)
    if before is None:
        raise NotFound(f"no mailbox for {service_id!r}")
    await upstream.call(request, "intake", "DELETE", f"/v1/mailboxes/{service_id}")
    await _audit(request, agent, "channels", "deleted", f"mailbox {service_id}",
                 _mailbox_view(before), None)


@router.post("/channels/smtp-check")
async def smtp_check(request: Request, _: Agent = Depends(current_admin)) -> dict:
    """notify reaches its SMTP relay as a send would, without sending."""
    return await upstream.call(request, "notify", "POST", "/v1/smtp/check")


@router.post("/channels/mailboxes/{service_id}/poll")
async def poll_mailbox(service_id: str, request: Request,
                       _: Agent = Depends(current_admin)) -> dict:
    """Test the connection: poll now; answers what was fetched or the server's error."""
    _name(service_id, "service_id")
    return await upstream.call(request, "intake", "POST", f"/v1/mailboxes/{service_id}/poll")


# --- channels: the Telegram bot and the inbound addresses (intake) ----------------------------

def _bot_view(doc: dict) -> dict:
    # what the log keeps of the bot: intake answers only a hint of the token
    return {k: doc.get(k) for k in ("mode", "token_hint", "webhook_url")}


@router.put("/channels/telegram")
async def put_telegram(body: dict[str, Any], request: Request,
                       agent: Agent = Depends(current_admin)) -> dict:
    """The bot's token (stored sealed by intake, never shown back), webhook or polling."""
    before = await upstream.call(request, "intake", "GET", "/v1/telegram/bot")
    after = await upstream.call(request, "intake", "PUT", "/v1/telegram/bot", body)
    await _audit(request, agent, "channels", "updated", "telegram bot", _bot_view(before),
                 _bot_view(after))
    return after


@router.post("/channels/telegram/test")
async def test_telegram(request: Request, body: dict[str, Any] | None = None,
                        _: Agent = Depends(current_admin)) -> dict:
    """Telegram's getMe with the stored token (or one typed in), from intake."""
    return await upstream.call(request, "intake", "POST", "/v1/telegram/bot/test", body or {})


EMAIL = re.compile(r"^[^@\s/]{1,64}@[^@\s/]{1,253}$")


class InboundAddressIn(BaseModel):
    address: str = Field(min_length=3, max_length=254)
    service_id: str = Field(min_length=1, max_length=63)


async def _inbound_address(request: Request, address: str) -> dict | None:
    return await _listed(request, "intake", "/v1/inbound-addresses", address=address)


@router.put("/channels/addresses")
async def put_inbound_address(body: InboundAddressIn, request: Request,
                              agent: Agent = Depends(current_admin)) -> dict:
    """Mail to `address` goes to `service_id` (intake routes and threads by it)."""
    address = body.address.strip().lower()
    before = await _inbound_address(request, address)
    after = await upstream.call(request, "intake", "PUT", "/v1/inbound-addresses",
                                {"address": address, "service_id": body.service_id})
    await _audit(request, agent, "channels", "updated" if before else "created",
                 f"address {address}", before, after)
    return after


@router.delete("/channels/addresses/{address}", status_code=204)
async def delete_inbound_address(address: str, request: Request,
                                 agent: Agent = Depends(current_admin)) -> None:
    address = address.strip().lower()
    if not EMAIL.match(address):  # it becomes a path segment of intake's API
        raise NotFound(f"no inbound address {address!r}")
    before = await _inbound_address(request, address)
    if before is None:
        raise NotFound(f"no inbound address {address!r}")
    await upstream.call(request, "intake", "DELETE",
                        f"/v1/inbound-addresses/{quote(address, safe='@')}")
    await _audit(request, agent, "channels", "deleted", f"address {address}", before, None)


# --- the audit log ---------------------------------------------------------------------------

@router.get("/audit")
async def audit_log(request: Request, area: str | None = Query(None),
                    limit: int = Query(100, ge=1, le=500),
                    _: Agent = Depends(current_admin)) -> dict:
    if area is not None and area not in AREAS:
        raise Invalid(f"area is one of {', '.join(AREAS)}", details={"fields": {"area": "unknown"}})
    rows = await AuditRepository(request.app.state.runtime.db).recent(area, limit)
    return {"items": [{**{k: v for k, v in r.items() if k != "_id"}, "id": r["_id"]}
                      for r in rows]}
