"""Agent authentication by API token (stored hashed) and role checks."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from desk_runtime.http import Forbidden, Unauthorized
from desk_runtime.sessions import token_hash
from fastapi import Request

from boards.metrics import ACCESS_DENIED


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    role: str  # "agent" | "admin"
    boards: frozenset[str]

    def can_see_board(self, board_id: str) -> bool:
        return self.role == "admin" or board_id in self.boards


def hash_token(token: str) -> str:
    return token_hash(token)


async def current_agent(request: Request) -> Agent:
    """The Bearer token's agent; else the browser session cookie's (see boards.web.session),
    which must also bring its CSRF token on state-changing requests."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        from boards.web.session import agent_from_session  # the web layer sits above the API

        agent = await agent_from_session(request)
        if agent is not None:
            return agent
        raise Unauthorized("an agent API token is required (Authorization: Bearer ...)")
    return await agent_for_token(request, token)


async def agent_for_token(request: Request, token: str) -> Agent:
    """The active agent holding this API token (or the bootstrap admin); 401 otherwise."""
    db = request.app.state.runtime.db
    doc = await db["agents"].find_one({"token_hashes": hash_token(token), "active": True})
    if doc is None:
        settings = request.app.state.settings
        boot = settings.bootstrap_admin_token
        if boot and hmac.compare_digest(token, boot):
            return Agent("admin", "Administrator", "admin", frozenset())
        raise Unauthorized("unknown or revoked token")
    return Agent(doc["_id"], doc.get("name", doc["_id"]), doc.get("role", "agent"),
                 frozenset(doc.get("boards", [])))


async def current_admin(request: Request) -> Agent:
    """Admins configure the catalog, boards and agents; agents get 403 here."""
    agent = await current_agent(request)
    if agent.role != "admin":
        ACCESS_DENIED.labels("not_admin").inc()
        raise Forbidden("this needs the admin role")
    return agent
