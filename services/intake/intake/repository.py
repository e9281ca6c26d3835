"""Intake's store: its copy of the catalog, accepted requests and the request→card map."""

from __future__ import annotations

from typing import Any

from desk_contracts.access import AddressSet
from desk_contracts.catalog import ServiceDefinition
from desk_runtime.catalog_copy import CatalogCopy
from desk_runtime.config_cache import config_cache
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase


class IntakeRepository:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.catalog_copy = CatalogCopy(db)
        self.requests = db["requests"]
        self.threads = db["threads"]
        self.inbound = db["inbound_mail"]
        self.quarantine = db["quarantine"]
        self.mailboxes = db["mailboxes"]
        self.dialogs = db["telegram_dialogs"]
        self.telegram_state = db["telegram_state"]
        self.customer_groups_copy = db["customer_groups"]

    async def ensure_indexes(self) -> None:
        await self.requests.create_index(
            "idempotency_key", unique=True,
            partialFilterExpression={"idempotency_key": {"$type": "string"}},
        )
        await self.threads.create_index("number", unique=True)
        await self.threads.create_index("request_id")
        await self.threads.create_index("message_ids")
        await self.inbound.create_index("dedupe_key", unique=True)
        await self.inbound.create_index([("status", 1), ("received_at", 1)])
        await self.inbound.create_index("message_id")
        await self.quarantine.create_index("at")
        await self.requests.create_index("message_id", sparse=True)
        await self.requests.create_index("requester.telegram_chat_id", sparse=True)

    async def has_catalog(self) -> bool:
        return await self.catalog_copy.collection.find_one({}, {"_id": 1}) is not None

    async def service(self, service_id: str) -> ServiceDefinition | None:
        return await self.catalog_copy.get(service_id)

    async def upsert_service(self, service: ServiceDefinition, revision: int,
                             session: AsyncClientSession) -> None:
        await self.catalog_copy.upsert(service, revision, session)

    async def request_by_key(self, key: str) -> dict[str, Any] | None:
        return await self.requests.find_one({"idempotency_key": key})

    async def thread_by_number(self, number: str) -> dict[str, Any] | None:
        return await self.threads.find_one({"number": number.upper()})

    async def thread_for_request(self, request_id: str) -> dict[str, Any] | None:
        return await self.threads.find_one({"request_id": request_id})

    async def release_held(self, inbound_id: str, trust_sender: bool,
                           session: AsyncClientSession) -> bool:
        """A mail held as `unverified_sender` goes back to pending, marked as accepted by an
        agent (processing then lets it through); False when there is no such held mail."""
        result = await self.inbound.update_one(
            {"_id": inbound_id, "status": "quarantined", "reason": "unverified_sender"},
            {"$set": {"status": "pending", "attempts": 0, "accepted_by": "agent",
                      "trust_sender": trust_sender},
             "$unset": {"reason": "", "detail": ""}}, session=session)
        if result.modified_count != 1:
            return False
        await self.quarantine.delete_one({"_id": inbound_id}, session=session)
        return True

    async def customer_groups(self) -> dict[str, AddressSet]:
        """Intake's copy of the portal's customer groups (empty until the first event)."""
        async def load() -> dict[str, AddressSet]:
            doc = await self.customer_groups_copy.find_one({"_id": "groups"})
            return {k: AddressSet.model_validate(v)
                    for k, v in ((doc or {}).get("groups") or {}).items()}

        # read for every request; changed by the portal's admin now and then
        return await config_cache(self.db.name).get(("customer_groups",), load, copy=True)

    async def customer_groups_revision(self) -> int:
        doc = await self.customer_groups_copy.find_one({"_id": "groups"}, {"revision": 1})
        return (doc or {}).get("revision", 0)

    async def replace_customer_groups(self, groups: dict[str, AddressSet], revision: int,
                                      session: AsyncClientSession) -> None:
        """Keep the newest revision only (events may arrive out of order after a retry)."""
        current = await self.customer_groups_copy.find_one({"_id": "groups"}, {"revision": 1},
                                                           session=session)
        if current is not None and current["revision"] >= revision:
            return
        await self.customer_groups_copy.replace_one(
            {"_id": "groups"},
            {"_id": "groups", "revision": revision,
             "groups": {k: v.model_dump(mode="json") for k, v in groups.items()}},
            upsert=True, session=session)
        config_cache(self.db.name).forget(("customer_groups",))
