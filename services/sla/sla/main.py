"""SLA: the app factory and its lifespan."""

from __future__ import annotations

from functools import partial

from desk_runtime.http import create_service_app
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI

from sla.api import admin, records
from sla.consumers import cards
from sla.domain.policy import SlaPolicy
from sla.policies import DEMO_CALENDARS, DEMO_POLICIES
from sla.repository import SlaRepository
from sla.scheduler import Scheduler
from sla.settings import SlaSettings


def create_app(settings: SlaSettings | None = None) -> FastAPI:
    settings = settings or SlaSettings()
    runtime = ServiceRuntime("sla", settings)
    context = cards.Context(settings)
    for purpose, event_type, handler in cards.HANDLERS:
        runtime.on(purpose, event_type)(partial(handler, ctx=context))
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
    app.include_router(admin.router)
    return app


async def seed_demo(repo: SlaRepository) -> None:
    """Demo calendars and policies, unless an admin has configured them already."""
    for cal in DEMO_CALENDARS:
        await repo.seed_calendar(cal)
    for doc in DEMO_POLICIES:
        await repo.seed_policy(SlaPolicy.model_validate(doc))
