"""The agent workspace's pages: sign-in, board, my cards, card, new request, admin.

Pages are rendered by the server with the data they need embedded as JSON (one request
from navigation to a usable board, no API round trips before the first paint); the
hand-written module `static/app.js` draws the board from it, handles drag and drop and
the keyboard "Move to…" menu, and follows live updates. Every change goes through the
same agents' API (`/v1/...`) with the session cookie and its CSRF token.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from desk_contracts.catalog import FIELD_ERRORS_RU, FieldType, FormField
from desk_runtime.http import Unauthorized
from fastapi import APIRouter, Form, Request
from desk_runtime.web import clear_cookie, new_token, set_cookie, template_environment, tokens_equal
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from boards.api.cards import card_view
from boards.auth import Agent, close_session, csrf_ok, open_session, session_of
from boards.application import cards as card_ops
from boards.domain.board import BoardRules, priority_name, type_name
from boards.domain.card import Card
from boards.domain.cards import query_terms
from boards.domain.mentions import mention_segments
from boards.repository import UNASSIGNED, CardListSpec, Repositories
from boards.web import i18n
from boards.web.metrics import SLA_FETCH_FAILED

HERE = Path(__file__).parent
BOARD_CARD_LIMIT = 2000  # newest cards drawn on one board page
LOGIN_CSRF_COOKIE = "desk_login_csrf"

router = APIRouter(include_in_schema=False)
env = template_environment(HERE / "templates")
# the workspace's templates are written for block tags on lines of their own
env.trim_blocks = env.lstrip_blocks = True


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def to_json(data: Any) -> str:
    """JSON safe inside a <script type="application/json"> element."""
    return (json.dumps(data, default=_json_default, ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


env.filters["tojson_safe"] = to_json


def _duration(seconds: Any) -> str:
    try:
        total = int(float(seconds))
    except (TypeError, ValueError):
        return ""
    sign, total = ("-" if total < 0 else ""), abs(total)
    d, rest = divmod(total, 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    return sign + (f"{d}d {h}h" if d else f"{h}h {m}m" if h else f"{m}m")


env.filters["dur"] = _duration
env.filters["dt"] = lambda v: (_json_default(v)[:16].replace("T", " ") if v else "")


def _repos(request: Request) -> Repositories:
    return Repositories.of(request.app.state.runtime.db)


def render(request: Request, template: str, lang: str, status: int = 200, **ctx: Any
           ) -> HTMLResponse:
    t = i18n.texts(lang)
    html = env.get_template(template).render(request=request, lang=lang, t=t, **ctx)
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in i18n.LANGS:
        # read by nothing but the server's next page: neither secret nor strict
        set_cookie(response, i18n.LANG_COOKIE, lang, max_age=365 * 86400, secure=False,
                   samesite="lax", httponly=False)
    # the pages draw only from this origin; no inline script runs (data is JSON)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def _signed_in(request: Request) -> tuple[Agent, dict] | None:
    return await session_of(request)


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _safe_next(value: str | None) -> str:
    # only paths on this site: never an absolute URL or "//host"
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/board"


async def _page_base(request: Request, agent: Agent, csrf: str, lang: str) -> dict:
    boards = [b for b in await _repos(request).catalog.list_boards()
              if agent.can_see_board(b["_id"])]
    return {"agent": agent, "csrf": csrf, "boards": boards,
            "nav_boards": [{"id": b["_id"], "name": b["name"]} for b in boards]}


async def signed_in_page(request: Request) -> tuple[Agent, dict, str, dict] | Response:
    """What every workspace page starts from: the signed-in agent, their session, the page's
    language and what the layout needs (`_page_base`); or, nobody signed in, the way to
    the sign-in page, which brings the browser back here."""
    found = await _signed_in(request)
    if found is None:
        return _to_login(request)
    agent, session = found
    lang = i18n.pick_language(request)
    return agent, session, lang, await _page_base(request, agent, session["csrf"], lang)


# --- sign-in ---------------------------------------------------------------------------------

@router.get("/login")
async def login_page(request: Request, next: str | None = None, failed: int = 0) -> Response:
    lang = i18n.pick_language(request)
    token = new_token(24)
    response = render(request, "login.html", lang, status=401 if failed else 200,
                      next=_safe_next(next), failed=bool(failed), login_csrf=token)
    # double-submit: a form posted from another site cannot know this cookie's value
    set_cookie(response, LOGIN_CSRF_COOKIE, token, max_age=3600,
               secure=request.app.state.settings.cookie_secure, path="/login")
    return response


@router.post("/login")
async def login(request: Request, token: str = Form(...), csrf: str = Form(""),
                next: str = Form("/board")) -> Response:
    if not tokens_equal(request.cookies.get(LOGIN_CSRF_COOKIE), csrf):
        return RedirectResponse("/login?failed=1", status_code=303)
    response = RedirectResponse(_safe_next(next), status_code=303)
    try:
        await open_session(request, response, token.strip())
    except Unauthorized:
        return RedirectResponse(f"/login?failed=1&next={quote(_safe_next(next))}",
                                status_code=303)
    clear_cookie(response, LOGIN_CSRF_COOKIE, secure=request.app.state.settings.cookie_secure,
                 path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, csrf: str = Form("")) -> Response:
    found = await _signed_in(request)
    if found is not None and not csrf_ok(request, found[1], csrf):
        return Response("missing or wrong CSRF token", status_code=403)
    response = RedirectResponse("/login", status_code=303)
    await close_session(request, response)
    return response


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/board", status_code=303)


# --- the board -------------------------------------------------------------------------------

def _card_brief(card: Card, rules: BoardRules | None = None) -> dict:
    """What a card tile needs (the board page embeds hundreds of these); with the board's
    rules, its labels by their current name and colour."""
    req = card.requester or {}
    return {"id": card.id, "number": card.number, "title": card.title,
            "version": card.version, "service_id": card.service_id,
            "column_id": card.column_id, "lane_id": card.lane_id,
            "priority": card.priority, "assignee_id": card.assignee_id,
            "requester": req.get("name") or req.get("email"),
            "unread": bool(card.unread_customer_reply),
            "sla": card.sla, "sla_state": card.sla_state,
            "entered": card.time_in_column_from,
            "kind": card.kind, "type": card.type,
            "priority_key": card.priority_key or card.priority,
            "labels": rules.shown_labels(card.labels) if rules else card.labels,
            "blocked": card.blocked,
            "blockers": [b.get("card_number") or b.get("reason") for b in card.blockers
                         if b.get("resolved_at") is None],
            "rating": (card.rating or {}).get("score"), "due_date": card.due_date,
            # done of total checklist items: the tile shows "x/y"
            "checklist": [sum(1 for i in card.checklist if i.get("done")), len(card.checklist)]}


def board_choices(board: dict, lang: str) -> dict:
    """The board's card types and priorities as its pages show them (names in `lang`)."""
    rules = BoardRules(board)
    return {
        "card_types": [{"id": t["id"], "name": type_name(t, lang),
                        "color": t.get("color") or "#607d8b",
                        "customer_request": bool(t.get("customer_request"))}
                       for t in rules.card_types],
        "priorities": [{"id": p["id"], "name": priority_name(p, lang),
                        "color": p["color"], "level": p["level"]} for p in rules.priorities]}


