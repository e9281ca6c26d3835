"""Automation's store: categories, rules (each version kept), checklist and request
templates, the log of rule runs, the events rules caused, and the chains of request
templates in progress. The only code that touches these collections.

Definitions are read on every card event and change a few times a day: a process keeps
the lists `config_cache` seconds, and drops them when it saves one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from desk_runtime.config_cache import config_cache
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

Session = AsyncClientSession | None

# kind → collection of the definitions an admin edits
DEFINITIONS = {"category": "automation_categories", "rule": "automation_rules",
               "checklist": "checklist_templates", "request_template": "request_templates"}


class AutomationRepository:
    def __init__(self, db: AsyncDatabase):
        self._db = db
        self._cache = config_cache(db.name)
        self._versions = db.automation_rule_versions
        self._runs = db.automation_runs
        self._caused = db.automation_caused
        self._chains = db.template_chains

    async def ensure_indexes(self) -> None:
        await self._runs.create_index([("card_id", ASCENDING), ("at", DESCENDING)])
        await self._versions.create_index([("rule_id", ASCENDING), ("version", DESCENDING)])
        await self._chains.create_index([("started.card_id", ASCENDING)])
        # which events rules caused matters while they are being handled: days, not ever
        await self._caused.create_index("at", expireAfterSeconds=30 * 24 * 3600)
        await self._db[DEFINITIONS["category"]].create_index([("service_id", ASCENDING)])

    # --- definitions -----------------------------------------------------------------------

    async def all(self, kind: str) -> tuple[dict[str, Any], ...]:
        """Every definition of one kind (categories, rules, ...), by id; kept briefly."""
        async def load() -> tuple[dict[str, Any], ...]:
            return tuple([d async for d in self._db[DEFINITIONS[kind]].find({}).sort(
                "_id", ASCENDING)])

        return await self._cache.get(("automation", kind), load)

    async def one(self, kind: str, item_id: str, session: Session = None
                  ) -> dict[str, Any] | None:
        return await self._db[DEFINITIONS[kind]].find_one({"_id": item_id}, session=session)

    async def save(self, kind: str, doc: dict[str, Any], session: Session = None) -> None:
        await self._db[DEFINITIONS[kind]].replace_one({"_id": doc["_id"]}, doc, upsert=True,
                                                      session=session)
        self._cache.forget(("automation", kind))

    async def delete(self, kind: str, item_id: str, session: Session = None) -> bool:
        result = await self._db[DEFINITIONS[kind]].delete_one({"_id": item_id}, session=session)
        self._cache.forget(("automation", kind))
        return result.deleted_count == 1

    async def save_rule(self, rule: dict[str, Any], *, by: str, at: datetime,
                        session: Session = None) -> dict[str, Any]:
        """Store a rule as its next version; the version before stays readable."""
        current = await self._db[DEFINITIONS["rule"]].find_one_and_update(
            {"_id": rule["_id"]},
            {"$set": {k: v for k, v in rule.items() if k != "_id"} | {"saved_by": by,
                                                                       "saved_at": at},
             "$inc": {"version": 1}},
            upsert=True, return_document=ReturnDocument.AFTER, session=session)
        await self._versions.insert_one(
            {"_id": f"{rule['_id']}:{current['version']}", "rule_id": rule["_id"],
             "version": current["version"], "rule": current}, session=session)
        self._cache.forget(("automation", "rule"))
        return current

    async def rule_versions(self, rule_id: str) -> list[dict[str, Any]]:
        return [d["rule"] async for d in self._versions.find({"rule_id": rule_id}).sort(
            "version", DESCENDING)]

    # --- runs ------------------------------------------------------------------------------

    async def ran(self, run_id: str, session: Session = None) -> bool:
        """Whether this rule's run on this event is kept already (a redelivery). Asked
        first: inside a transaction a duplicate-key error would abort all of it."""
        return await self._runs.find_one({"_id": run_id}, {"_id": 1}, session=session) \
            is not None

    async def record_run(self, run: dict[str, Any], session: Session = None) -> None:
        """Keep one rule's run on one event: its outcome and what it did."""
        await self._runs.insert_one(run, session=session)

    async def ran_already(self, run_ids: list[str]) -> set[str]:
        """Which of these runs are kept already (one query for a timer's batch)."""
        if not run_ids:
            return set()
        return {d["_id"] async for d in self._runs.find({"_id": {"$in": run_ids}}, {"_id": 1})}

    async def cards_in_column_since(self, board_id: str, column_id: str, before: datetime,
                                    limit: int, after_id: str | None = None
                                    ) -> list[dict[str, Any]]:
        """Cards that entered a column before `before` (a time-in-column rule's due ones),
        by id from `after_id` on: a clock pages through more than one batch."""
        query: dict[str, Any] = {"board_id": board_id, "column_id": column_id,
                                 "column_entered_at": {"$lt": before}}
        if after_id is not None:
            query["_id"] = {"$gt": after_id}
        return [c async for c in self._db.cards.find(
            query, {"_id": 1, "column_id": 1, "column_entered_at": 1}).sort(
                "_id", ASCENDING).limit(limit)]

    async def open_cards(self, board_id: str, limit: int, after_id: str | None = None
                         ) -> list[dict[str, Any]]:
        """A board's cards not done (what a scheduled rule looks at), by id."""
        query: dict[str, Any] = {"board_id": board_id, "status_category": {"$ne": "done"}}
        if after_id is not None:
            query["_id"] = {"$gt": after_id}
        return [c async for c in self._db.cards.find(query, {"_id": 1, "column_id": 1}).sort(
            "_id", ASCENDING).limit(limit)]

    async def log_on_card(self, card_id: str, entries: list[dict[str, Any]],
                          session: Session = None) -> None:
        """Rule runs written into the card's history without a new version: an agent's
        edit of the card is not refused because a rule wrote its log meanwhile."""
        await self._db.cards.update_one({"_id": card_id},
                                        {"$push": {"history": {"$each": entries}}},
                                        session=session)

    async def runs_of(self, card_id: str, limit: int = 200) -> list[dict[str, Any]]:
        return [r async for r in self._runs.find({"card_id": card_id}).sort(
            "at", DESCENDING).limit(limit)]

    async def depth_of(self, event_id: str, session: Session = None) -> int:
        """How many rule runs led to this event (0: a person or a channel caused it)."""
        doc = await self._caused.find_one({"_id": event_id}, session=session)
        return int(doc["depth"]) if doc else 0

    async def note_caused(self, event_ids: list[str], depth: int, rules: list[str],
                          at: datetime, session: Session = None) -> None:
        if event_ids:
            await self._caused.insert_many(
                [{"_id": e, "depth": depth, "rules": rules, "at": at} for e in event_ids],
                session=session)

    # --- request template chains ---------------------------------------------------------

    async def chain(self, parent_id: str, session: Session = None) -> dict[str, Any] | None:
        return await self._chains.find_one({"_id": parent_id}, session=session)

    async def chain_of_step(self, card_id: str, session: Session = None
                            ) -> dict[str, Any] | None:
        return await self._chains.find_one({"started.card_id": card_id}, session=session)

    async def start_chain(self, chain: dict[str, Any], session: Session = None) -> bool:
        if await self._chains.find_one({"_id": chain["_id"]}, {"_id": 1}, session=session):
            return False
        await self._chains.insert_one(chain, session=session)
        return True

    async def step_started(self, parent_id: str, index: int, card_id: str, number: str,
                           session: Session = None) -> None:
        await self._chains.update_one(
            {"_id": parent_id, "started": {"$size": index}},
            {"$push": {"started": {"index": index, "card_id": card_id, "number": number}}},
            session=session)

    async def chain_finished(self, parent_id: str, at: datetime, session: Session = None
                             ) -> None:
        await self._chains.update_one({"_id": parent_id}, {"$set": {"finished_at": at}},
                                      session=session)
