"""Notify's store: catalog and card copies, preferences, suppressions, routes, templates and
the delivery log (one entry per notification, keyed by its deterministic id)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import CardSnapshot
from desk_runtime.catalog_copy import CatalogCopy
from desk_runtime.unit_of_work import UnitOfWork
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from notify.domain.routes import AgentRoute
from notify.domain.templates import MessageTemplate

Session = AsyncClientSession | None
ACTIVE = ("pending", "retrying")
# The lower bound of every `due_at` range: without it the embedded store's index range
# starts at null and walks every delivery already settled (their `due_at` is unset), which
# grows with the 90-day delivery log (83 ms per claim at 3,000 deliveries, 1.2 ms with it).
DUE_FROM = datetime(1970, 1, 1, tzinfo=UTC)


def _fenced(delivery_id: str, claim: int | None) -> dict[str, Any]:
    """A delivery, matched only while `claim` (a claim's fencing token) still holds it.

    `mark_sent` is not fenced: a send that went out is recorded whoever claims the
    delivery now (its `status` then stops the newer claimer from sending it again)."""
    return {"_id": delivery_id} if claim is None else {"_id": delivery_id, "claim": claim}


def claim_fields(worker: str, until: datetime, mark: str) -> dict[str, Any]:
    """What a claim sets on a delivery (it also increments `attempts` and `claim`): due
    again, for anyone, only when the lease runs out; `mark` tells this claim's take apart
    from a concurrent claimer's."""
    return {"due_at": until, "claimed_until": until, "claimed_by": worker, "claim_mark": mark}


def claimed_on_record(delivery: dict[str, Any], worker: str, until: datetime
                      ) -> dict[str, Any]:
    """A delivery about to be recorded, written already claimed by `worker` until `until`:
    exactly as its first claim (`claim_due_deliveries`) would leave it, fencing token
    included, so every later step (confirmation, retry, deferral, release, a take-over
    once the lease runs out) treats it as any claimed delivery."""
    return delivery | claim_fields(worker, until, uuid.uuid4().hex) | {
        "attempts": delivery.get("attempts", 0) + 1, "claim": delivery.get("claim", 0) + 1}


DELIVERY_LOG_DAYS = 90


class NotifyRepository:
    def __init__(self, db: AsyncDatabase):
        self._catalog_copy = CatalogCopy(db)
        self._deliveries = db["deliveries"]
        self._cards = db["cards"]
        self._preferences = db["preferences"]
        self._suppressions = db["suppressions"]
        self._routes = db["routes"]
        self._templates = db["templates"]

    async def ensure_indexes(self) -> None:
        # the dispatcher's claim: one range on one index (`due_at` is set only while a
        # delivery waits to be tried: its next attempt, or its claim's lease end)
        await self._deliveries.create_index([("channel", ASCENDING), ("due_at", ASCENDING)],
                                           name="due_by_channel")
        await self._backfill_due_at()
        await self._deliveries.create_index([("status", ASCENDING), ("created_at", DESCENDING)])
        await self._deliveries.create_index("card_id")
        # Sent entries are kept well past the processed-event records (30 days) that also
        # stop a redelivered cause; failed ones stay until an admin deals with them.
        await self._deliveries.create_index("sent_at", expireAfterSeconds=DELIVERY_LOG_DAYS
                                           * 24 * 3600)
        await self._routes.create_index("board_id")

    # --- catalog copy -------------------------------------------------------------------
    async def service(self, service_id: str | None, session: Session = None
                      ) -> ServiceDefinition | None:
        return await self._catalog_copy.get(service_id, session)

    async def upsert_service(self, service: ServiceDefinition, revision: int,
                             session: AsyncClientSession) -> None:
        await self._catalog_copy.upsert(service, revision, session)

    # --- card copy (who asked, where it is, how its mail thread looks) --------------------
    async def card(self, card_id: str, session: Session = None) -> dict[str, Any] | None:
        return await self._cards.find_one({"_id": card_id}, session=session)

    async def save_card(self, card: CardSnapshot, session: AsyncClientSession,
                        thread: dict[str, Any] | None = None, *,
                        new_in: UnitOfWork | None = None) -> None:
        """Keep the newest snapshot (events may be redelivered out of order). `new_in`: the
        card cannot be known yet (its card.created, delivered for the first time), so it is
        inserted blind with that transaction's other inserts (`uow.insert`: one statement
        for a group's cards); were it known after all, the duplicate key fails this attempt
        and the redelivery takes the careful path."""
        snapshot = card.model_dump(mode="json")
        if new_in is not None:
            new_in.insert(self._cards.name, {"_id": card.card_id, "snapshot": snapshot,
                                             "version": card.version, "thread": thread})
            return
        # Usually the card is new here: one upsert does it; otherwise compare versions.
        inserted = await self._cards.update_one(
            {"_id": card.card_id},
            {"$setOnInsert": {"snapshot": snapshot, "version": card.version,
                              "thread": thread}},
            upsert=True, session=session)
        if inserted.upserted_id is not None:
            return
        update: dict[str, Any] = {"$max": {"version": card.version}}
        current = await self._cards.find_one({"_id": card.card_id}, {"version": 1, "thread": 1},
                                            session=session) or {}
        sets: dict[str, Any] = {}
        if current.get("version", 0) <= card.version:
            sets["snapshot"] = snapshot
        if thread and not current.get("thread"):
            sets["thread"] = thread  # card.created arrived after another event of the card
        if sets:
            update["$set"] = sets
        await self._cards.update_one({"_id": card.card_id}, update, session=session)

    # --- customers: preferences and bounced addresses -----------------------------------
    async def preferences_for(self, email: str | None, session: Session = None
                              ) -> dict[str, Any] | None:
        if not email:
            return None
        return await self._preferences.find_one({"_id": email.lower()}, session=session)

    async def save_preferences(self, email: str, channels: dict[str, list[str]],
                               telegram_chat_id: int | None, changed_at: datetime,
                               session: AsyncClientSession) -> bool:
        """Newest wins: an older change redelivered late does not overwrite a newer one."""
        current = await self._preferences.find_one({"_id": email.lower()}, session=session)
        if current is not None and current["changed_at"] >= changed_at:
            return False
        await self._preferences.replace_one(
            {"_id": email.lower()},
            {"_id": email.lower(), "channels": channels, "telegram_chat_id": telegram_chat_id,
             "changed_at": changed_at}, upsert=True, session=session)
        return True

    async def suppressed_among(self, emails: list[str]) -> set[str]:
        """Which of these addresses (lower-cased) are suppressed: one read for a batch."""
        wanted = sorted({e.lower() for e in emails if e})
        if not wanted:
            return set()
        return {d["_id"] async for d in self._suppressions.find(
            {"_id": {"$in": wanted}, "active": True}, {"_id": 1})}

    async def suppress(self, email: str, reason: str, at: datetime,
                       session: AsyncClientSession) -> None:
        current = await self._suppressions.find_one({"_id": email.lower()}, session=session)
        if current is not None and current.get("changed_at") and current["changed_at"] > at:
            return  # a newer sign of life already cleared it
        await self._suppressions.replace_one(
            {"_id": email.lower()},
            {"_id": email.lower(), "active": True, "reason": reason[:2000], "changed_at": at},
            upsert=True, session=session)

    async def unsuppress(self, email: str, at: datetime, why: str,
                         session: AsyncClientSession) -> None:
        # Read outside the transaction (almost every address has no suppression, and a
        # transaction's every statement queues in the embedded store's one transaction
        # registry); only an actual change is written in it.
        current = await self._suppressions.find_one({"_id": email.lower()})
        if current is None or current["changed_at"] > at:
            return
        await self._suppressions.update_one(
            {"_id": email.lower()},
            {"$set": {"active": False, "changed_at": at, "cleared_by": why}}, session=session)

    async def active_suppressions(self, limit: int) -> list[dict[str, Any]]:
        cursor = self._suppressions.find({"active": True}).sort("changed_at", DESCENDING)
        return [d async for d in cursor.limit(limit)]

    async def clear_suppression(self, email: str, by: str) -> bool:
        result = await self._suppressions.update_one(
            {"_id": email.lower(), "active": True},
            {"$set": {"active": False, "changed_at": datetime.now(UTC), "cleared_by": by}})
        return result.modified_count == 1

    # --- agent routes -------------------------------------------------------------------
    async def routes_for_board(self, board_id: str, session: Session = None
                               ) -> list[AgentRoute]:
        docs = self._routes.find({"board_id": board_id}, session=session)
        return [AgentRoute.model_validate(d["route"]) async for d in docs]

    async def all_routes(self) -> list[AgentRoute]:
        return [AgentRoute.model_validate(d["route"]) async for d in self._routes.find().sort("_id")]

    async def put_route(self, route: AgentRoute) -> None:
        await self._routes.replace_one(
            {"_id": route.id},
            {"_id": route.id, "board_id": route.board_id, "route": route.model_dump(mode="json"),
             "updated_at": datetime.now(UTC)}, upsert=True)

    async def delete_route(self, route_id: str) -> bool:
        return (await self._routes.delete_one({"_id": route_id})).deleted_count == 1

    # --- templates ----------------------------------------------------------------------
    async def custom_template(self, kind: str, language: str) -> MessageTemplate | None:
        doc = await self._templates.find_one({"_id": f"{kind}:{language}"})
        if doc is None:
            return None
        return MessageTemplate(subject=doc["subject"], text=doc["text"], html=doc["html"])

    async def custom_templates(self) -> dict[str, dict[str, Any]]:
        return {d["_id"]: d async for d in self._templates.find()}

    async def put_template(self, kind: str, language: str, template: MessageTemplate,
                           by: str) -> None:
        await self._templates.replace_one(
            {"_id": f"{kind}:{language}"},
            {"_id": f"{kind}:{language}", "kind": kind, "language": language,
             "subject": template.subject, "text": template.text, "html": template.html,
             "updated_at": datetime.now(UTC), "updated_by": by}, upsert=True)

    async def delete_template(self, kind: str, language: str) -> bool:
        result = await self._templates.delete_one({"_id": f"{kind}:{language}"})
        return result.deleted_count == 1

    # --- deliveries ---------------------------------------------------------------------
    async def record_delivery(self, delivery: dict[str, Any], session: AsyncClientSession) -> bool:
        """Record a notification to send; False when this very notification exists already."""
        result = await self._deliveries.update_one(
            {"_id": delivery["_id"]}, {"$setOnInsert": delivery}, upsert=True, session=session
        )
        return result.upserted_id is not None

    async def record_deliveries(self, deliveries: list[dict[str, Any]], uow: UnitOfWork
                                ) -> set[str]:
        """Record notifications to send (distinct ids); the ids recorded now. On the cause's
        first delivery none can exist yet, so they are inserted blind with the
        transaction's other inserts (`uow.insert`: one statement for a group's
        deliveries), no read, no upsert; a duplicate key fails the caller's attempt."""
        if not uow.first_delivery:
            return {d["_id"] for d in deliveries
                    if await self.record_delivery(d, uow.session)}
        for delivery in deliveries:
            uow.insert(self._deliveries.name, delivery)
        return {d["_id"] for d in deliveries}

    async def _backfill_due_at(self) -> None:
        """Deliveries recorded before `due_at` existed get one (a one-time, small pass)."""
        async for doc in self._deliveries.find({"status": {"$in": list(ACTIVE)},
                                               "due_at": {"$exists": False}},
                                              {"next_attempt_at": 1, "claimed_until": 1}):
            due = max(d for d in (doc.get("next_attempt_at"), doc.get("claimed_until"),
                                  datetime(1970, 1, 1, tzinfo=UTC)) if d is not None)
            await self._deliveries.update_one({"_id": doc["_id"]}, {"$set": {"due_at": due}})

    async def claim_due_delivery(self, worker: str, lease: timedelta, channel: str
                        ) -> dict[str, Any] | None:
        """Take the most overdue delivery of `channel` for `lease` (one indexed range).

        Every claim increments the delivery's `claim` (its fencing token): what the
        claimer writes afterwards matches only while no later claim took it over."""
        now = datetime.now(UTC)
        return await self._deliveries.find_one_and_update(
            {"channel": channel, "due_at": {"$gte": DUE_FROM, "$lte": now}},
            {"$set": {"due_at": now + lease, "claimed_until": now + lease, "claimed_by": worker},
             "$inc": {"attempts": 1, "claim": 1}},
            sort=[("channel", ASCENDING), ("due_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def claim_due_deliveries(self, worker: str, lease: timedelta, channel: str,
                                   limit: int) -> list[dict[str, Any]]:
        """Take up to `limit` of the most overdue deliveries of `channel` for `lease`, most
        overdue first: three indexed statements however many (the ids due; the claim of
        those still due, each incrementing its `claim` fencing token; the claimed ones back,
        found by this claim's own mark, so a concurrent claimer's take is never mistaken
        for ours)."""
        now = datetime.now(UTC)
        ids = [d["_id"] async for d in self._deliveries.find(
            {"channel": channel, "due_at": {"$gte": DUE_FROM, "$lte": now}}, {"_id": 1},
            sort=[("channel", ASCENDING), ("due_at", ASCENDING)], limit=limit)]
        if not ids:
            return []
        mark = uuid.uuid4().hex
        await self._deliveries.update_many(
            {"_id": {"$in": ids}, "due_at": {"$lte": now}},
            {"$set": claim_fields(worker, now + lease, mark), "$inc": {"attempts": 1, "claim": 1}})
        taken = {d["_id"]: d async for d in self._deliveries.find(
            {"_id": {"$in": ids}, "claim_mark": mark})}
        return [taken[i] for i in ids if i in taken]

    async def next_due_at(self, channel: str) -> datetime | None:
        """When the next delivery of `channel` falls due (None: nothing waits)."""
        doc = await self._deliveries.find_one({"channel": channel, "due_at": {"$gte": DUE_FROM}},
                                             {"due_at": 1},
                                             sort=[("channel", ASCENDING), ("due_at", ASCENDING)])
        return doc["due_at"] if doc else None

    async def confirm_claim(self, delivery_id: str, claim: int | None, lease: timedelta
                            ) -> bool:
        """Right before a send: True, with the claim extended by `lease`, only if this claim
        (`claim`, its fencing token) still holds the delivery and it still waits to be sent.
        A claimer that stalled past its lease and was taken over gets False and must not
        send; one that gets True keeps the delivery for `lease` (no one can claim it sooner)."""
        held = await self.confirm_claims([{"_id": delivery_id, "claim": claim}], lease)
        return delivery_id in held

    async def confirm_claims(self, deliveries: list[dict[str, Any]], lease: timedelta
                             ) -> set[str]:
        """`confirm_claim` for several deliveries in one write (each fenced by its own
        token); the ids still held. Only when some were lost does a read say which."""
        if not deliveries:
            return set()
        until = datetime.now(UTC) + lease
        result = await self._deliveries.bulk_write([
            UpdateOne({**_fenced(d["_id"], d.get("claim")), "status": {"$in": list(ACTIVE)}},
                      {"$set": {"due_at": until, "claimed_until": until}})
            for d in deliveries], ordered=False)
        ids = [d["_id"] for d in deliveries]
        if result.matched_count == len(deliveries):
            return set(ids)
        claims = {d["_id"]: d.get("claim") for d in deliveries}
        return {d["_id"] async for d in self._deliveries.find(
            {"_id": {"$in": ids}, "status": {"$in": list(ACTIVE)}}, {"claim": 1})
            if claims[d["_id"]] is None or d.get("claim") == claims[d["_id"]]}

    async def release_delivery(self, delivery_id: str, claim: int | None = None) -> None:
        """Hand a claimed delivery back untried (a graceful stop): due now, no attempt spent."""
        await self._deliveries.update_one(
            {**_fenced(delivery_id, claim), "status": {"$in": list(ACTIVE)}},
            {"$set": {"due_at": datetime.now(UTC), "claimed_until": None},
             "$inc": {"attempts": -1}})

    async def defer_delivery(self, delivery_id: str, until: datetime, reason: str,
                             claim: int | None = None) -> None:
        """Put a claimed delivery back without spending an attempt (rate limit, not failure)."""
        await self._deliveries.update_one(
            _fenced(delivery_id, claim),
            {"$set": {"next_attempt_at": until, "due_at": until, "claimed_until": None,
                      "deferred_by": reason},
             "$inc": {"attempts": -1, "deferrals": 1}})

    async def mark_sent(self, delivery_id: str, message_id: str, at: datetime,
                        session: AsyncClientSession) -> bool:
        """Record the send; False when it was recorded already (a retried record whose
        first commit went through although its answer was lost)."""
        return delivery_id in await self.mark_sent_many([(delivery_id, message_id)], at, session)

    async def mark_sent_many(self, sent: list[tuple[str, str]], at: datetime,
                             session: AsyncClientSession) -> set[str]:
        """Record several sends (delivery id, message id) in the caller's transaction; the
        ids recorded now (not those a retried record whose answer was lost did already).

        One write: usually every one of them matches. Only when some were recorded
        already does a read say which are this record's — those carrying its `at`, so
        each attempt of a record must bring a time of its own."""
        ids = [delivery_id for delivery_id, _ in sent]
        result = await self._deliveries.bulk_write([
            UpdateOne({"_id": i, "status": {"$ne": "sent"}},
                      {"$set": {"status": "sent", "sent_at": at, "message_id": m,
                                "claimed_until": None}, "$unset": {"due_at": ""}})
            for i, m in sent], ordered=True, session=session)
        if result.matched_count == len(ids):
            return set(ids)
        return {d["_id"] async for d in self._deliveries.find(
            {"_id": {"$in": ids}, "sent_at": at}, {"_id": 1}, session=session)}

    async def hold_claim(self, delivery_id: str, worker: str, lease: timedelta,
                         claim: int | None = None) -> None:
        """Extend this worker's claim (its send went out; recording it takes longer)."""
        await self.hold_claims([{"_id": delivery_id, "claim": claim}], worker, lease)

    async def hold_claims(self, deliveries: list[dict[str, Any]], worker: str,
                          lease: timedelta) -> None:
        """`hold_claim` for several deliveries in one write."""
        until = datetime.now(UTC) + lease
        await self._deliveries.bulk_write([
            UpdateOne({**_fenced(d["_id"], d.get("claim")), "claimed_by": worker,
                       "status": {"$ne": "sent"}},
                      {"$set": {"due_at": until, "claimed_until": until}})
            for d in deliveries], ordered=False)

    async def mark_settled(self, delivery_id: str, status: str, reason: str,
                           claim: int | None = None) -> None:
        """Close a delivery that was not sent and needs no event (e.g. a suppressed address)."""
        await self._deliveries.update_one(
            _fenced(delivery_id, claim),
            {"$set": {"status": status, "last_error": reason, "claimed_until": None},
             "$unset": {"due_at": ""}})

    async def schedule_retry(self, delivery_id: str, error: str, at: datetime,
                             claim: int | None = None) -> None:
        """A transient failure: try again at `at` (the attempt is spent)."""
        await self._deliveries.update_one(
            _fenced(delivery_id, claim),
            {"$set": {"status": "retrying", "last_error": error, "claimed_until": None,
                      "next_attempt_at": at, "due_at": at}})

    async def mark_failed(self, delivery_id: str, error: str, at: datetime,
                          session: AsyncClientSession, claim: int | None = None) -> None:
        await self._deliveries.update_one(
            _fenced(delivery_id, claim),
            {"$set": {"status": "failed", "last_error": error, "claimed_until": None,
                      "failed_at": at}, "$unset": {"due_at": ""}},
            session=session)

    async def pending_by_channel(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        pipeline = [{"$match": {"status": {"$in": list(ACTIVE)}}},
                    {"$group": {"_id": "$channel", "n": {"$sum": 1}}}]
        async for row in await self._deliveries.aggregate(pipeline):
            counts[row["_id"]] = row["n"]
        return counts

    async def list_deliveries(self, *, state: str | None, card_id: str | None, limit: int
                              ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if state:
            query["status"] = state
        if card_id:
            query["card_id"] = card_id
        cursor = self._deliveries.find(query, {"target": 0, "context": 0}).sort(
            "created_at", DESCENDING).limit(limit)
        return [d async for d in cursor]

    async def retry_failed_delivery(self, delivery_id: str) -> bool:
        """Give a failed delivery another round of attempts (an admin fixed the cause)."""
        result = await self._deliveries.update_one(
            {"_id": delivery_id, "status": "failed"},
            {"$set": {"status": "retrying", "attempts": 0, "next_attempt_at": datetime.now(UTC),
                      "due_at": datetime.now(UTC), "claimed_until": None}})
        return result.modified_count == 1
