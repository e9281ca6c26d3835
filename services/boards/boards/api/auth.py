"""Agent authentication by API token (stored hashed) and role checks."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from desk_runtime.http import Unauthorized
from fastapi import Request


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    role: str  # "agent" | "admin"
    boards: frozenset[str]

    def can_see_board(self, board_id: str) -> bool:
        return self.role == "admin" or board_id in self.boards


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def current_agent(request: Request) -> Agent:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("an agent API token is required (Authorization: Bearer ...)")
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
