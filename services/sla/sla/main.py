"""SLA: the app factory and its lifespan."""

from __future__ import annotations

from desk_runtime.http import create_service_app
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI

from sla.consumers import cards
from sla.repository import SlaRepository
from sla.settings import SlaSettings


def create_app(settings: SlaSettings | None = None) -> FastAPI:
    settings = settings or SlaSettings()
    runtime = ServiceRuntime("sla", settings)
    cards.register(runtime)

    async def on_start() -> None:
        await SlaRepository(runtime.db).ensure_indexes()

    app = create_service_app(runtime, title="Service desk — SLA", on_start=on_start)
    app.state.settings = settings
    return app
