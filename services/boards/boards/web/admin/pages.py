"""The admin pages (`/admin/sla`, `/admin/notifications`, `/admin/access`, `/admin/audit`):
rendered with the owning service's current configuration; their forms call
`/v1/admin/...` (boards.web.admin.api) with the session cookie and its CSRF token.

Admins only (and a board's lead on `/admin/boards`, for their boards): anybody else signed
in gets a 403 page, nobody signed in the sign-in page.
"""

from __future__ import annotations

from typing import Any

from desk_runtime.http import DomainError
from fastapi import APIRouter, Request
from fastapi.responses import Response

from boards.domain.board import BoardRules
from boards.repository import Repositories
from boards.web.admin import api, i18n, upstream
from boards.web.admin.repository import AuditRepository
from boards.web.pages import render, signed_in_page

router = APIRouter(include_in_schema=False)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROUTE_EVENTS = ("new_request", "customer_reply", "escalation", "sla_warning", "sla_breached",
                "column_reached")
PRIORITIES = ("low", "medium", "high", "critical")
TARGETS = ("first_response", "next_response", "resolution")
CATEGORIES = ("queued", "in_progress", "waiting_for_customer", "paused", "done")
# what sla pauses when a policy names nothing (sla.domain.policy.DEFAULT_PAUSES)
DEFAULT_PAUSES = {"first_response": [], "next_response": ["paused"],
                  "resolution": ["waiting_for_customer", "paused"]}


async def _admin_page(request: Request, template: str, area: str, load,
                      leads: bool = False) -> Response:
    page = await signed_in_page(request)
    if isinstance(page, Response):
        return page
    agent, _session, lang, base = page
    # a lead administers their own boards (`leads` pages only); everything else is admins'
    if agent.role != "admin" and not (leads and agent.role == "lead"):
        return render(request, "empty.html", lang, status=403, forbidden=True, **base)
    request.state.admin_agent = agent
    a = i18n.texts(lang)
    unavailable = None
    ctx: dict[str, Any] = {}
    try:
        ctx = await load(request)
    except DomainError as exc:  # the owner is away or not configured: say so on the page
        unavailable = exc.message
    data = {"t": a, "lang": lang, **ctx}
    return render(request, template, lang, a=a, area=area, unavailable=unavailable,
                  data=data, **base, **ctx)


def _hours_text(windows: list) -> str:
    return ", ".join(f"{s}-{e}" for s, e in windows or [])


@router.get("/admin/sla")
async def sla_page(request: Request, policy: str | None = None,
                   calendar: str | None = None) -> Response:
    async def load(request: Request) -> dict:
        config = await _sla(request)
        editing_policy = next((p for p in config["policies"] if p["name"] == policy), None)
        editing_calendar = next((c for c in config["calendars"]
                                 if c["name"] == calendar and c["name"] != "24x7"), None)
        hours = {d: _hours_text((editing_calendar or {}).get("hours", {}).get(d))
                 for d in WEEKDAYS}
        return {**config, "editing_policy": editing_policy,
                "editing_calendar": editing_calendar, "hours": hours,
                "weekdays": WEEKDAYS, "priorities": PRIORITIES, "targets": TARGETS,
                "categories": CATEGORIES, "default_pauses": DEFAULT_PAUSES}
    return await _admin_page(request, "admin/sla.html", "sla", load)


async def _sla(request: Request) -> dict:
    policies = await upstream.call(request, "sla", "GET", "/v1/policies")
    calendars = await upstream.call(request, "sla", "GET", "/v1/calendars")
    return {"policies": policies["items"], "calendars": calendars["items"]}


