"""The knowledge base's consumer: deflections the portal reports, kept for the statistics.

On the `boards.stats` queue (statistics are built from events, so a replay rebuilds the
deflection counts too); registered in boards' handler table.
"""

from __future__ import annotations

from desk_contracts.events import RequestDeflected
from desk_runtime.unit_of_work import UnitOfWork

from boards.kb import application
from boards.settings import BoardsSettings

PURPOSE = "stats"


async def on_deflected(uow: UnitOfWork, event: RequestDeflected, settings: BoardsSettings
                       ) -> None:
    await application.record_deflection(uow, event)


HANDLERS = [(PURPOSE, RequestDeflected.TYPE, on_deflected)]