def _service_names(services: list, lang: str) -> dict[str, str]:
    return {s.id: s.name.get(lang) for s, _ in services}


@router.get("/board")
async def board_home(request: Request) -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    _agent, _session, lang, base = ctx
    boards = base["boards"]
    if not boards:
        return render(request, "empty.html", lang, **base)
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/board/{boards[0]['_id']}{query}", status_code=303)


@router.get("/board/{board_id}")
async def board_page(request: Request, board_id: str) -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, _session, lang, base = ctx
    repos = _repos(request)
    board = await repos.catalog.board(board_id)
    if board is None or not agent.can_see_board(board_id):
        return render(request, "empty.html", lang, status=404, **base)
    p = request.query_params
    filters = {k: p.get(k) or None for k in ("service", "priority", "sla", "assignee", "q")}
    assignee = filters["assignee"]
    if assignee is not None:
        assignee = {"me": agent.id, "none": UNASSIGNED}.get(assignee, assignee)
    spec = CardListSpec.build(
        boards=board_id, terms=query_terms(filters["q"]) if filters["q"] else None,
        assignee_id=assignee, service_id=filters["service"],
        priority=filters["priority"] if filters["priority"] in
        ("low", "medium", "high", "critical") else None,
        sla_state=filters["sla"] if filters["sla"] in ("warning", "breached") else None)
    cards = await repos.cards.list_cards(spec, BOARD_CARD_LIMIT)
    services = [s for s in await repos.catalog.list_services()
                if agent.can_see_board(s[0].target.board_id)]
    everyone = await repos.agents.agent_names()
    names = {a: everyone.get(a, a) for a in await repos.agents.board_members(board_id)}
    data = {
        "board": {"id": board["_id"], "name": board["name"], "columns": board["columns"],
                  "lanes": board["lanes"]} | board_choices(board, lang),
        "cards": [_card_brief(c, BoardRules(board)) for c in cards],
        "truncated": len(cards) >= BOARD_CARD_LIMIT,
        "services": _service_names(services, lang), "agents": names,
        "now": datetime.now(UTC), "me": agent.id, "lang": lang, "t": i18n.texts(lang),
    }
    return render(request, "board.html", lang, board=board, data=data, filters=filters,
                  services=services, choices=data["board"], members=names, **base)


