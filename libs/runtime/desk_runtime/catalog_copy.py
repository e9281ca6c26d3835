"""A service's own copy of the service catalog, kept current from `catalog.service_changed`.

Boards owns the catalog; intake, sla, notify and portal each keep this copy in their
own database (no service reads another's). Only a newer revision replaces a service,
so redelivered or reordered events never roll a definition back.
"""

from __future__ import annotations

from desk_contracts.catalog import ServiceDefinition
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from desk_runtime.config_cache import config_cache


class CatalogCopy:
    def __init__(self, db: AsyncDatabase, collection: str = "catalog"):
        self.collection = db[collection]
        self.cache = config_cache(db.name)
        self._name = collection

    async def get(self, service_id: str | None, session: AsyncClientSession | None = None
                  ) -> ServiceDefinition | None:
        if not service_id:
            return None

        async def load() -> ServiceDefinition | None:
            doc = await self.collection.find_one({"_id": service_id})
            return ServiceDefinition.model_validate(doc["definition"]) if doc else None

        # a service definition is frozen: the cached one is shared as it is
        return await self.cache.get((self._name, service_id), load)

    async def upsert(self, service: ServiceDefinition, revision: int,
                     session: AsyncClientSession | None = None) -> bool:
        """Store `service` at `revision`; False when the copy is already as new or newer."""
        current = await self.collection.find_one({"_id": service.id}, {"revision": 1},
                                                 session=session)
        if current is not None and current["revision"] >= revision:
            return False
        await self.collection.replace_one(
            {"_id": service.id},
            {"_id": service.id, "revision": revision, "active": service.active,
             "definition": service.model_dump(mode="json", by_alias=True)},
            upsert=True, session=session,
        )
        self.cache.forget((self._name, service.id))
        return True

    async def all(self, *, active_only: bool = True) -> list[ServiceDefinition]:
        query = {"definition.active": True} if active_only else {}
        return [ServiceDefinition.model_validate(d["definition"])
                async for d in self.collection.find(query).sort("_id", 1)]
