"""Boards' store: cards, comments, boards, the service catalog, counters."""

from __future__ import annotations

from typing import Any

from desk_contracts.catalog import ServiceDefinition
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase


class BoardsRepository:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.cards = db["cards"]
        self.comments = db["comments"]
        self.boards = db["boards"]
        self.services = db["services"]
        self.counters = db["counters"]

    async def ensure_indexes(self) -> None:
        await self.cards.create_index("number", unique=True)
        await self.cards.create_index(
            "request_id", unique=True, partialFilterExpression={"request_id": {"$type": "string"}}
        )
        await self.cards.create_index([("board_id", ASCENDING), ("column_id", ASCENDING),
                                       ("updated_at", DESCENDING)])
        await self.cards.create_index([("assignee_id", ASCENDING), ("status_category", ASCENDING)])
        await self.comments.create_index([("card_id", ASCENDING), ("created_at", ASCENDING)])

    async def next_counter(self, key: str, session: AsyncClientSession | None = None) -> int:
        doc = await self.counters.find_one_and_update(
            {"_id": key}, {"$inc": {"n": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER, session=session,
        )
        return int(doc["n"])

    async def get_service(self, service_id: str, session: AsyncClientSession | None = None
                          ) -> ServiceDefinition | None:
        doc = await self.services.find_one({"_id": service_id}, session=session)
        return ServiceDefinition.model_validate(doc["definition"]) if doc else None

    async def list_services(self) -> list[tuple[ServiceDefinition, int]]:
        return [
            (ServiceDefinition.model_validate(d["definition"]), d["revision"])
            async for d in self.services.find({}).sort("_id", ASCENDING)
        ]

    async def save_service(self, service: ServiceDefinition, session: AsyncClientSession) -> int:
        doc = await self.services.find_one_and_update(
            {"_id": service.id},
            {"$set": {"definition": service.model_dump(mode="json", by_alias=True)},
             "$inc": {"revision": 1}},
            upsert=True, return_document=ReturnDocument.AFTER, session=session,
        )
        return int(doc["revision"])

    async def get_board(self, board_id: str, session: AsyncClientSession | None = None
                        ) -> dict[str, Any] | None:
        return await self.boards.find_one({"_id": board_id}, session=session)

    async def save_board(self, board: dict[str, Any], session: AsyncClientSession | None = None
                         ) -> None:
        await self.boards.replace_one({"_id": board["_id"]}, board, upsert=True, session=session)

    async def card_by_request(self, request_id: str, session: AsyncClientSession | None = None
                              ) -> dict[str, Any] | None:
        return await self.cards.find_one({"request_id": request_id}, session=session)

    async def get_card(self, card_id: str, session: AsyncClientSession | None = None
                       ) -> dict[str, Any] | None:
        return await self.cards.find_one(
            {"$or": [{"_id": card_id}, {"number": card_id.upper()}]}, session=session
        )

    async def open_load(self, agents: list[str], session: AsyncClientSession | None = None
                        ) -> dict[str, int]:
        load = {a: 0 for a in agents}
        async for row in self.cards.aggregate(
            [{"$match": {"assignee_id": {"$in": agents}, "status_category": {"$ne": "done"}}},
             {"$group": {"_id": "$assignee_id", "n": {"$sum": 1}}}],
            session=session,
        ):
            load[row["_id"]] = row["n"]
        return load