@router.get("/my")
async def my_cards(request: Request) -> Response:
    """Everything I am responsible for, on every board I work on, newest first."""
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, _session, lang, base = ctx
    repos = _repos(request)
    scope = [b["_id"] for b in base["boards"]]
    cards = await repos.cards.list_cards(CardListSpec.build(boards=scope, assignee_id=agent.id),
                                         500)
    columns = {(b["_id"], c["id"]): c["name"] for b in base["boards"] for c in b["columns"]}
    services = _service_names(await repos.catalog.list_services(), lang)
    rules = {b["_id"]: BoardRules(b) for b in base["boards"]}
    rows = [{**_card_brief(c, rules.get(c.board_id)), "board_id": c.board_id,
             "column": columns.get((c.board_id, c.column_id), c.column_id),
             "service": services.get(c.service_id or "", c.service_id or ""),
             "done": c.status_category == "done"} for c in cards]
    return render(request, "my.html", lang, rows=rows,
                  data={"now": datetime.now(UTC), "lang": lang, "t": i18n.texts(lang)}, **base)


# --- one card --------------------------------------------------------------------------------

async def sla_record(request: Request, card_id: str) -> dict | None:
    """The SLA record from the sla service (None when it has none or cannot answer)."""
    settings = request.app.state.settings
    url = settings.sla_url.rstrip("/") + f"/v1/cards/{quote(card_id)}/sla"
    headers = {"Authorization": f"Bearer {settings.sla_token}"} if settings.sla_token else {}
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            r = await client.get(url, headers=headers)
    except httpx.HTTPError:
        SLA_FETCH_FAILED.inc()
        return None
    if r.status_code != 200:
        if r.status_code != 404:
            SLA_FETCH_FAILED.inc()
        return None
    return r.json()


@router.get("/cards/{card_ref}")
async def card_page(request: Request, card_ref: str) -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, _session, lang, base = ctx
    repos = _repos(request)
    card = await repos.cards.card(card_ref)
    if card is None or not agent.can_see_board(card.board_id):
        return render(request, "empty.html", lang, status=404, **base)
    board = await repos.catalog.board(card.board_id)
    service = await repos.catalog.service(card.service_id) if card.service_id else None
    comments = [c | {"segments": mention_segments(c.get("text") or "", c.get("mentions"))}
                for c in await repos.cards.comments_of(card.id)]
    canned = [{**{k: v for k, v in r.items() if k != "_id"}, "id": r["_id"]}
              for r in await repos.catalog.canned_for(card.service_id)]
    form = {f.key: f for f in service.fields} if service else {}
    rules = BoardRules(board) if board else None
    own = {f.key: f for f in rules.custom_fields(card.type)} if rules else {}
    t = i18n.texts(lang)
    fields = [{"key": k, "label": (own.get(k) or form[k]).label.get(lang)
               if k in own or k in form else k,
               "value": _field_text(own.get(k) or form.get(k), v, lang, t),
               "customer": form[k].show_to_customer if k in form and k not in own else False}
              for k, v in card.fields.items()]
    view = card_view(card, with_history=True, board=board)
    names = await repos.agents.agent_names()
    columns = {c["id"]: c for c in board["columns"]} if board else {}
    lanes = {lane["id"]: lane["name"] for lane in board["lanes"]} if board else {}
    data = {"card": {"id": card.id, "number": card.number, "version": card.version,
                     "checklist": card.checklist, "board_id": card.board_id,
                     "title": card.title, "requester": card.requester or {},
                     "tags": card.tags, "due_date": card.due_date},
            "agent_name": agent.name,
            "canned": canned, "reply_default": service.reply_default if service else "public",
            "lang": lang, "t": i18n.texts(lang), "now": datetime.now(UTC), "me": agent.id,
            "field_errors": FIELD_ERRORS_RU if lang == "ru" else {}}
    members = await repos.agents.board_members(card.board_id)
    data["card"] |= {"kind": card.kind, "members": card.members, "followers": card.followers,
                     "labels": view["labels"]}
    view["children"] = await card_ops.children_progress(repos, card)
    work = {"choices": board_choices(board, lang) if board else {"card_types": [],
                                                                   "priorities": []},
            "boards": base["nav_boards"],
            "following": agent.id in card.followers,
            "labels": rules.labels if rules else [],
            "label_ids": [x.get("id") for x in view["labels"]],
            "fields": [_field_input(f, card.fields.get(f.key), lang) for f in own.values()]}
    return render(request, "card.html", lang, card=view, members=members, service=service,
                  board=board, work=work,
                  columns=columns, lanes=lanes, comments=comments, fields=fields,
                  sla=await sla_record(request, card.id), names=names, data=data,
                  reply_default=data["reply_default"], canned=canned, **base)


