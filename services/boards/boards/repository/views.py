"""Saved views of the card table in the store: personal ones and shared ones."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase


class SavedViewRepository:
    """A view is a name and a table query string, owned by an agent, maybe shared."""

    def __init__(self, db: AsyncDatabase):
        self._views = db.saved_views

    async def ensure_indexes(self) -> None:
        await self._views.create_index([("owner", ASCENDING), ("name", ASCENDING)])
        await self._views.create_index([("shared", ASCENDING), ("name", ASCENDING)])

    async def add(self, view: dict[str, Any]) -> None:
        await self._views.insert_one(view)

    async def view(self, view_id: str) -> dict[str, Any] | None:
        return await self._views.find_one({"_id": view_id})

    async def visible_to(self, agent_id: str) -> list[dict[str, Any]]:
        """The agent's own views and every shared one (the caller keeps those of boards
        the agent may see), by name."""
        return [v async for v in self._views.find(
            {"$or": [{"owner": agent_id}, {"shared": True}]}).sort("name", ASCENDING)]

    async def remove(self, view_id: str) -> bool:
        return (await self._views.delete_one({"_id": view_id})).deleted_count == 1
