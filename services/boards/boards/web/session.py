"""Browser sessions for agents: an API token (or nothing else) is exchanged for a cookie.

Why a session and not the token in the browser: the token is long-lived and shown once;
the page never holds it. `POST /v1/session` checks the token, stores only the SHA-256 of
a fresh random session id (with its expiry and a CSRF token) and sets it as an HttpOnly,
SameSite=Strict cookie. Requests authenticated by that cookie that change state must
carry the session's CSRF token in `X-CSRF-Token` (or a `csrf` form field for the plain
HTML sign-out form); `current_agent` (boards.api.auth) accepts the cookie besides Bearer.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta

from desk_runtime.http import Forbidden, Unauthorized
from desk_runtime.sessions import AGENT_SESSION_COOKIE, live_session, token_hash
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from boards.api.auth import Agent, agent_for_token, hash_token
from boards.web.metrics import SESSIONS

COOKIE = AGENT_SESSION_COOKIE  # not the portal's: both may be served from one host
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSIONS_COLLECTION = "agent_sessions"

router = APIRouter(prefix="/v1", tags=["session"])


async def ensure_indexes(db) -> None:
    # expired sessions disappear by themselves (the check below does not rely on it)
    await db[SESSIONS_COLLECTION].create_index("expires_at", expireAfterSeconds=0)


async def _session_doc(request: Request) -> dict | None:
    return await live_session(request.app.state.runtime.db[SESSIONS_COLLECTION],
                              request.cookies.get(COOKIE))


async def _agent_of(request: Request, doc: dict) -> Agent | None:
    if doc.get("bootstrap"):
        boot = request.app.state.settings.bootstrap_admin_token
        if not boot or not hmac.compare_digest(doc["bootstrap"], hash_token(boot)):
            return None
        return Agent("admin", "Administrator", "admin", frozenset())
    db = request.app.state.runtime.db
    agent = await db["agents"].find_one({"_id": doc["agent_id"], "active": True})
    if agent is None:  # deactivated since: the session dies with the token
        return None
    return Agent(agent["_id"], agent.get("name", agent["_id"]), agent.get("role", "agent"),
                 frozenset(agent.get("boards", [])))


def csrf_ok(request: Request, doc: dict, form_value: str | None = None) -> bool:
    sent = request.headers.get(CSRF_HEADER) or form_value or ""
    return bool(sent) and hmac.compare_digest(sent, doc["csrf"])


async def agent_from_session(request: Request) -> Agent | None:
    """The signed-in agent of the session cookie, or None without a live session.

    A state-changing request on a cookie must carry the CSRF token (403 otherwise): a
    SameSite=Strict cookie already stays home, the token is the second lock.
    """
    doc = await _session_doc(request)
    if doc is None:
        return None
    agent = await _agent_of(request, doc)
    if agent is None:
        return None
    if request.method not in SAFE_METHODS and not csrf_ok(request, doc):
        SESSIONS.labels("csrf_refused").inc()
        raise Forbidden("missing or wrong CSRF token (X-CSRF-Token) for a cookie session")
    request.state.session_csrf = doc["csrf"]
    return agent


async def session_of(request: Request) -> tuple[Agent, dict] | None:
    """For the pages: the agent and session (no CSRF check; pages only read)."""
    doc = await _session_doc(request)
    if doc is None:
        return None
    agent = await _agent_of(request, doc)
    return (agent, doc) if agent is not None else None


async def open_session(request: Request, response: Response, token: str) -> tuple[Agent, str]:
    """Check an API token and set a fresh session cookie; returns the agent and CSRF token."""
    try:
        agent = await agent_for_token(request, token)
    except Unauthorized:
        SESSIONS.labels("sign_in_refused").inc()
        raise
    settings = request.app.state.settings
    raw = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    ttl = timedelta(hours=settings.session_hours)
    await request.app.state.runtime.db[SESSIONS_COLLECTION].insert_one({
        "_id": token_hash(raw), "agent_id": agent.id, "csrf": csrf, "created_at": now,
        "expires_at": now + ttl,
        # the bootstrap admin has no agents row: its session lives while that token is the
        # configured one (its hash is kept to compare; changing the setting ends it)
        "bootstrap": None if await request.app.state.runtime.db["agents"].find_one(
            {"token_hashes": hash_token(token), "active": True}) else hash_token(token),
    })
    response.set_cookie(COOKIE, raw, max_age=int(ttl.total_seconds()), httponly=True,
                        samesite="strict", secure=settings.cookie_secure, path="/")
    SESSIONS.labels("signed_in").inc()
    return agent, csrf


async def close_session(request: Request, response: Response) -> None:
    raw = request.cookies.get(COOKIE)
    if raw:
        await request.app.state.runtime.db[SESSIONS_COLLECTION].delete_one({"_id": token_hash(raw)})
    response.delete_cookie(COOKIE, path="/", samesite="strict",
                           secure=request.app.state.settings.cookie_secure, httponly=True)
    SESSIONS.labels("signed_out").inc()


class SignIn(BaseModel):
    token: str = Field(min_length=1, max_length=500, description="the agent's API token")


class SessionOut(BaseModel):
    agent_id: str
    name: str
    role: str
    csrf_token: str = Field(description="send as X-CSRF-Token on POST/PUT/PATCH/DELETE")


@router.post("/session", response_model=SessionOut)
async def sign_in(body: SignIn, request: Request, response: Response) -> dict:
    """Exchange an agent API token for an HttpOnly session cookie."""
    agent, csrf = await open_session(request, response, body.token)
    return {"agent_id": agent.id, "name": agent.name, "role": agent.role, "csrf_token": csrf}


@router.get("/session", response_model=SessionOut)
async def whoami(request: Request) -> dict:
    found = await session_of(request)
    if found is None:
        raise Unauthorized("not signed in")
    agent, doc = found
    return {"agent_id": agent.id, "name": agent.name, "role": agent.role,
            "csrf_token": doc["csrf"]}


@router.delete("/session", status_code=204)
async def sign_out(request: Request, response: Response) -> Response:
    """Sign out: the session is deleted on the server, not only forgotten by the browser."""
    found = await session_of(request)
    if found is not None and not csrf_ok(request, found[1]):
        raise Forbidden("missing or wrong CSRF token")
    await close_session(request, response)
    response.status_code = 204
    return response
