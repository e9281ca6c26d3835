"""Who is calling boards: agents' API tokens, their browser sessions, and role checks.

An API token (stored only as its hash) comes as `Authorization: Bearer ...`. The browser
never holds that token: `open_session` checks it once, stores only the SHA-256 of a
fresh random session id (with its expiry and a CSRF token) and sets it as an HttpOnly,
SameSite=Strict cookie. Requests authenticated by that cookie that change state must
carry the session's CSRF token in `X-CSRF-Token` (or a `csrf` form field for plain HTML
forms). `current_agent` accepts either (and refuses a viewer's writes but their own
bookkeeping); `current_admin` also wants the admin role; `require_board_admin` wants an
admin or the lead of that board.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from desk_runtime.http import Forbidden, Unauthorized
from desk_runtime.sessions import AGENT_SESSION_COOKIE, token_hash
from desk_runtime.web import (
    clear_cookie,
    csrf_sent,
    new_token,
    session_dependency,
    set_cookie,
    tokens_equal,
)
from fastapi import Request, Response

from boards.domain.agent import BOOTSTRAP_ADMIN, Agent
from boards.metrics import ACCESS_DENIED
from boards.repository import AgentRepository
from boards.web.metrics import SESSIONS

__all__ = ["COOKIE", "Agent", "agent_for_token", "close_session", "csrf_ok", "current_admin",
           "current_agent", "hash_token", "open_session", "require_board_admin", "session_of"]

COOKIE = AGENT_SESSION_COOKIE  # not the portal's: both may be served from one host
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# what a viewer may still change: their own reading marks, follows and saved views
VIEWER_WRITES = frozenset({("POST", "/v1/cards/{card_ref}/read"),
                           ("PUT", "/v1/cards/{card_ref}/following"),
                           ("POST", "/v1/views"), ("DELETE", "/v1/views/{view_id}")})


def hash_token(token: str) -> str:
    return token_hash(token)


def _agents(request: Request) -> AgentRepository:
    return AgentRepository(request.app.state.runtime.db)


def _bootstrap_token(request: Request) -> str:
    return request.app.state.settings.bootstrap_admin_token


# --- API tokens ---------------------------------------------------------------------------

async def agent_for_token(request: Request, token: str) -> Agent:
    """The active agent holding this API token (or the bootstrap admin); 401 otherwise."""
    doc = await _agents(request).agent_by_token(token)
    if doc is None:
        if tokens_equal(token, _bootstrap_token(request)):
            return BOOTSTRAP_ADMIN
        raise Unauthorized("unknown or revoked token")
    await _agents(request).note_token_use(doc, token, datetime.now(UTC))
    return Agent.from_document(doc)


# --- browser sessions ---------------------------------------------------------------------

async def _session_agent(request: Request, doc: dict) -> Agent | None:
    if doc.get("bootstrap"):
        boot = _bootstrap_token(request)
        if not boot or not tokens_equal(doc["bootstrap"], hash_token(boot)):
            return None
        return BOOTSTRAP_ADMIN
    agent = await _agents(request).active_agent(doc["agent_id"])
    # deactivated since: the session dies with the token
    if agent is None:
        return None
    if doc.get("token") and doc["token"] not in agent.get("token_hashes", ()):
        return None  # the API token it was opened with has been revoked since
    return Agent.from_document(agent)


async def _live_session(request: Request, raw: str) -> tuple[Agent, dict] | None:
    doc = await _agents(request).live_session(raw)
    if doc is None:
        return None
    agent = await _session_agent(request, doc)
    return (agent, doc) if agent is not None else None


# For the pages: the agent and session of the cookie (no CSRF check; pages only read).
session_of = session_dependency(_live_session, cookie=COOKIE)


def csrf_ok(request: Request, doc: dict, form_value: str | None = None) -> bool:
    return tokens_equal(csrf_sent(request, form_value), doc["csrf"])


async def agent_from_session(request: Request) -> Agent | None:
    """The signed-in agent of the session cookie, or None without a live session.

    A state-changing request on a cookie must carry the CSRF token (403 otherwise): a
    SameSite=Strict cookie already stays home, the token is the second lock.
    """
    found = await session_of(request)
    if found is None:
        return None
    agent, doc = found
    if request.method not in SAFE_METHODS and not csrf_ok(request, doc):
        SESSIONS.labels("csrf_refused").inc()
        raise Forbidden("missing or wrong CSRF token (X-CSRF-Token) for a cookie session")
    request.state.session_csrf = doc["csrf"]
    return agent


async def open_session(request: Request, response: Response, token: str) -> tuple[Agent, str]:
    """Check an API token and set a fresh session cookie; returns the agent and CSRF token."""
    try:
        agent = await agent_for_token(request, token)
    except Unauthorized:
        SESSIONS.labels("sign_in_refused").inc()
        raise
    settings = request.app.state.settings
    agents = _agents(request)
    raw = new_token(32)
    csrf = new_token(24)
    now = datetime.now(UTC)
    ttl = timedelta(hours=settings.session_hours)
    await agents.open_session({
        "_id": token_hash(raw), "agent_id": agent.id, "csrf": csrf, "created_at": now,
        "expires_at": now + ttl,
        # the bootstrap admin has no agents row: its session lives while that token is the
        # configured one (its hash is kept to compare; changing the setting ends it)
        "bootstrap": None if await agents.agent_by_token(token) else hash_token(token),
        "token": hash_token(token),  # revoking that token ends this session too
    })
    set_cookie(response, COOKIE, raw, max_age=int(ttl.total_seconds()),
               secure=settings.cookie_secure)
    SESSIONS.labels("signed_in").inc()
    return agent, csrf


async def close_session(request: Request, response: Response) -> None:
    raw = request.cookies.get(COOKIE)
    if raw:
        await _agents(request).close_session(raw)
    clear_cookie(response, COOKIE, secure=request.app.state.settings.cookie_secure)
    SESSIONS.labels("signed_out").inc()


# --- FastAPI dependencies -----------------------------------------------------------------

def _refuse_viewer_writes(request: Request, agent: Agent) -> Agent:
    """One check for every route: a viewer's change is refused wherever it is tried."""
    if agent.read_only and request.method not in SAFE_METHODS:
        route = getattr(request.scope.get("route"), "path", request.url.path)
        if (request.method, route) not in VIEWER_WRITES:
            ACCESS_DENIED.labels("read_only").inc()
            raise Forbidden("a viewer's access is read-only")
    return agent


async def current_agent(request: Request) -> Agent:
    """The Bearer token's agent; else the browser session cookie's, which must also bring
    its CSRF token on state-changing requests."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        agent = await agent_from_session(request)
        if agent is not None:
            return _refuse_viewer_writes(request, agent)
        raise Unauthorized("an agent API token is required (Authorization: Bearer ...)")
    return _refuse_viewer_writes(request, await agent_for_token(request, token))


def require_board_admin(agent: Agent, board_id: str) -> None:
    """Admins administer every board, a lead the boards they are on; others get 403."""
    if not agent.can_admin_board(board_id):
        ACCESS_DENIED.labels("not_board_admin").inc()
        raise Forbidden("this needs the admin role, or the lead role on this board")


async def current_admin(request: Request) -> Agent:
    """Admins configure the catalog, boards and agents; agents get 403 here."""
    agent = await current_agent(request)
    if agent.role != "admin":
        ACCESS_DENIED.labels("not_admin").inc()
        raise Forbidden("this needs the admin role")
    return agent
