"""Shows sla's signals on cards and closes requests whose customer never came back."""

from __future__ import annotations

from desk_contracts.events import SlaAutoClose, SlaBreached, SlaClockChanged, SlaMet, SlaWarning
from desk_runtime.unit_of_work import UnitOfWork

from boards.application import cards
from boards.settings import BoardsSettings


async def on_warning(uow: UnitOfWork, event: SlaWarning, settings: BoardsSettings) -> None:
    await cards.show_sla_signal(uow, event, "warning")


async def on_breached(uow: UnitOfWork, event: SlaBreached, settings: BoardsSettings) -> None:
    await cards.show_sla_signal(uow, event, "breached")


async def on_met(uow: UnitOfWork, event: SlaMet, settings: BoardsSettings) -> None:
    await cards.show_sla_signal(uow, event, "met")


async def on_clock(uow: UnitOfWork, event: SlaClockChanged, settings: BoardsSettings) -> None:
    await cards.show_sla_clock(uow, event)


async def on_auto_close(uow: UnitOfWork, event: SlaAutoClose, settings: BoardsSettings
                        ) -> None:
    await cards.auto_close(uow, event)


# (queue purpose, event type, handler): the `boards.sla` queue
HANDLERS = [
    ("sla", "sla.warning", on_warning),
    ("sla", "sla.breached", on_breached),
    ("sla", "sla.met", on_met),
    ("sla", "sla.clock_changed", on_clock),
    ("sla", "sla.auto_close", on_auto_close),
]
