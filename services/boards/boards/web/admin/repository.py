"""Boards' audit log of configuration changes made on the admin pages, in boards' store.

The only code that touches `admin_audit`: one entry per accepted change — who, when,
which area and item, and the item before and after (None for created or deleted).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

MAX_LISTED = 500


class AuditRepository:
    def __init__(self, db: AsyncDatabase):
        self._entries = db.admin_audit

    async def ensure_indexes(self) -> None:
        await self._entries.create_index([("at", DESCENDING)])
        await self._entries.create_index([("area", 1), ("at", DESCENDING)])

    async def record(self, *, who: dict[str, str], area: str, action: str, target: str,
                     before: Any, after: Any) -> dict[str, Any]:
        entry = {"_id": str(uuid.uuid4()), "at": datetime.now(UTC), "who": who, "area": area,
                 "action": action, "target": target, "before": before, "after": after}
        await self._entries.insert_one(entry)
        return entry

    async def recent(self, area: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = {"area": area} if area else {}
        cursor = self._entries.find(query).sort("at", DESCENDING).limit(min(limit, MAX_LISTED))
        return [e async for e in cursor]
