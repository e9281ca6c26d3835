"""Statistics for the team lead and for Prometheus, built from the event stream.

Its consumers (`consumers.HANDLERS`, the `boards.stats` queue) are in boards' handler
table; `install(app)` adds the JSON/CSV API and the /stats page; `start(runtime,
settings)`, called from the app's start hook, prepares the read model's indexes and
starts the open-requests gauge's worker, which the runtime stops with its other tasks.
"""

from __future__ import annotations

import contextlib

from desk_runtime.service import ServiceRuntime
from desk_runtime.worker import Worker
from fastapi import FastAPI

from boards.settings import BoardsSettings
from boards.stats import api, metrics, page
from boards.stats.repository import StatsRepository

GAUGE_WORKER = "stats-open-gauge"


def install(app: FastAPI) -> None:
    app.include_router(api.router)
    app.include_router(page.router)


async def refresh_open_gauge(repo: StatsRepository) -> None:
    """Set desk_stats_open_requests from the read model (absent series drop to 0)."""
    counts = await repo.open_counts()
    for (service, category), n in counts.items():
        metrics.OPEN_REQUESTS.labels(service, category).set(n)
    for sample in list(metrics.OPEN_REQUESTS.collect()[0].samples):
        key = (sample.labels["service"], sample.labels["category"])
        if key not in counts:
            metrics.OPEN_REQUESTS.labels(*key).set(0)


async def start(runtime: ServiceRuntime, settings: BoardsSettings) -> Worker:
    repo = StatsRepository(runtime.db)
    with contextlib.suppress(Exception):  # indexes only speed the queries up
        await repo.ensure_indexes()
    every = settings.stats_gauge_refresh_seconds

    async def refresh() -> float:
        await refresh_open_gauge(repo)
        return every

    # not critical: a stale gauge does not make boards unready (the store check does)
    return runtime.tasks.worker(GAUGE_WORKER, refresh, idle_start=every, idle_max=every,
                                critical=False)
