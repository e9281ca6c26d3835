"""Intake's copy of the service catalog (boards owns it; `catalog.service_changed` keeps it)."""

from __future__ import annotations

from desk_contracts.catalog import ServiceDefinition
from pymongo.asynchronous.client_session import AsyncClientSession

from intake.repository.base import Store


class CatalogRecords(Store):
    async def has_catalog(self) -> bool:
        return await self._catalog.collection.find_one({}, {"_id": 1}) is not None

    async def service(self, service_id: str | None) -> ServiceDefinition | None:
        return await self._catalog.get(service_id)

    async def active_services(self) -> list[ServiceDefinition]:
        return await self._catalog.all()

    async def upsert_service(self, service: ServiceDefinition, revision: int,
                             session: AsyncClientSession) -> None:
        await self._catalog.upsert(service, revision, session)
