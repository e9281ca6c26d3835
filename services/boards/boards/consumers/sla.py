"""Shows sla's signals on cards and closes requests whose customer never came back."""

from __future__ import annotations

from desk_contracts.events import SlaAutoClose, SlaBreached, SlaClockChanged, SlaMet, SlaWarning
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from boards.application import cards


def register(runtime: ServiceRuntime) -> None:
    @runtime.on("sla", "sla.warning")
    async def on_warning(uow: UnitOfWork, event: SlaWarning) -> None:
        await cards.show_sla_signal(uow, event, "warning")

    @runtime.on("sla", "sla.breached")
    async def on_breached(uow: UnitOfWork, event: SlaBreached) -> None:
        await cards.show_sla_signal(uow, event, "breached")

    @runtime.on("sla", "sla.met")
    async def on_met(uow: UnitOfWork, event: SlaMet) -> None:
        await cards.show_sla_signal(uow, event, "met")

    @runtime.on("sla", "sla.clock_changed")
    async def on_clock(uow: UnitOfWork, event: SlaClockChanged) -> None:
        await cards.show_sla_clock(uow, event)

    @runtime.on("sla", "sla.auto_close")
    async def on_auto_close(uow: UnitOfWork, event: SlaAutoClose) -> None:
        await cards.auto_close(uow, event)
