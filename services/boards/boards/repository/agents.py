"""Agents and their workspace sessions in the store (what authentication reads)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from desk_runtime.sessions import live_session, token_hash
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

Session = AsyncClientSession | None
TOKEN_USE_RESOLUTION = timedelta(minutes=1)  # "last used" is kept to the minute


class AgentRepository:
    """Agents (tokens stored only as hashes, board membership) and browser sessions."""

    def __init__(self, db: AsyncDatabase):
        self._agents = db.agents
        self._sessions = db.agent_sessions

    async def ensure_indexes(self) -> None:
        await self._agents.create_index("token_hashes")
        await self._agents.create_index("boards")

    async def ensure_session_indexes(self) -> None:
        # expired sessions disappear by themselves (the expiry check does not rely on it)
        await self._sessions.create_index("expires_at", expireAfterSeconds=0)

    # --- agents -----------------------------------------------------------------------------

    async def agent_by_token(self, token: str) -> dict[str, Any] | None:
        """The active agent holding this API token."""
        return await self._agents.find_one({"token_hashes": token_hash(token), "active": True})

    # --- API tokens (several per agent, each with a name and its last use) ----------------

    async def note_token_use(self, doc: dict[str, Any], token: str, at: datetime,
                             every: timedelta = TOKEN_USE_RESOLUTION) -> None:
        """Remember when a token was last used, at most once per `every` (not a write per
        request)."""
        digest = token_hash(token)
        last = (doc.get("token_meta") or {}).get(digest, {}).get("last_used_at")
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last is None or at - last >= every:
            await self._agents.update_one({"_id": doc["_id"], "token_hashes": digest},
                                          {"$set": {f"token_meta.{digest}.last_used_at": at}})

    async def add_token(self, agent_id: str, token: str, meta: dict[str, Any]) -> bool:
        digest = token_hash(token)
        result = await self._agents.update_one(
            {"_id": agent_id}, {"$push": {"token_hashes": digest},
                                "$set": {f"token_meta.{digest}": meta}})
        return result.matched_count == 1

    async def revoke_token(self, agent_id: str, token_id: str) -> str | None:
        """Revoke the token whose hash starts with `token_id`; its hash, or None."""
        doc = await self._agents.find_one({"_id": agent_id}, {"token_hashes": 1})
        digest = next((h for h in (doc or {}).get("token_hashes", [])
                       if h.startswith(token_id)), None)
        if digest is None:
            return None
        await self._agents.update_one({"_id": agent_id},
                                      {"$pull": {"token_hashes": digest},
                                       "$unset": {f"token_meta.{digest}": ""}})
        return digest

    async def agent(self, agent_id: str) -> dict[str, Any] | None:
        return await self._agents.find_one({"_id": agent_id})

    async def active_agent(self, agent_id: str, session: Session = None
                           ) -> dict[str, Any] | None:
        return await self._agents.find_one({"_id": agent_id, "active": True}, session=session)

    async def agent_exists(self, agent_id: str, session: Session = None) -> bool:
        return await self._agents.find_one({"_id": agent_id}, {"_id": 1},
                                          session=session) is not None

    async def add_agent(self, doc: dict[str, Any], session: Session = None) -> None:
        await self._agents.insert_one(doc, session=session)

    async def change_agent(self, agent_id: str, changes: dict[str, Any],
                           session: Session = None) -> dict[str, Any] | None:
        """The agent after the change; None when there is no such agent."""
        return await self._agents.find_one_and_update(
            {"_id": agent_id}, {"$set": changes}, return_document=ReturnDocument.AFTER,
            session=session)

    async def all_agents(self) -> list[dict[str, Any]]:
        return [a async for a in self._agents.find({}).sort("_id", ASCENDING)]

    async def agent_names(self) -> dict[str, str]:
        return {a["_id"]: a.get("name") or a["_id"]
                async for a in self._agents.find({}, {"name": 1})}

    async def board_members(self, board_id: str) -> list[str]:
        return [a["_id"] async for a in self._agents.find({"boards": board_id}, {"_id": 1})]

    async def agents_seeing_board(self, board_id: str, session: Session = None
                                  ) -> list[dict[str, Any]]:
        """Active agents who can see a board: its members and the admins (who may be
        @named in its notes), each with what a mention needs."""
        fields = {"name": 1, "email": 1, "slack_webhook_url": 1, "language": 1, "role": 1,
                  "boards": 1}
        found = {a["_id"]: a async for a in self._agents.find(
            {"boards": board_id, "active": True}, fields, session=session)}
        found |= {a["_id"]: a async for a in self._agents.find(
            {"role": "admin", "active": True}, fields, session=session)}
        return [found[k] for k in sorted(found)]

    async def set_board_members(self, board_id: str, members: list[str],
                                session: Session = None) -> None:
        """Membership lives on the agent (what auth reads); a board's list is derived."""
        await self._agents.update_many({"boards": board_id, "_id": {"$nin": members}},
                                      {"$pull": {"boards": board_id}}, session=session)
        await self._agents.update_many({"_id": {"$in": members}},
                                      {"$addToSet": {"boards": board_id}}, session=session)

    # --- browser sessions -------------------------------------------------------------------

    async def open_session(self, doc: dict[str, Any]) -> None:
        await self._sessions.insert_one(doc)

    async def live_session(self, raw: str | None) -> dict[str, Any] | None:
        """The session a cookie's value names, unless unknown, malformed or expired."""
        return await live_session(self._sessions, raw)

    async def close_session(self, raw: str) -> None:
        await self._sessions.delete_one({"_id": token_hash(raw)})
