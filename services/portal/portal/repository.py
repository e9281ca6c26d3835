"""Portal's store, the only code that touches it: the read model of each customer's requests,
their public conversation and the catalog (from events), plus what the portal owns itself:
sign-in attempts, sessions, rate-limit marks, submissions awaiting their card, ratings,
notification preferences and the access configuration (sign-in allowlist, customer groups).

Every method is named for what the portal does with it; callers never see a collection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from desk_contracts.access import AddressSet
from desk_contracts.catalog import ServiceDefinition, StatusCategory
from desk_contracts.events import AttachmentRef, CardSnapshot, CommentAdded, OpeningComment
from desk_runtime.catalog_copy import CatalogCopy
from desk_runtime.sessions import live_session
from desk_runtime.unit_of_work import UnitOfWork
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from portal.domain.access import AccessChange, Organisation

CLOSED = StatusCategory.DONE.value
OPEN_CATEGORIES = [c.value for c in StatusCategory if c != StatusCategory.DONE]

# what the request lists show of each request
_LISTED = {"number": 1, "title": 1, "service_id": 1, "status_category": 1,
           "customer_status": 1, "last_activity_at": 1, "requester_email": 1}



def _newest_activity(doc: dict) -> tuple:
    """Sort key: last activity, then id (requests without activity last)."""
    at = doc.get("last_activity_at")
    return (at is not None, at if at is not None else 0, doc["_id"])

class AccessAlreadySeeded(Exception):
    """Another replica stored the first access configuration before this one."""


class PortalRepository:
    def __init__(self, db: AsyncDatabase):
        self._catalog = CatalogCopy(db)
        self._requests = db.requests
        self._messages = db.messages
        self._attempts = db.login_attempts
        self._sessions = db.sessions
        self._submissions = db.submissions
        self._ratings = db.ratings
        self._preferences = db.preferences
        self._rate_limits = db.rate_limits
        self._access_config = db.access_config

    async def ensure_indexes(self) -> None:
        # the home page: one customer's open or closed requests, newest activity first
        await self._requests.create_index([("requester_email", ASCENDING),
                                           ("status_category", ASCENDING),
                                           ("last_activity_at", DESCENDING)])
        await self._requests.create_index("number", unique=True)
        await self._messages.create_index([("card_id", ASCENDING), ("created_at", ASCENDING)])
        await self._requests.create_index([("organisation", ASCENDING),
                                           ("status_category", ASCENDING),
                                           ("last_activity_at", DESCENDING)])
        await self._requests.create_index([("requester_domain", ASCENDING),
                                           ("status_category", ASCENDING),
                                           ("last_activity_at", DESCENDING)])
        await self._requests.create_index("request_id")
        await self._requests.create_index("parent_id")
        await self._messages.create_index("reply_id", sparse=True)
        # expired attempts and sessions disappear by themselves
        await self._attempts.create_index("expires_at", expireAfterSeconds=3600)
        await self._sessions.create_index("expires_at", expireAfterSeconds=0)
        # one document per limited key, its marks of the last hour; idle keys disappear
        await self._rate_limits.create_index("touched_at", expireAfterSeconds=2 * 3600)
        await self._submissions.create_index([("email", ASCENDING), ("created_at", DESCENDING)])

    # ---- the read model, kept from events ----------------------------------------------

    async def upsert_service(self, service: ServiceDefinition, revision: int,
                             session: AsyncClientSession) -> None:
        await self._catalog.upsert(service, revision, session)

    async def apply_card(self, card: CardSnapshot, uow: UnitOfWork, *,
                         new: bool = False) -> None:
        """Keep the customer's view of a card; an older version never overwrites a newer.

        `new`: the card's creation on its first delivery, so the row cannot exist yet (a
        card's events come in order, card.created first): inserted blind, with the
        transaction's other inserts (`uow.insert`). Only a re-emitted card.created finds
        it there, and its redelivery takes the other way.
        """
        session = uow.session
        email = (card.requester.email or "").lower() or None if card.requester else None
        doc: dict[str, Any] = {
            "card_id": card.card_id,  # also the _id; kept as a field for readers' queries
            "number": card.number,
            "version": card.version,
            "title": card.title,
            "service_id": card.service_id,
            "status_category": card.status_category.value,
            "customer_status": card.customer_status,
            "requester_email": email,
            "requester_domain": email.rsplit("@", 1)[-1] if email else None,
            "request_id": card.request_id,
            "telegram_user_id": card.requester.telegram_user_id if card.requester else None,
            "organisation": card.requester.organisation if card.requester else None,
            "channel": card.channel,
            "fields": card.customer_fields,
            "parent_id": card.parent_id,
            "created_at": card.created_at,
            "updated_at": card.updated_at,
        }
        row = {"_id": card.card_id, **doc, "last_activity_at": card.updated_at}
        if new:
            uow.insert(self._requests.name, row)
            return
        # one conditional write (the row is there and older: the usual case); only when it
        # matched nothing, whether the row is missing (then made) or newer (left alone)
        result = await self._requests.update_one(
            {"_id": card.card_id, "version": {"$lt": card.version}},
            {"$set": doc, "$max": {"last_activity_at": card.updated_at}}, session=session)
        if result.matched_count:
            return
        if await self._requests.find_one({"_id": card.card_id}, {"_id": 1},
                                         session=session) is None:
            await self._requests.insert_one(row, session=session)

    async def add_public_comment(self, event: CommentAdded, uow: UnitOfWork, *,
                                 new: bool = False) -> None:
        """Keep a public comment once and mark its request's activity, which orders the
        customer's lists. `new` (the event's first delivery): the comment is inserted
        blind; a redelivery (or a re-emitted event's) keeps the one there."""
        await self._keep_message(event.comment_id, {
            "card_id": event.card_id, "number": event.number,
            "author": event.author.model_dump(mode="json"), "text": event.text,
            "attachments": [a.model_dump(mode="json") for a in event.attachments],
            "created_at": event.created_at,
            "reply_id": event.reply_id,
        }, uow, new=new)
        if event.author.kind == "customer" and event.reply_id is None:
            # the request's own text: written with the card, at its creation time, which
            # card.created (always handled first: one card's events keep their order)
            # already made the row's last activity
            return
        await self._requests.update_one(
            {"_id": event.card_id}, {"$max": {"last_activity_at": event.created_at}},
            session=uow.session,
        )

    async def add_opening_comment(self, card: CardSnapshot, comment: OpeningComment,
                                  uow: UnitOfWork, *, new: bool = False) -> None:
        """The request's own text, which travels on its card's card.created: the
        conversation's first message (the row's last activity is the card's creation
        already). `new` as for `add_public_comment`."""
        await self._keep_message(comment.comment_id, {
            "card_id": card.card_id, "number": card.number,
            "author": comment.author.model_dump(mode="json"), "text": comment.text,
            "attachments": [a.model_dump(mode="json") for a in comment.attachments],
            "created_at": comment.created_at,
            "reply_id": None,
        }, uow, new=new)

    async def _keep_message(self, comment_id: str, message: dict[str, Any],
                            uow: UnitOfWork, *, new: bool) -> None:
        """A public message, once: inserted blind (with the transaction's other inserts)
        when `new`, else left as it is if there."""
        if new:
            uow.insert(self._messages.name, {"_id": comment_id, **message})
        else:
            await self._messages.update_one({"_id": comment_id}, {"$setOnInsert": message},
                                            upsert=True, session=uow.session)

    async def apply_rating(self, card_id: str, rating: int, comment: str | None, rated_at: Any,
                           session: AsyncClientSession | None = None) -> None:
        """Keep the latest rating of a card (from the portal itself or from Telegram)."""
        current = await self._ratings.find_one({"_id": card_id}, session=session)
        if current is not None and current["rated_at"] > rated_at:
            return
        await self._ratings.replace_one(
            {"_id": card_id},
            {"_id": card_id, "rating": rating, "comment": comment, "rated_at": rated_at},
            upsert=True, session=session)

    # ---- what the pages read -----------------------------------------------------------

    async def services(self) -> dict[str, ServiceDefinition]:
        """Every service of the catalog copy by id, retired ones too (old requests name them)."""
        return {s.id: s for s in await self._catalog.all(active_only=False)}

    async def requests_of_customer(self, visible: list[dict], *, closed: bool, page: int,
                                   limit: int) -> tuple[list[dict], bool]:
        """One page of the open (or closed) requests `visible` admits, newest activity
        first, and whether another page follows. `visible` is the customer's filters, one
        per alternative (`domain.access.requests_filters`); each is its own indexed query
        and the pages are merged here."""
        # flat filters with $in (not $and/$ne) so the store walks the
        # (requester_email, status_category, last_activity_at) index instead of scanning
        status = {"status_category": CLOSED if closed else {"$in": OPEN_CATEGORIES}}
        if len(visible) == 1:
            cursor = self._requests.find(visible[0] | status, _LISTED) \
                .sort("last_activity_at", -1).skip(page * limit).limit(limit + 1)
            docs = [d async for d in cursor]
            return docs[:limit], len(docs) > limit
        # the first (page + 1) pages of every alternative hold this page of their union
        wanted = (page + 1) * limit + 1
        found: dict[str, dict] = {}
        for alternative in visible:
            cursor = self._requests.find(alternative | status, _LISTED) \
                .sort("last_activity_at", -1).limit(wanted)
            async for d in cursor:
                found.setdefault(d["_id"], d)
        docs = sorted(found.values(), key=_newest_activity, reverse=True)
        docs = docs[page * limit:page * limit + limit + 1]
        return docs[:limit], len(docs) > limit

    async def request_by_card(self, card_id: str) -> dict | None:
        """One request as the read model holds it; whether its reader may see it is the
        caller's question (`domain.access.may_see_request`)."""
        return await self._requests.find_one({"_id": card_id})

    async def follow_ups_of(self, card_id: str, visible: list[dict], limit: int = 20
                            ) -> list[dict]:
        """The requests filed as follow-ups of `card_id` that `visible` admits."""
        found: dict[str, dict] = {}
        for alternative in visible:
            async for c in self._requests.find(alternative | {"parent_id": card_id},
                                               {"number": 1, "title": 1}).limit(limit):
                found.setdefault(c["_id"], c)
        return list(found.values())[:limit]

    async def conversation(self, card_id: str, limit: int = 500) -> list[dict]:
        """A request's public comments, oldest first."""
        return [m async for m in self._messages.find({"card_id": card_id})
                .sort("created_at", 1).limit(limit)]

    async def rating_of(self, card_id: str) -> dict | None:
        return await self._ratings.find_one({"_id": card_id})

    async def submissions_awaiting_card(self, email: str, since: datetime, limit: int = 50
                                        ) -> list[dict]:
        """Requests (not replies) `email` sent after `since` whose card has not reached the
        read model yet, newest first."""
        sent = [d async for d in self._submissions.find(
            {"email": email, "created_at": {"$gt": since}, "kind": {"$ne": "reply"}}
        ).sort("created_at", -1).limit(limit)]
        if not sent:
            return []
        arrived = {d["request_id"] async for d in self._requests.find(
            {"request_id": {"$in": [s["_id"] for s in sent]}}, {"request_id": 1})}
        return [s for s in sent if s["_id"] not in arrived]

    async def replies_sent_to(self, card_id: str, limit: int = 50) -> list[dict]:
        """The portal replies posted on a card, oldest first (echoed by boards or not)."""
        return [s async for s in self._submissions.find(
            {"card_id": card_id, "kind": "reply"}).sort("created_at", 1).limit(limit)]

    async def preferences_of(self, email: str) -> dict[str, list[str]] | None:
        """The notification channels `email` chose per kind, or None if never saved."""
        saved = await self._preferences.find_one({"_id": email})
        return saved["channels"] if saved else None

    # ---- what customers send -----------------------------------------------------------

    async def record_request_submission(self, request_id: str, *, email: str, service_id: str,
                                        subject: str, follow_up_of: str | None, now: datetime,
                                        session: AsyncClientSession) -> None:
        """A request sent, shown as "being registered" until its card arrives."""
        await self._submissions.insert_one({
            "_id": request_id, "email": email, "service_id": service_id, "subject": subject,
            "follow_up_of": follow_up_of, "created_at": now}, session=session)

    async def record_reply_submission(self, reply_id: str, *, email: str, card_id: str,
                                      text: str, attachments: list[AttachmentRef],
                                      now: datetime, session: AsyncClientSession) -> None:
        """A reply sent, shown as "sending" until boards echoes it as a comment."""
        await self._submissions.insert_one({
            "_id": reply_id, "email": email, "card_id": card_id, "kind": "reply", "text": text,
            "attachments": [a.model_dump(mode="json") for a in attachments],
            "created_at": now}, session=session)

    async def save_preferences(self, email: str, channels: dict[str, tuple[str, ...]],
                               now: datetime, session: AsyncClientSession) -> None:
        await self._preferences.replace_one(
            {"_id": email}, {"_id": email, "channels": {k: list(v) for k, v in channels.items()},
                             "changed_at": now}, upsert=True, session=session)

    # ---- sign-in: codes and sessions ---------------------------------------------------

    async def record_login_code(self, attempt_id: str, *, email: str, code_hash: str | None,
                                next_path: str, now: datetime, expires_at: datetime) -> None:
        """A sign-in attempt; `code_hash` None when the address may not sign in (no code
        was made, yet the attempt looks like any other)."""
        await self._attempts.insert_one({
            "_id": attempt_id, "email": email, "code_hash": code_hash, "guesses": 0,
            "used": False, "next": next_path, "created_at": now, "expires_at": expires_at,
        })

    async def login_attempt(self, attempt_id: str) -> dict | None:
        return await self._attempts.find_one({"_id": attempt_id})

    async def count_guess(self, attempt_id: str, now: datetime, max_guesses: int
                          ) -> dict | None:
        """Spend one guess of a live attempt and return it as it is now; None when the
        attempt is used, expired or out of guesses."""
        return await self._attempts.find_one_and_update(
            {"_id": attempt_id, "used": False, "expires_at": {"$gt": now},
             "guesses": {"$lt": max_guesses}},
            {"$inc": {"guesses": 1}}, return_document=ReturnDocument.AFTER)

    async def consume_login_code(self, attempt_id: str, now: datetime) -> bool:
        """Mark the attempt used; False when a parallel post used it first (codes work once)."""
        claimed = await self._attempts.find_one_and_update(
            {"_id": attempt_id, "used": False}, {"$set": {"used": True, "used_at": now}})
        return claimed is not None

    async def open_session(self, session_id: str, *, email: str, csrf: str, now: datetime,
                           expires_at: datetime, client: str) -> None:
        await self._sessions.insert_one({
            "_id": session_id, "email": email, "csrf": csrf, "created_at": now,
            "expires_at": expires_at, "client": client,
        })

    async def live_session(self, token: str | None) -> dict | None:
        """The session a cookie's token names, unless unknown, malformed or expired."""
        return await live_session(self._sessions, token)

    async def close_session(self, session_id: str) -> None:
        await self._sessions.delete_one({"_id": session_id})

    # ---- rate limits -------------------------------------------------------------------

    async def take_slot(self, key: str, limit: int, mark: str, now: datetime,
                        since: datetime) -> bool:
        """Take one of `limit` slots of `key` within the window; False when none is free.

        One document per key holds its marks; the push only matches while fewer than
        `limit` marks are there, and single-document updates are atomic, so parallel
        requests can neither overrun the limit nor lock each other out.
        """
        await self._rate_limits.update_one({"_id": key},
                                           {"$pull": {"marks": {"at": {"$lte": since}}}})
        try:
            await self._rate_limits.update_one(
                {"_id": key, f"marks.{max(limit, 1) - 1}": {"$exists": False}},
                {"$push": {"marks": {"at": now, "id": mark}}, "$set": {"touched_at": now}},
                upsert=True)
        except DuplicateKeyError:  # the key exists and its slots are all taken
            return False
        return limit > 0

    async def release_slot(self, key: str, mark: str) -> None:
        """A refused request gives back what it took: refusals never count."""
        await self._rate_limits.update_one({"_id": key}, {"$pull": {"marks": {"id": mark}}})

    # ---- access configuration ----------------------------------------------------------

    async def access_doc(self, session: AsyncClientSession | None = None) -> dict | None:
        return await self._access_config.find_one({"_id": "current"}, session=session)

    async def seed_access(self, allow: AddressSet, groups: dict[str, AddressSet],
                          organisations: dict[str, Organisation], now: datetime,
                          session: AsyncClientSession) -> None:
        """Store the first configuration; AccessAlreadySeeded when one is already stored."""
        try:
            await self._access_config.insert_one(
                {"_id": "current", "revision": 1, "changed_at": now,
                 "allow": allow.model_dump(mode="json"),
                 "groups": {k: v.model_dump(mode="json") for k, v in groups.items()},
                 "organisations": {k: v.as_doc() for k, v in organisations.items()}},
                session=session)
        except DuplicateKeyError:
            # the transaction is aborted either way; the caller learns why in our terms
            raise AccessAlreadySeeded() from None

    async def seed_organisations(self, organisations: dict[str, Organisation]) -> None:
        """A configuration stored before it held organisations gets the settings' ones."""
        await self._access_config.update_one(
            {"_id": "current", "organisations": {"$exists": False}},
            {"$set": {"organisations": {k: v.as_doc() for k, v in organisations.items()}}})

    async def change_access(self, revision: int, change: AccessChange, now: datetime,
                            session: AsyncClientSession) -> dict | None:
        """Apply an admin's change to the stored revision `revision` (None if it moved on)."""
        fields: dict[str, Any] = {"changed_at": now}
        update: dict[str, Any] = {"$inc": {"revision": 1}, "$set": fields}
        if change.allow is not None:
            fields["allow"] = change.allow.model_dump(mode="json")
        if change.group is not None and change.members is not None:
            fields[f"groups.{change.group}"] = change.members.model_dump(mode="json")
        elif change.group is not None:
            update["$unset"] = {f"groups.{change.group}": ""}
        if change.organisation_id is not None and change.organisation is not None:
            fields[f"organisations.{change.organisation_id}"] = change.organisation.as_doc()
        elif change.organisation_id is not None:
            update["$unset"] = {f"organisations.{change.organisation_id}": ""}
        return await self._access_config.find_one_and_update(
            {"_id": "current", "revision": revision}, update,
            return_document=ReturnDocument.AFTER, session=session)
