"""Boards' configuration in the store: the service catalog, boards and canned responses.

Read-mostly: a service or a board is kept a few seconds per process (`config_cache`) and
dropped here when saved.
"""

from __future__ import annotations

from typing import Any

from desk_contracts.catalog import ServiceDefinition
from desk_runtime.config_cache import config_cache
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

Session = AsyncClientSession | None


class CatalogRepository:
    def __init__(self, db: AsyncDatabase):
        self._cache = config_cache(db.name)
        self._services = db.services
        self._boards = db.boards
        self._canned = db.canned_responses

    async def ensure_indexes(self) -> None:
        await self._canned.create_index([("service_id", ASCENDING), ("title", ASCENDING)])

    # --- services ---------------------------------------------------------------------------

    async def service(self, service_id: str, session: Session = None
                      ) -> ServiceDefinition | None:
        async def load() -> ServiceDefinition | None:
            doc = await self._services.find_one({"_id": service_id})
            return ServiceDefinition.model_validate(doc["definition"]) if doc else None

        return await self._cache.get(("services", service_id), load)

    async def list_services(self) -> list[tuple[ServiceDefinition, int]]:
        return [
            (ServiceDefinition.model_validate(d["definition"]), d["revision"])
            async for d in self._services.find({}).sort("_id", ASCENDING)
        ]

    async def save_service(self, service: ServiceDefinition, session: Session = None) -> int:
        """Store a definition; its new revision."""
        doc = await self._services.find_one_and_update(
            {"_id": service.id},
            {"$set": {"definition": service.model_dump(mode="json", by_alias=True)},
             "$inc": {"revision": 1}},
            upsert=True, return_document=ReturnDocument.AFTER, session=session,
        )
        self._cache.forget(("services", service.id))
        return int(doc["revision"])

    # --- boards -----------------------------------------------------------------------------

    async def board(self, board_id: str, session: Session = None) -> dict[str, Any] | None:
        return await self._cache.get(
            ("boards", board_id), lambda: self._boards.find_one({"_id": board_id}), copy=True)

    async def list_boards(self) -> list[dict[str, Any]]:
        return [b async for b in self._boards.find({}).sort("_id", ASCENDING)]

    async def save_board(self, board: dict[str, Any], session: Session = None) -> None:
        await self._boards.replace_one({"_id": board["_id"]}, board, upsert=True, session=session)
        self._cache.forget(("boards", board["_id"]))

    async def set_board_part(self, board_id: str, name: str, value: Any,
                             session: Session = None) -> bool:
        """Replace one part of a board (its labels, its custom fields); False: no board."""
        done = await self._boards.update_one({"_id": board_id}, {"$set": {name: value}},
                                             session=session)
        self._cache.forget(("boards", board_id))
        return done.matched_count == 1

    # --- canned responses -------------------------------------------------------------------

    async def canned_for(self, service_id: str | None) -> list[dict[str, Any]]:
        """Account-wide answers plus, with a service, that service's own (by title)."""
        scope = [None] + ([service_id] if service_id else [])
        return [r async for r in self._canned.find({"service_id": {"$in": scope}}).sort("title")]

    async def canned_response(self, canned_id: str, session: Session = None
                              ) -> dict[str, Any] | None:
        return await self._canned.find_one({"_id": canned_id}, session=session)

    async def add_canned(self, doc: dict[str, Any]) -> None:
        await self._canned.insert_one(doc)

    async def change_canned(self, canned_id: str, changes: dict[str, Any]
                            ) -> dict[str, Any] | None:
        """The answer after `changes`, or None when there is no such answer."""
        return await self._canned.find_one_and_update(
            {"_id": canned_id}, {"$set": changes}, return_document=ReturnDocument.AFTER)

    async def delete_canned(self, canned_id: str) -> bool:
        return (await self._canned.delete_one({"_id": canned_id})).deleted_count == 1
