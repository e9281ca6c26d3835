"""Statistics for the team lead and for Prometheus, built from the event stream.

`register(runtime)` wires the `boards.stats` consumers; `install(app)` adds the
JSON/CSV API, the /stats page and the open-requests gauge refresher.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from desk_runtime.logging import get_logger
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI

from boards.stats import api, consumers, metrics, page
from boards.stats.repository import StatsRepository
from boards.stats.settings import StatsSettings

log = get_logger(__name__)


def register(runtime: ServiceRuntime) -> None:
    consumers.register(runtime)


async def refresh_open_gauge(repo: StatsRepository) -> None:
    """Set desk_stats_open_requests from the read model (absent series drop to 0)."""
    counts = await repo.open_counts()
    for (service, category), n in counts.items():
        metrics.OPEN_REQUESTS.labels(service, category).set(n)
    for sample in list(metrics.OPEN_REQUESTS.collect()[0].samples):
        key = (sample.labels["service"], sample.labels["category"])
        if key not in counts:
            metrics.OPEN_REQUESTS.labels(*key).set(0)


async def _gauge_loop(runtime: ServiceRuntime, every: float) -> None:
    repo = StatsRepository(runtime.db)
    with contextlib.suppress(Exception):
        await repo.ensure_indexes()
    while True:
        try:
            await refresh_open_gauge(repo)
        except asyncio.CancelledError:
            raise
        except Exception:  # the store may be briefly away; the next round retries
            log.warning("stats.gauge_refresh_failed", exc_info=True)
        await asyncio.sleep(every)


def install(app: FastAPI) -> None:
    settings = StatsSettings()
    app.state.stats_settings = settings
    app.include_router(api.router)
    app.include_router(page.router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            task = asyncio.create_task(_gauge_loop(a.state.runtime,
                                                   settings.gauge_refresh_seconds),
                                       name="stats-open-gauge")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan
