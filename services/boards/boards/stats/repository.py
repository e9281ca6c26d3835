"""The statistics read model in boards' database: only this module touches `stats_*`.

Every write is keyed by something the event carries (card id + version, comment id,
card + target + cycle, card + rating time, event id), so applying an event twice, or
events out of order, leaves the same documents: the model can be rebuilt by replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from desk_contracts.events import CardSnapshot, StatusCategory
from desk_runtime.unit_of_work import UnitOfWork
from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

CARDS = "stats_cards"
VERSIONS = "stats_versions"
SLA = "stats_sla"
SIGNALS = "stats_sla_signals"
RATINGS = "stats_ratings"
COMMENTS = "stats_comments"
LINKS = "stats_links"

_SNAPSHOT_FIELDS = ("number", "title", "service_id", "board_id", "column_id", "lane_id",
                    "priority", "channel", "assignee_id", "parent_id", "created_at",
                    "updated_at", "version")


OPEN_CATEGORIES = [c.value for c in StatusCategory if c != StatusCategory.DONE]


@dataclass(frozen=True)
class CardChange:
    """What an applied snapshot changed, for the metrics (None: nothing new)."""

    previous: dict | None
    current: dict


@dataclass(frozen=True)
class CardFilter:
    account: str | None = None
    service: str | None = None
    lane: str | None = None
    agent: str | None = None
    channel: str | None = None
    board: str | None = None
    boards: frozenset[str] | None = None  # None: every board (admin)
    created_before: datetime | None = None  # cards born after a period play no part in it

    def query(self) -> dict:
        q: dict = {"created_at": ({"$lt": self.created_before} if self.created_before
                                  else {"$exists": True})}
        for key, value in (("account_id", self.account), ("service_id", self.service),
                           ("lane_id", self.lane), ("assignee_id", self.agent),
                           ("channel", self.channel)):
            if value is not None:
                q[key] = None if value == "none" else value
        if self.boards is not None:
            allowed = set(self.boards)
            if self.board is not None:
                allowed &= {self.board}
            q["board_id"] = {"$in": sorted(allowed)}
        elif self.board is not None:
            q["board_id"] = self.board
        return q


IN_BATCH = 50
SCAN_RATIO = 10


class StatsRepository:
    def __init__(self, db: AsyncDatabase, session: AsyncClientSession | None = None, *,
                 unit: UnitOfWork | None = None):
        self.db = db
        self.session = unit.session if unit is not None else session
        self._unit = unit

    @classmethod
    def of(cls, uow: UnitOfWork) -> StatsRepository:
        """The repository writing in `uow`'s transaction, its blind inserts among the
        transaction's others (`uow.insert`: one statement per collection for a group)."""
        return cls(uow.db, unit=uow)

    async def _insert(self, collection: str, doc: dict) -> None:
        if self._unit is not None:
            self._unit.insert(collection, doc)
        else:
            await self.db[collection].insert_one(doc, session=self.session)

    async def ensure_indexes(self) -> None:
        await self.db[VERSIONS].create_index([("card_id", ASCENDING), ("version", ASCENDING)])
        await self.db[SLA].create_index("card_id")
        await self.db[SIGNALS].create_index("card_id")
        await self.db[RATINGS].create_index("card_id")
        await self.db[COMMENTS].create_index("card_id")
        await self.db[CARDS].create_index("created_at")
        # the open-requests gauge reads only open cards through it (every 15 s, idle or not:
        # without it the gauge decoded every card the desk ever closed)
        await self.db[CARDS].create_index("category")

    # ------------------------------------------------------------------ writes

    async def apply_snapshot(self, card: CardSnapshot, account_id: str, *,
                             at: datetime, new: bool = False,
                             follow_up_of: str | None = None) -> CardChange | None:
        """Record this version of the card; the card row keeps only the newest version.

        `new`: the card's creation, on its event's first delivery — nothing can have
        written its rows yet, so they are inserted without a read (a duplicate key fails
        the attempt and the redelivery, not `new`, takes the careful path)."""
        s = self.session
        category = card.status_category.value
        version = {"_id": f"{card.card_id}:{card.version}", "card_id": card.card_id,
                   "version": card.version, "at": at, "column_id": card.column_id,
                   "lane_id": card.lane_id, "category": category, "blocked": card.blocked}
        fields = {k: getattr(card, k) for k in _SNAPSHOT_FIELDS}
        fields["priority"] = card.priority.value
        fields |= {"category": category, "account_id": account_id,
                   "card_type": card.card_type, "kind": card.kind}
        if follow_up_of:
            fields["follow_up_of"] = follow_up_of
        if new:
            await self._insert(VERSIONS, version)
            await self._insert(CARDS, {"_id": card.card_id, **fields})
            return CardChange(None, fields)
        await self.db[VERSIONS].update_one(
            {"_id": version.pop("_id")}, {"$setOnInsert": version}, upsert=True, session=s)
        previous = await self.db[CARDS].find_one({"_id": card.card_id}, session=s)
        if previous is not None and previous.get("version", 0) >= card.version:
            if follow_up_of:  # a newer version came first: it still is a follow-up
                await self.db[CARDS].update_one({"_id": card.card_id},
                                                {"$set": {"follow_up_of": follow_up_of}},
                                                session=s)
            return None
        await self.db[CARDS].update_one({"_id": card.card_id}, {"$set": fields},
                                        upsert=True, session=s)
        return CardChange(previous if previous and "version" in previous else None, fields)

    async def add_link(self, parent_id: str, child_id: str) -> None:
        await self.db[LINKS].update_one({"_id": f"{parent_id}:{child_id}"},
                                        {"$set": {"parent_id": parent_id, "child_id": child_id}},
                                        upsert=True, session=self.session)

    async def add_comment(self, doc: dict, *, new: bool = False) -> None:
        """Keep a comment once; `new` (its event's first delivery): insert it unread."""
        if new:
            await self._insert(COMMENTS, doc)
            return
        await self.db[COMMENTS].update_one({"_id": doc["_id"]}, {"$setOnInsert": doc},
                                           upsert=True, session=self.session)

    async def add_rating(self, doc: dict) -> bool:
        """True when this rating is new (not a redelivery)."""
        res = await self.db[RATINGS].update_one({"_id": doc["_id"]}, {"$setOnInsert": doc},
                                                upsert=True, session=self.session)
        return res.upserted_id is not None

    async def put_target(self, doc: dict) -> bool:
        """Upsert a completed SLA target; True when it was not known before."""
        res = await self.db[SLA].replace_one({"_id": doc["_id"]}, doc, upsert=True,
                                             session=self.session)
        return res.upserted_id is not None

    async def add_signal(self, doc: dict) -> bool:
        res = await self.db[SIGNALS].update_one({"_id": doc["_id"]}, {"$setOnInsert": doc},
                                                upsert=True, session=self.session)
        return res.upserted_id is not None

    async def card_known(self, card_id: str) -> bool:
        doc = await self.db[CARDS].find_one({"_id": card_id, "version": {"$exists": True}},
                                            {"_id": 1}, session=self.session)
        return doc is not None

    async def unobserved_ratings(self, card_id: str) -> list[int]:
        """Ratings stored before their card was known; marks them observed."""
        rows = await self.db[RATINGS].find({"card_id": card_id, "observed": False},
                                           session=self.session).to_list(None)
        if rows:
            await self.db[RATINGS].update_many({"card_id": card_id, "observed": False},
                                               {"$set": {"observed": True}},
                                               session=self.session)
        return [r["rating"] for r in rows]

    async def service_of(self, card_id: str) -> str | None:
        doc = await self.db[CARDS].find_one({"_id": card_id}, {"service_id": 1},
                                            session=self.session)
        return (doc or {}).get("service_id")

    # ------------------------------------------------------------------ reads

    async def cards(self, flt: CardFilter, active_from: datetime | None = None) -> list[dict]:
        """Cards matching the filter; with `active_from`, without those already done and
        unchanged before it (they play no part in a period starting then), unless rated
        inside it (marked `rated_only`: they count for satisfaction, not for flow)."""
        if active_from is None:
            return await self.db[CARDS].find(flt.query()).to_list(None)
        q = {**flt.query(), "$or": [{"category": {"$ne": "done"}},
                                    {"updated_at": {"$gte": active_from}}]}
        found = {c["_id"]: c for c in await self.db[CARDS].find(q).to_list(None)}
        rated = {r["card_id"] for r in await self.db[RATINGS].find(
            {"rated_at": {"$gte": active_from}}, {"card_id": 1}).to_list(None)}
        missing = sorted(rated - found.keys())
        for i in range(0, len(missing), 1000):
            extra = {**flt.query(), "_id": {"$in": missing[i:i + 1000]}}
            for c in await self.db[CARDS].find(extra).to_list(None):
                found[c["_id"]] = {**c, "rated_only": True}
        return list(found.values())

    async def _by_cards(self, name: str, ids: list[str]) -> list[dict]:
        """The rows of `name` that belong to these cards.

        When the collection holds at most SCAN_RATIO rows per wanted card (a month of a
        young desk), one pass over it is cheapest; otherwise index lookups in small `$in` batches
        (large `$in` lists cost quadratically on some Mongo-protocol servers).
        """
        if not ids:
            return []
        collection = self.db[name]
        wanted = set(ids)
        if len(wanted) * SCAN_RATIO >= await collection.estimated_document_count():
            return [r async for r in collection.find({}) if r.get("card_id") in wanted]
        out: list[dict] = []
        for i in range(0, len(ids), IN_BATCH):
            out += await collection.find({"card_id": {"$in": ids[i:i + IN_BATCH]}}
                                         ).to_list(None)
        return out

    async def versions(self, ids: list[str]) -> list[dict]:
        return await self._by_cards(VERSIONS, ids)

    async def targets(self, ids: list[str]) -> list[dict]:
        return await self._by_cards(SLA, ids)

    async def signals(self, ids: list[str]) -> list[dict]:
        return await self._by_cards(SIGNALS, ids)

    async def ratings(self, ids: list[str]) -> list[dict]:
        return await self._by_cards(RATINGS, ids)

    async def comments(self, ids: list[str]) -> list[dict]:
        return await self._by_cards(COMMENTS, ids)

    async def followed_up(self) -> set[str]:
        rows = await self.db[CARDS].find({"follow_up_of": {"$ne": None, "$exists": True}},
                                         {"follow_up_of": 1}).to_list(None)
        return {r["follow_up_of"] for r in rows}

    async def open_counts(self) -> dict[tuple[str, str], int]:
        cursor = await self.db[CARDS].aggregate([
            {"$match": {"category": {"$in": OPEN_CATEGORIES}}},
            {"$group": {"_id": {"service": "$service_id", "category": "$category"},
                        "n": {"$sum": 1}}},
        ])
        rows = await cursor.to_list(None)
        return {((r["_id"].get("service") or "none"), r["_id"]["category"]): r["n"]
                for r in rows}
