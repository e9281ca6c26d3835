"""Portal: the app factory and its lifespan."""

from __future__ import annotations

from desk_runtime.http import create_service_app
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI

from portal.consumers import cards
from portal.repository import PortalRepository
from portal.settings import PortalSettings


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    runtime = ServiceRuntime("portal", settings)
    cards.register(runtime)

    async def on_start() -> None:
        await PortalRepository(runtime.db).ensure_indexes()

    app = create_service_app(runtime, title="Service desk — customer portal", on_start=on_start)
    app.state.settings = settings
    return app