def _field_text(field: FormField | None, value: Any, lang: str, t: dict[str, str]) -> Any:
    """A custom field's value as a person reads it (a choice by its label, yes/no)."""
    if field is None:
        return value
    if field.type == FieldType.CHECKBOX:
        return t["yes"] if value else t["no"]
    labels = {o.value: o.label.get(lang) for o in field.options}
    if isinstance(value, list):
        return ", ".join(labels.get(str(v), str(v)) for v in value)
    return labels.get(str(value), value)


def _field_input(field: FormField, value: Any, lang: str) -> dict:
    """What the card's edit form needs to show one typed field with the matching input."""
    return {"key": field.key, "label": field.label.get(lang), "type": field.type.value,
            "required": field.required, "value": value,
            "options": [{"value": o.value, "label": o.label.get(lang)} for o in field.options]}


@router.get("/board/{board_id}/settings")
async def board_settings_page(request: Request, board_id: str) -> Response:
    """A board's settings for its admins (and its lead): the label list, the typed custom
    fields, SLA targets of its priorities (those need the admin role: sla's own API)."""
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, _session, lang, base = ctx
    board = await _repos(request).catalog.board(board_id)
    if board is None or not agent.can_see_board(board_id):
        return render(request, "empty.html", lang, status=404, **base)
    if not agent.can_admin_board(board_id):
        return render(request, "empty.html", lang, status=403, forbidden=True, **base)
    rules = BoardRules(board)
    data = {"board": {"id": board_id, "name": board["name"],
                      "card_types": [ct["id"] for ct in rules.card_types]},
            "labels": rules.labels, "fields": board.get("custom_fields") or [],
            "lang": lang, "t": i18n.texts(lang),
            "field_errors": FIELD_ERRORS_RU if lang == "ru" else {}}
    return render(request, "board_settings.html", lang, board=board, data=data,
                  labels=rules.labels, custom_fields=data["fields"],
                  priorities=board_choices(board, lang)["priorities"],
                  sla_targets=("first_response", "next_response", "resolution"), **base)


# --- a request taken by phone ----------------------------------------------------------------

@router.get("/new")
async def new_card_page(request: Request) -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, _session, lang, base = ctx
    services = [s for s, _ in await _repos(request).catalog.list_services()
                if s.active and agent.can_see_board(s.target.board_id)]
    data = {"services": [s.model_dump(mode="json", by_alias=True) for s in services],
            "lang": lang, "t": i18n.texts(lang)}
    return render(request, "new.html", lang, services=services, data=data, **base)


# --- admin -----------------------------------------------------------------------------------

@router.get("/admin")
async def admin_page(request: Request, service: str | None = None) -> Response:
    ctx = await signed_in_page(request)
    if isinstance(ctx, Response):
        return ctx
    agent, _session, lang, base = ctx
    if agent.role != "admin":
        return render(request, "empty.html", lang, status=403, forbidden=True, **base)
    repos = _repos(request)
    services = await repos.catalog.list_services()
    agents = [{"id": a["_id"], "name": a.get("name"), "email": a.get("email"),
               "role": a.get("role", "agent"), "boards": a.get("boards", []),
               "active": a.get("active", True)} for a in await repos.agents.all_agents()]
    editing = next((s for s, _ in services if s.id == service), None)
    data = {"services": {s.id: s.model_dump(mode="json", by_alias=True) for s, _ in services},
            "boards": [{"id": b["_id"], "name": b["name"], "space": b.get("space"),
                        "columns": b["columns"], "lanes": b["lanes"],
                        "members": await repos.agents.board_members(b["_id"])}
                       for b in base["boards"]],
            "editing": editing.model_dump(mode="json", by_alias=True) if editing else None,
            "lang": lang, "t": i18n.texts(lang)}
    return render(request, "admin.html", lang, services=services, agents=agents, data=data,
                  **base)
