"""Boards' bus consumers in one table that main.py registers.

Every handler is a module-level `handler(uow, event, settings)`, listed with its queue
purpose and event type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from desk_runtime.unit_of_work import UnitOfWork

from boards.automation import consumers as automation
from boards.consumers import requests, sla
from boards.kb import consumers as kb
from boards.settings import BoardsSettings
from boards.stats import consumers as stats

Handler = Callable[[UnitOfWork, Any, BoardsSettings], Awaitable[None]]

HANDLERS: list[tuple[str, str, Handler]] = [*requests.HANDLERS, *sla.HANDLERS,
                                            *stats.HANDLERS, *kb.HANDLERS,
                                            *automation.HANDLERS]
