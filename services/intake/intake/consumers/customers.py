"""Keeps intake's copy of the customer groups (for services' access rules) and the
customers' organisations (who may reply on a colleague's request) the portal owns."""

from __future__ import annotations

from desk_contracts.events import CustomerGroupsChanged
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from intake.repository import IntakeRepository


async def on_groups(uow: UnitOfWork, event: CustomerGroupsChanged) -> None:
    organisations = None if event.organisations is None else dict(event.organisations)
    await IntakeRepository(uow.db).replace_customer_groups(
        dict(event.groups), event.revision, uow.session, organisations)


# the `intake.customers` queue: event type -> handler
HANDLERS = {"customer.groups_changed": on_groups}


def register(runtime: ServiceRuntime) -> None:
    for event_type, handler in HANDLERS.items():
        runtime.on("customers", event_type)(handler)
