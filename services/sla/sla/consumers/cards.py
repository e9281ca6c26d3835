"""Drives SLA clocks from card, comment and catalog events."""

from __future__ import annotations

from desk_contracts.events import CatalogServiceChanged
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from sla.repository import SlaRepository


def register(runtime: ServiceRuntime) -> None:
    @runtime.on("cards", "catalog.service_changed")
    async def on_service(uow: UnitOfWork, event: CatalogServiceChanged) -> None:
        await SlaRepository(uow.db).upsert_service(event.service, event.revision, uow.session)
