"""Intake: the app factory and its lifespan."""

from __future__ import annotations

from desk_runtime.http import create_service_app
from desk_runtime.service import ServiceRuntime
from fastapi import FastAPI

from intake.api import requests
from intake.consumers import cards
from intake.repository import IntakeRepository
from intake.settings import IntakeSettings


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = ServiceRuntime("intake", settings)
    cards.register(runtime)

    async def on_start() -> None:
        await IntakeRepository(runtime.db).ensure_indexes()

    app = create_service_app(runtime, title="Service desk — intake", on_start=on_start)
    app.state.settings = settings
    app.include_router(requests.router)
    return app
