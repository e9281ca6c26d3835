"""Bearer tokens and browser sessions: stored only as hashes, looked up with their expiry.

Agents' API tokens (boards), agents' workspace sessions (boards) and customers' portal
sessions all keep `token_hash(token)` as the document id, never the token itself, so
a leaked table signs nobody in.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pymongo.asynchronous.collection import AsyncCollection

MAX_TOKEN_LENGTH = 200


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def live_session(sessions: AsyncCollection, token: str | None) -> dict | None:
    """The session a cookie's token names, unless it is unknown, malformed or expired."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    doc = await sessions.find_one({"_id": token_hash(token)})
    if doc is None:
        return None
    expires = doc["expires_at"]
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return doc if expires > datetime.now(UTC) else None


# Cookie names: the portal and the agents' workspace may be served from one host (cookies
# ignore ports), so each keeps its session under its own name and never reads the other's.
AGENT_SESSION_COOKIE = "desk_agent_session"
PORTAL_COOKIE_PREFIX = "desk_portal"  # <prefix>_session, _attempt, _pre, _device, _lang