@router.get("/admin/notifications")
async def notifications_page(request: Request, route: str | None = None,
                             template: str | None = None) -> Response:
    async def load(request: Request) -> dict:
        routes = (await upstream.call(request, "notify", "GET", "/v1/routes"))["items"]
        templates = (await upstream.call(request, "notify", "GET", "/v1/templates"))["items"]
        customer = [t for t in templates
                    if t["kind"] in ("acknowledgment", "status_changed", "agent_reply",
                                     "rating_request", "reminder")]
        kind, _, language = (template or "acknowledgment/en").partition("/")
        editing_template = next((t for t in customer
                                 if (t["kind"], t["language"]) == (kind, language)), customer[0])
        repos = Repositories.of(request.app.state.runtime.db)
        services = [s for s, _ in await repos.catalog.list_services()]
        canned = await repos.catalog.canned_for(None)
        for s in services:
            canned += [c for c in await repos.catalog.canned_for(s.id)
                       if c.get("service_id") == s.id]
        return {"routes": routes, "templates": customer,
                "editing_route": next((r for r in routes if r["id"] == route), None),
                "editing_template": editing_template,
                "canned": [api._canned_view(c) for c in canned],
                "services": [{"id": s.id, "name": s.name.get("en") or s.id} for s in services],
                "events": ROUTE_EVENTS}
    return await _admin_page(request, "admin/notifications.html", "notifications", load)


@router.get("/admin/access")
async def access_page(request: Request) -> Response:
    async def load(request: Request) -> dict:
        return {"access": await upstream.call(request, "portal", "GET", "/v1/access")}
    return await _admin_page(request, "admin/access.html", "access", load)


@router.get("/admin/audit")
async def audit_page(request: Request, area: str | None = None) -> Response:
    async def load(request: Request) -> dict:
        chosen = area if area in api.AREAS else None
        rows = await AuditRepository(request.app.state.runtime.db).recent(chosen, 200)
        return {"entries": rows, "area_filter": chosen, "areas": api.AREAS}
    return await _admin_page(request, "admin/audit.html", "audit", load)


@router.get("/admin/channels")
async def channels_page(request: Request, mailbox: str | None = None) -> Response:
    async def load(request: Request) -> dict:
        boxes = (await upstream.call(request, "intake", "GET", "/v1/mailboxes"))["items"]
        addresses = await upstream.call(request, "intake", "GET", "/v1/inbound-addresses")
        repos = Repositories.of(request.app.state.runtime.db)
        services = [s for s, _ in await repos.catalog.list_services()]
        return {"mailboxes": boxes,
                "telegram": await upstream.call(request, "intake", "GET", "/v1/telegram/bot"),
                "inbound_addresses": addresses["items"],
                "inbound_domain": addresses["inbound_domain"],
                "editing_mailbox": next((b for b in boxes if b["id"] == mailbox), None),
                "services": [{"id": s.id, "name": s.name.get("en") or s.id} for s in services]}
    return await _admin_page(request, "admin/channels.html", "channels", load)


@router.get("/admin/boards")
async def boards_page(request: Request, board: str | None = None) -> Response:
    async def load(request: Request) -> dict:
        repos = Repositories.of(request.app.state.runtime.db)
        agent = request.state.admin_agent
        boards = [b for b in await repos.catalog.list_boards()
                  if agent.can_admin_board(b["_id"])]
        chosen = next((b for b in boards if b["_id"] == board), boards[0] if boards else None)
        if chosen is None:
            return {"chosen": None, "all_boards": [], "types": [], "prios": []}
        rules = BoardRules(chosen)  # a board that names none has the defaults
        types, prios = rules.card_types, rules.priorities
        return {"chosen": {"id": chosen["_id"], "name": chosen["name"]},
                "all_boards": [{"id": b["_id"], "name": b["name"]} for b in boards],
                "types": list(types) + [{}, {}], "prios": list(prios) + [{}],
                "levels": PRIORITIES}
    return await _admin_page(request, "admin/boards.html", "boards", load, leads=True)


@router.get("/admin/people")
async def people_page(request: Request) -> Response:
    async def load(request: Request) -> dict:
        agents = await Repositories.of(request.app.state.runtime.db).agents.all_agents()
        return {"people": [{"id": a["_id"], "name": a.get("name") or a["_id"],
                            "role": a.get("role", "agent"), "active": a.get("active", True),
                            "boards": a.get("boards", []),
                            "tokens": api.token_views(a)} for a in agents]}
    return await _admin_page(request, "admin/people.html", "people", load)
