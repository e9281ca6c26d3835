"""Keeps intake's copy of the customer groups the portal owns, for services' access rules."""

from __future__ import annotations

from desk_contracts.events import CustomerGroupsChanged
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from intake.repository import IntakeRepository


def register(runtime: ServiceRuntime) -> None:
    @runtime.on("customers", "customer.groups_changed")
    async def on_groups(uow: UnitOfWork, event: CustomerGroupsChanged) -> None:
        await IntakeRepository(uow.db).replace_customer_groups(dict(event.groups),
                                                               event.revision, uow.session)
