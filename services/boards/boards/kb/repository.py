"""The knowledge base in boards' store: articles, their versions, and deflections.

The only code that touches `kb_articles`, `kb_versions` and `kb_deflections`. A search is
one indexed lookup (`keys $in [...]` with the reader's audiences), reading only the
fields ranking needs; the page of hits is then read by id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

Session = AsyncClientSession | None
RANKING_FIELDS = {"_id": 1, "weights": 1, "language": 1}
LIST_FIELDS = {"body": 0, "plain": 0, "weights": 0, "keys": 0}
# a lookup key common to most of a large base (e.g. a 3-letter prefix) still answers
# quickly: ranking reads at most this many candidates
MAX_CANDIDATES = 5000
KEYS_INDEX = [("keys", ASCENDING)]


class StaleArticle(Exception):
    """The article changed since the version the writer saw."""


class KnowledgeBaseRepository:
    def __init__(self, db: AsyncDatabase, session: Session = None):
        self._articles = db.kb_articles
        self._versions = db.kb_versions
        self._deflections = db.kb_deflections
        self._session = session

    async def ensure_indexes(self) -> None:
        await self._articles.create_index(KEYS_INDEX)
        await self._articles.create_index([("audience", ASCENDING), ("categories", ASCENDING)])
        await self._articles.create_index([("updated_at", DESCENDING)])
        await self._versions.create_index([("article_id", ASCENDING), ("version", DESCENDING)])
        await self._deflections.create_index([("at", ASCENDING)])

    # --- articles ---------------------------------------------------------------------------

    async def insert(self, doc: dict[str, Any], version: dict[str, Any]) -> None:
        await self._articles.insert_one(doc, session=self._session)
        await self._versions.insert_one(version, session=self._session)

    async def replace(self, doc: dict[str, Any], version: dict[str, Any], *,
                      expected_version: int) -> None:
        """Store the next version unless someone else saved one first (StaleArticle)."""
        done = await self._articles.replace_one(
            {"_id": doc["_id"], "version": expected_version}, doc, session=self._session)
        if done.matched_count != 1:
            raise StaleArticle(doc["_id"])
        await self._versions.insert_one(version, session=self._session)

    async def article(self, article_id: str) -> dict[str, Any] | None:
        return await self._articles.find_one({"_id": article_id}, session=self._session)

    async def readable(self, article_id: str, audiences: list[str] | None
                       ) -> dict[str, Any] | None:
        """The article if published to one of these audiences (None: agents, any article)."""
        flt: dict[str, Any] = {"_id": article_id}
        if audiences is not None:
            flt["audience"] = {"$in": audiences}
        return await self._articles.find_one(flt, {"weights": 0, "keys": 0},
                                             session=self._session)

    async def latest(self, *, audiences: list[str] | None = None, category: str | None = None,
                     status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, without bodies (lists and category pages)."""
        flt: dict[str, Any] = {}
        if audiences is not None:
            flt["audience"] = {"$in": audiences}
        if category:
            flt["categories"] = category
        if status:
            flt["status"] = status
        cursor = self._articles.find(flt, LIST_FIELDS, session=self._session)
        return [d async for d in cursor.sort("updated_at", DESCENDING).limit(limit)]

    async def category_counts(self, audiences: list[str]) -> dict[str, int]:
        """Published articles per category that these audiences read."""
        counts: dict[str, int] = {}
        cursor = self._articles.find({"audience": {"$in": audiences}}, {"categories": 1},
                                     session=self._session)
        async for d in cursor:
            for c in d.get("categories") or ():
                counts[c] = counts.get(c, 0) + 1
        return counts

    async def candidates(self, keys: list[str], audiences: list[str] | None,
                         status: str | None = None) -> list[dict[str, Any]]:
        """Articles holding any of the lookup keys, with what ranking reads (one query)."""
        flt: dict[str, Any] = {"keys": {"$in": keys}}
        if audiences is not None:
            flt["audience"] = {"$in": audiences}
        if status:
            flt["status"] = status
        cursor = self._articles.find(flt, RANKING_FIELDS, session=self._session)
        return [d async for d in cursor.limit(MAX_CANDIDATES)]

    async def by_ids(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        cursor = self._articles.find({"_id": {"$in": ids}}, {"weights": 0, "keys": 0},
                                     session=self._session)
        return {d["_id"]: d async for d in cursor}

    async def versions(self, article_id: str) -> list[dict[str, Any]]:
        cursor = self._versions.find({"article_id": article_id}, session=self._session)
        return [d async for d in cursor.sort("version", DESCENDING)]

    async def version(self, article_id: str, number: int) -> dict[str, Any] | None:
        return await self._versions.find_one({"_id": f"{article_id}:{number}"},
                                             session=self._session)

    # --- deflections ------------------------------------------------------------------------

    async def record_deflection(self, doc: dict[str, Any]) -> bool:
        """Keep one deflection (keyed by its event); False when it was already kept."""
        done = await self._deflections.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc},
                                                  upsert=True, session=self._session)
        return done.upserted_id is not None

    async def deflections(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        cursor = self._deflections.find({"at": {"$gte": start, "$lt": end}},
                                        session=self._session)
        return [d async for d in cursor]
