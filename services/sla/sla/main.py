"""SLA: the app factory and its lifespan."""

from __future__ import annotations

from desk_runtime.http import create_service_app
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI

from sla.api import records
from sla.consumers import cards
from sla.domain.policy import SlaPolicy
from sla.policies import DEMO_CALENDARS, DEMO_POLICIES
from sla.repository import SlaRepository
from sla.scheduler import Scheduler
from sla.settings import SlaSettings


def create_app(settings: SlaSettings | None = None) -> FastAPI:
    settings = settings or SlaSettings()
    runtime = ServiceRuntime("sla", settings)
    cards.register(runtime, settings)
    scheduler = Scheduler(runtime, settings)

    async def on_start() -> None:
        repo = SlaRepository(runtime.db)
        await repo.ensure_indexes()
        if settings.demo_policies:
            await seed_demo(repo)
        if settings.scheduler:
            scheduler.start()

    async def on_stop() -> None:
        await scheduler.stop()

    app = create_service_app(runtime, title="Service desk — SLA", on_start=on_start,
                             on_stop=on_stop)
    app.state.settings = settings
    app.state.scheduler = scheduler
    app.include_router(records.router)
    return app


async def seed_demo(repo: SlaRepository) -> None:
    """Demo calendars and policies, unless an admin has configured them already."""
    for cal in DEMO_CALENDARS:
        if await repo.calendars.find_one({"_id": cal["name"]}) is None:
            await repo.save_calendar(cal)
    for doc in DEMO_POLICIES:
        if await repo.policies.find_one({"_id": doc["name"]}) is None:
            await repo.save_policy(SlaPolicy.model_validate(doc))
